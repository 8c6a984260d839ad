"""The training loop: in-memory tensors, seeded reshuffles, Keras's History, clean divergence.

`run_epochs` is the one epoch loop; `fit` runs it for one model, `stacked.fit_stack` for a
stack of M, each through an `EpochEngine`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from mnistlab.runtime import configure_threads, default_threads, make_generator
from mnistlab.training.batches import Augmenter, BatchStream, image_shape
from mnistlab.training.callbacks import Callback, Events, callbacks_from_spec
from mnistlab.training.engines import Engine, EngineChoice, choose_engine
from mnistlab.training.history import History
from mnistlab.training.losses import batch_loss, correct_count, softmax_output
from mnistlab.training.optimizers import KerasOptimizer
from mnistlab.training.schedules import Schedule, make_schedule
from mnistlab.training.spec import TrainSpec
from mnistlab.training.state import (
    RunSeeds,
    RunState,
    Split,
    check_monitors,
)

EVAL_BATCH_SIZE = 4096  # inference only: the batch size changes nothing but speed


class TrainableModel(Protocol):
    """What the loop needs of a model (an `MLPNet` satisfies it)."""

    def __call__(self, x: Tensor) -> Tensor: ...
    def penalty(self) -> Tensor: ...
    def set_generator(self, generator: torch.Generator) -> None: ...


def fit(
    model: torch.nn.Module,
    train: Split,
    spec: TrainSpec,
    *,
    val: Split | None = None,
    seed: int = 0,
    callbacks: Sequence[Callback] = (),
    threads: int | None = None,
    engine: Engine = "auto",
    evaluate_on: Mapping[str, Split] | None = None,
) -> History:
    """Train `model` in place on `train` as Keras's `fit` would, and return its History.

    Parameters
    ----------
    model : an `MLPNet` (or any module with `penalty()` and `set_generator()`), already
        initialised; it is moved to the device of `train.x`.
    train, val : splits with `x` float32 of shape (N, D) and `y` int64 of shape (N,).
    spec : optimiser, schedule, loss, epochs, batch size and callbacks.
    seed : fixes shuffling and dropout masks (the initialisation was fixed when building).
    callbacks : extra listeners, called after the spec's own (early stopping, checkpoint).
    threads : torch intra-op threads; default every core this process may use, or one
        for a small dense model (`runtime.default_threads`).
    engine : "auto" picks the fastest engine that can train the run
        (`training.engines.choose_engine`); "autograd", "lean" or "compiled" forces one.
        The choice and its reason are kept in `History.engine`.
    evaluate_on : name -> split evaluated after every epoch in inference mode, logged as
        `{name}_eval_loss` and `{name}_eval_accuracy` (`TrainSpec.evaluate_each_epoch`).

    Returns
    -------
    History with Keras's keys per epoch; `status` is "done" or "diverged", never raised.
    """
    configure_threads(threads or default_threads(model, spec.batch_size))
    device = train.x.device
    model.to(device)
    seeds = RunSeeds.from_seed(seed)
    model.set_generator(make_generator(seeds.dropout, device))
    check_monitors(spec, has_val=val is not None)
    run = RunState(
        model=model,
        optimizer=KerasOptimizer(spec.optimizer, model.parameters()),
        spec=spec,
        history=History(),
        seed=seed,
        shuffle_generator=make_generator(seeds.shuffle),
    )
    run.batches = BatchStream(
        len(train.x),
        spec.batch_size,
        spec.shuffle,
        spec.steps_per_epoch,
        run.shuffle_generator,
        device,
    )
    validate = _validation(model, val, spec, seeds, device)
    if spec.augment is not None:
        run.augment = Augmenter(spec.augment, image_shape(train.x), seeds.augment)
    schedule = make_schedule(spec.schedule, spec.optimizer.learning_rate)
    events = Events([*callbacks_from_spec(spec.early_stopping, spec.checkpoint), *callbacks])
    choice = choose_engine(engine, model, spec, train, events.callbacks)
    run.history.engine = choice.describe()
    member = Member(run, events, schedule)
    run_epochs([member], _OneRun(member, choice, train, validate), evaluate_on or {})
    return run.history


@dataclass
class Member:
    """One run inside the loop: its state, its listeners, its schedule; ended once it stops."""

    run: RunState
    events: Events
    schedule: Schedule
    ended: bool = False


class EpochEngine(Protocol):
    """What the loop needs of M >= 1 members trained together (a run alone, or a stack)."""

    def train_epoch(self, live: Sequence[int]) -> Mapping[int, tuple[dict[str, float], int | None]]:
        """Train one epoch of the members `live`: per member its logs and first bad batch."""
        ...

    def validate(self) -> list[dict[str, float]] | None:
        """Every member's validation metrics after the epoch, or None without validation."""
        ...

    def evaluate(self, split: Split) -> list[dict[str, float]]:
        """Every member's loss and accuracy on `split`, in inference mode."""
        ...

    def learning_rate(self, m: int) -> float:
        """Member m's rate of its last step, as Keras logs it."""
        ...


