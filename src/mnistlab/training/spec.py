"""What a training run is asked to do: optimiser, schedule, loss, epochs, callbacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from mnistlab.data.augment import AugmentSpec
from mnistlab.spec import Spec
from mnistlab.training.optimizers import OptimizerSpec
from mnistlab.training.schedules import ScheduleSpec

LossName = Literal["categorical_crossentropy", "sparse_categorical_crossentropy", "mse", "mae"]
MonitorMode = Literal["auto", "min", "max"]


def _optional(description: str) -> Any:
    """A field that is off (None) unless the spec sets it."""
    return Field(default=None, description=description)


class EarlyStoppingSpec(Spec):
    """Keras EarlyStopping: stop when `monitor` has not improved for `patience` epochs."""

    monitor: str = "val_loss"
    mode: MonitorMode = "auto"
    patience: NonNegativeInt = 0
    min_delta: NonNegativeFloat = 0.0
    restore_best_weights: bool = False


class CheckpointSpec(Spec):
    """Keras ModelCheckpoint(save_best_only=True), kept in memory; val_loss unless told."""

    monitor: str = "val_loss"
    mode: MonitorMode = "auto"
    path: Path | None = Field(default=None, description="also save the best weights here")
    restore: bool = Field(
        default=False,
        description="load the best weights at the end, as a notebook reloading its checkpoint",
    )


EvalSplit = Literal["train", "test"]
"""A split `evaluate_each_epoch` may name (the validation data is evaluated anyway)."""


class TrainSpec(Spec):
    """Everything `fit` needs besides the model, the data and the seed (Keras defaults)."""

    optimizer: OptimizerSpec = Field(default="rmsprop", validate_default=True)
    schedule: ScheduleSpec = Field(default="constant", validate_default=True)
    loss: LossName = "categorical_crossentropy"
    clip_probabilities: bool = Field(
        default=False,
        description="Keras 2.2.4: clip softmax outputs to [1e-7, 1-1e-7] (losses cap at 16.1)",
    )
    epochs: PositiveInt = 1
    batch_size: PositiveInt = 32
    shuffle: bool = True
    early_stopping: EarlyStoppingSpec | None = None
    checkpoint: CheckpointSpec | None = None
    divergence_threshold: PositiveFloat | None = _optional(
        "opt-in: a finite batch loss above this also counts as divergence"
    )
    augment: AugmentSpec | None = _optional(
        "ImageDataGenerator-style random transforms of every training batch"
    )
    steps_per_epoch: PositiveInt | None = _optional(
        "batches per epoch, as fit_generator's; None = one pass over the data"
    )
    validation_steps: PositiveInt | None = _optional(
        "augmented validation batches per epoch (augment.validation); None = one pass"
    )
    evaluate_each_epoch: tuple[EvalSplit, ...] | None = Field(
        default=None,
        description="after each epoch, re-evaluate the model in inference mode on these splits "
        "(History keys train_eval_loss, train_eval_accuracy, test_eval_...), as a notebook "
        "that re-predicted its data every epoch; the History's loss/accuracy stay Keras's "
        "running training-mode means",
    )

    @model_validator(mode="after")
    def _validation_steps_need_augmented_validation(self) -> TrainSpec:
        if self.validation_steps is not None and not (self.augment and self.augment.validation):
            raise ValueError(
                "validation_steps: counts augmented validation batches; set augment.validation: "
                "true, or leave validation_steps out to evaluate the whole validation set"
            )
        return self

    @property
    def is_classification(self) -> bool:
        """Cross-entropy losses classify; MSE and MAE regress (no accuracy metric)."""
        return self.loss.endswith("crossentropy")
