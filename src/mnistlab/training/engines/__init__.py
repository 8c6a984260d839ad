"""Engines: the ways one epoch of a run can be trained, and the rule that picks one.

An engine is one function, `(run, schedule, train, events) -> (epoch logs, first bad batch)`,
and a promise: the run's own batches, learning rates, dropout masks, Keras updates, History
and divergence check. `fit` is the one loop around it. Autograd is the reference that the
lean and compiled engines are tested against (tests/training/engines/).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, get_args

from torch import nn

from mnistlab.training.engines.autograd import train_epoch_autograd
from mnistlab.training.engines.lean import lean_unsupported, train_epoch_lean
from mnistlab.training.spec import TrainSpec
from mnistlab.training.state import RunState, Split

if TYPE_CHECKING:
    from mnistlab.training.callbacks import Callback, Events
    from mnistlab.training.schedules import Schedule

Engine = Literal["auto", "autograd", "lean", "compiled"]
ENGINES: tuple[str, ...] = get_args(Engine)
COMPILED_MAX_MACS = 4_000_000
"""Multiply-adds of a step's largest GEMM (batch × in × out) below which the compiled engine
beats the lean one on the CPU; measured by batch and width in docs/performance.md."""


class EpochTrainer(Protocol):
    """One engine: trains an epoch of `run`, returns its logs and the first bad batch, if any."""

    def __call__(
        self, run: RunState, schedule: Schedule, train: Split, events: Events
    ) -> tuple[dict[str, float], int | None]: ...


@dataclass(frozen=True)
class EngineChoice:
    """The engine a run trains with, and why (stored with the run, shown by `show --runs`)."""

    name: str
    reason: str
    train_epoch: EpochTrainer

    def describe(self) -> str:
        """`compiled (batch 2 × 784·15 = 23,520 multiply-adds < 4,000,000)`."""
        return f"{self.name} ({self.reason})"


def choose_engine(
    requested: Engine,
    model: nn.Module,
    spec: TrainSpec,
    train: Split,
    callbacks: Sequence[Callback],
) -> EngineChoice:
    """The engine for this run: the one requested, or for "auto" the fastest that can train it.

    "auto" on the CPU: compiled while the step's largest GEMM is below `COMPILED_MAX_MACS`
    (overhead-bound steps), else lean, else autograd (any model, CUDA, augmentation).

    Raises
    ------
    ValueError
        For an unknown engine, or a forced one that cannot train this run (naming why).
    """
    if requested not in ENGINES:
        raise ValueError(f"engine: expected one of {', '.join(ENGINES)}, got {requested!r}")
    if requested == "autograd":
        return EngineChoice("autograd", "requested", train_epoch_autograd)
    lean_problem = lean_unsupported(model, spec, train)
    if requested == "lean":
        if lean_problem is not None:
            raise ValueError(f"engine: 'lean' does not support {lean_problem}; use 'auto'")
        return EngineChoice("lean", "requested", train_epoch_lean)
    from mnistlab.training.engines import compiled  # numba loads only where it may be used

    compiled_problem = compiled.compiled_unsupported(
        model, spec, train
    ) or compiled.callbacks_unsupported(callbacks)
    if requested == "compiled":
        if compiled_problem is not None:
            raise ValueError(f"engine: 'compiled' does not support {compiled_problem}; use 'auto'")
        return EngineChoice("compiled", "requested", compiled.train_epoch_compiled)
    if compiled_problem is None:
        macs, size = _largest_gemm(model, spec, train)
        if macs < COMPILED_MAX_MACS:
            reason = f"batch {size} = {macs:,} multiply-adds < {COMPILED_MAX_MACS:,}"
            return EngineChoice("compiled", reason, compiled.train_epoch_compiled)
        compiled_problem = f"{macs:,} multiply-adds a step ≥ {COMPILED_MAX_MACS:,}"
    if lean_problem is None:
        return EngineChoice("lean", f"not compiled: {compiled_problem}", train_epoch_lean)
    return EngineChoice("autograd", f"not lean: {lean_problem}", train_epoch_autograd)


def _largest_gemm(model: nn.Module, spec: TrainSpec, train: Split) -> tuple[int, str]:
    """Multiply-adds of the step's largest kernel product, and it written out."""
    batch = min(spec.batch_size, len(train.x))
    shape = max(
        (tuple(p.shape) for name, p in model.named_parameters() if name.endswith("kernel")),
        key=lambda s: s[0] * s[1],
    )
    return batch * shape[0] * shape[1], f"{batch} × {shape[0]}·{shape[1]}"