def run_epochs(
    members: Sequence[Member], engine: EpochEngine, evaluate_on: Mapping[str, Split]
) -> None:
    """The one epoch loop, for a run alone or a stack: events, History, schedules, divergence.

    Each member goes on until its own epochs are done, it diverges or a callback stops it;
    then it ends (`on_run_end`) while the others go on.
    """
    for member in members:
        member.events.on_run_begin(member.run)
    try:
        for epoch in range(max(member.run.spec.epochs for member in members)):
            live = [m for m, member in enumerate(members) if not member.ended]
            if not live:
                break
            for m in live:
                members[m].run.epoch = epoch
                members[m].events.on_epoch_begin(members[m].run, epoch)
            started = time.perf_counter()
            results = engine.train_epoch(live)
            validated = engine.validate()
            extra = {name: engine.evaluate(split) for name, split in evaluate_on.items()}
            for m in live:
                logs, bad_batch = results[m]
                if validated is not None:
                    logs.update({f"val_{k}": v for k, v in validated[m].items()})
                for name, per_member in extra.items():
                    logs.update(eval_logs(name, per_member[m]))
                logs["learning_rate"] = engine.learning_rate(m)
                logs["time"] = time.perf_counter() - started
                _end_epoch(members[m], epoch, logs, bad_batch)
        for member in members:
            if not member.ended:
                _end_run(member)
    finally:
        for member in members:
            if not member.ended:
                member.events.on_run_end(member.run)


def _end_epoch(member: Member, epoch: int, logs: dict[str, float], bad_batch: int | None) -> None:
    """Keras's end of an epoch for one member: History, divergence, schedule, callbacks."""
    run = member.run
    run.history.append(epoch, logs)
    if bad_batch is not None:
        run.history.status = "diverged"
        run.history.diverged_at = (epoch, bad_batch)
        run.stop = True
    member.schedule.on_epoch_end(epoch, logs)
    member.events.on_epoch_end(run, epoch, logs)
    if run.stop or epoch + 1 == run.spec.epochs:
        _end_run(member)


def _end_run(member: Member) -> None:
    if member.run.history.status == "running":
        member.run.history.status = "done"
    member.ended = True  # frozen from now on
    member.events.on_run_end(member.run)


class _OneRun:
    """`EpochEngine` for one run: the chosen engine's epoch, `evaluate` and the validation."""

    def __init__(
        self,
        member: Member,
        choice: EngineChoice,
        train: Split,
        validate: Callable[[], dict[str, float]] | None,
    ) -> None:
        self.member, self.choice, self.train, self.validate_run = member, choice, train, validate

    def train_epoch(self, live: Sequence[int]) -> dict[int, tuple[dict[str, float], int | None]]:
        member = self.member
        return {0: self.choice.train_epoch(member.run, member.schedule, self.train, member.events)}

    def validate(self) -> list[dict[str, float]] | None:
        return None if self.validate_run is None else [self.validate_run()]

    def evaluate(self, split: Split) -> list[dict[str, float]]:
        return [evaluate(self.member.run.model, split, self.member.run.spec)]

    def learning_rate(self, m: int) -> float:
        return self.member.run.optimizer.param_groups[0]["lr"]


def eval_logs(name: str, metrics: Mapping[str, float]) -> dict[str, float]:
    """`evaluate`'s metrics on the split `name` as History keys: `train_eval_accuracy`."""
    return {f"{name}_eval_{key}": value for key, value in metrics.items()}


@torch.no_grad()
def evaluate(model: torch.nn.Module, split: Split, spec: TrainSpec) -> dict[str, float]:
    """Loss (penalties included, as Keras) and accuracy of `model` on `split`, inference mode.

    Returns
    -------
    dict with `loss` and, for classification, `accuracy`.
    """
    was_training = model.training
    model.eval()
    x, y = split.x, split.y
    softmax = softmax_output(model)
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    for start in range(0, len(x), EVAL_BATCH_SIZE):
        logits = model(x[start : start + EVAL_BATCH_SIZE])
        yb = y[start : start + EVAL_BATCH_SIZE]
        total += batch_loss(logits, yb, spec, softmax, reduction="sum")
        if spec.is_classification:
            correct += correct_count(logits, yb)
    model.train(was_training)
    n = len(x)
    result = {"loss": float(total / n + model.penalty())}
    if spec.is_classification:
        result["accuracy"] = float(correct) / n
    return result


def _validation(
    model: torch.nn.Module,
    val: Split | None,
    spec: TrainSpec,
    seeds: RunSeeds,
    device: torch.device,
) -> Callable[[], dict[str, float]] | None:
    """The end-of-epoch validation: `evaluate`, or augmented batches when the spec says so."""
    if val is None:
        return None
    if spec.augment is None or not spec.augment.validation:
        return functools.partial(evaluate, model, val, spec)
    # a separate stream from training's: Keras's validation generator is its own iterator
    shuffle, augment = np.random.SeedSequence([seeds.shuffle, seeds.augment]).generate_state(2)
    stream = BatchStream(
        len(val.x),
        spec.batch_size,
        True,
        spec.validation_steps,
        make_generator(int(shuffle)),
        device,
    )
    augmenter = Augmenter(spec.augment, image_shape(val.x), int(augment))
    return functools.partial(evaluate_augmented, model, val, spec, stream, augmenter)


@torch.no_grad()
def evaluate_augmented(
    model: torch.nn.Module, split: Split, spec: TrainSpec, stream: BatchStream, augment: Augmenter
) -> dict[str, float]:
    """Loss and accuracy over the stream's next epoch of augmented batches, inference mode.

    As Keras's `evaluate_generator`: batch means weighted by batch size, penalties included.
    """
    was_training = model.training
    model.eval()
    softmax = softmax_output(model)
    total = torch.zeros((), dtype=torch.float64, device=split.x.device)
    correct = torch.zeros((), dtype=torch.int64, device=split.x.device)
    seen = 0
    for rows in stream.epoch():
        logits = model(augment(split.x[rows]))
        yb = split.y[rows]
        total += batch_loss(logits, yb, spec, softmax, reduction="sum")
        if spec.is_classification:
            correct += correct_count(logits, yb)
        seen += len(yb)
    model.train(was_training)
    result = {"loss": float(total / seen + model.penalty())}
    if spec.is_classification:
        result["accuracy"] = float(correct) / seen
    return result
