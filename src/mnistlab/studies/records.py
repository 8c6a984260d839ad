"""The records a study passes around: a resolved run, its result, and what the store returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import model_validator

from mnistlab.data import DataSpec
from mnistlab.models import MLPSpec, ModelSpec
from mnistlab.spec import Spec
from mnistlab.status import RunStatus
from mnistlab.training.spec import TrainSpec

RunRole = Literal["train", "cv-fold", "cv-refit"]


class RunConfig(Spec):
    """One fully resolved configuration: data, model and training, nothing left to default."""

    data: DataSpec = DataSpec()
    model: ModelSpec = MLPSpec()
    training: TrainSpec = TrainSpec()

    @model_validator(mode="after")
    def _engine_can_train(self) -> RunConfig:
        if self.model.kind == "numpy":
            from mnistlab.training.classic import check_numpy_training

            problem = check_numpy_training(self.training)
            if problem is not None:
                raise ValueError(f"training: {problem}")
        return self


@dataclass(frozen=True)
class RunSpec:
    """A run to do: a resolved configuration plus a seed, identified by a stable hash.

    `run_id` hashes the configuration, the seed, the data fingerprint and, in continue
    mode, the run it continues from (`parent`). `group` identifies the configuration
    without the seed: the repetitions of one configuration share it. `labels` are the
    values that make this run differ from the study's defaults (field path -> value, plus
    "variant"), for tables.
    """

    study: str
    run_id: str
    group: str
    config: RunConfig
    seed: int
    repetition: int
    labels: dict[str, Any] = field(default_factory=dict)
    variant: str | None = None
    parent: str | None = None  # continue mode: the run whose final weights this one starts from
    role: RunRole = "train"
    order: int = 0  # position in the study's expansion, for stable display


@dataclass
class RunResult:
    """What an executor hands back for one run; the runner stores it in one transaction.

    `metrics` holds the final numbers: `loss`/`accuracy` (the last epoch's History, as Keras
    reports a "train accuracy"), `val_*` and `test_*` (evaluate on those splits), and
    `epochs_run`, `best_epoch`, `stopped_epoch`, `diverged_epoch`, `diverged_batch` when set.
    `history` is Keras's History dict (key -> one value per epoch). `artifacts` maps a kind
    ("weights") to a file written under the results folder. `engine` names what trained
    the run and why (`EngineChoice.describe`, "stacked …", "sklearn", "numpy").
    """

    run_id: str
    status: RunStatus
    metrics: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    engine: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """A run as the store returns it."""

    study: str
    run_id: str
    group: str
    status: RunStatus
    config: dict[str, Any]
    seed: int
    repetition: int
    labels: dict[str, Any]
    variant: str | None
    parent: str | None
    role: RunRole
    order: int
    metrics: dict[str, float]
    seconds: float | None
    error: str | None
    engine: str | None = None
