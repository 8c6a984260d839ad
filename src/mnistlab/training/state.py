"""What every engine and callback shares: a run's state, its seeds, its epoch logs and checks.

The lowest floor of `training/`: the loop, the engines and the callbacks import these; this
module imports none of them, so none of them imports another at call time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from mnistlab.errors import SpecError
from mnistlab.training.batches import Augmenter, BatchStream
from mnistlab.training.history import History
from mnistlab.training.spec import TrainSpec

DIVERGENCE_CHECK_STEPS = 32  # look for a NaN/inf loss this often (one host sync)


class Split(Protocol):
    """What the loop needs of a data split: float32 inputs and labels on one device."""

    x: Tensor
    y: Tensor


@dataclass
class RunState:
    """The state of one run, shared with callbacks; they stop it with `stop = True`."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    spec: TrainSpec
    history: History
    seed: int
    epoch: int = 0
    step: int = 0
    stop: bool = False
    shuffle_generator: torch.Generator = field(default_factory=torch.Generator)
    batches: BatchStream | None = None  # the rows of each step (autograd path)
    augment: Augmenter | None = None  # random transforms of each training batch


@dataclass(frozen=True)
class RunSeeds:
    """Independent seeds for the random streams of a run, derived from its one seed."""

    init: int
    shuffle: int
    dropout: int
    augment: int

    @classmethod
    def from_seed(cls, seed: int) -> RunSeeds:
        """Spread `seed` into four streams with NumPy's SeedSequence (a prefix-stable draw)."""
        init, shuffle, dropout, augment = np.random.SeedSequence(seed).generate_state(4)
        return cls(int(init), int(shuffle), int(dropout), int(augment))


def epoch_logs(
    losses: Tensor, correct: Tensor, done: int, batch: int, n: int, spec: TrainSpec
) -> dict[str, float]:
    """Keras's running means over `done` steps of one pass in batches of `batch`."""
    sizes = torch.full((done,), float(batch))
    sizes[-1] = min(batch, n - batch * (done - 1))
    return weighted_logs(losses, correct, sizes, spec)


def weighted_logs(
    losses: Tensor, correct: Tensor, sizes: Tensor, spec: TrainSpec
) -> dict[str, float]:
    """Keras's running means: batch losses weighted by batch size, accuracy over samples."""
    sizes = sizes.to(losses.device)
    seen = float(sizes.sum())
    logs = {"loss": float((losses[: len(sizes)] * sizes).sum() / seen)}
    if spec.is_classification:
        logs["accuracy"] = float(correct) / seen
    return logs


def first_bad(losses: Tensor, threshold: float | None) -> int | None:
    """Index of the first NaN/inf loss (or above the opt-in bound), None when all are fine."""
    bound = torch.tensor([[math.inf if threshold is None else threshold]], device=losses.device)
    return first_bad_per_member(losses[None], bound).get(0)


def first_bad_per_member(losses: Tensor, thresholds: Tensor) -> dict[int, int]:
    """Per member, the index of its first NaN/inf (or above-bound) loss; losses (M, W)."""
    bad = ~torch.isfinite(losses) | (losses.abs() > thresholds)  # (M, W)
    first = torch.where(bad.any(dim=1), bad.int().argmax(dim=1), -1).tolist()  # (M,)
    return {m: f for m, f in enumerate(first) if f >= 0}


def check_monitors(spec: TrainSpec, has_val: bool) -> None:
    """A callback watching a metric the run will not produce is a spec error, not a warning."""
    available = {"loss", "val_loss"} if has_val else {"loss"}
    if spec.is_classification:
        available |= {"accuracy", "val_accuracy"} if has_val else {"accuracy"}
    watched = {
        "training.early_stopping.monitor": spec.early_stopping and spec.early_stopping.monitor,
        "training.checkpoint.monitor": spec.checkpoint and spec.checkpoint.monitor,
    }
    for where, monitor in watched.items():
        if monitor and monitor not in available:
            raise SpecError(
                f"{where}: {monitor!r} is not produced by this run "
                f"(available: {', '.join(sorted(available))}; val_* needs validation data)"
            )
