"""Learning-rate schedules as Keras computes them: per-step decays and per-epoch callbacks.

A `Schedule` is asked for the rate before every optimiser step (`learning_rate(step)`,
`step` = updates already done, Keras's `optimizer.iterations`, so the first update uses
`learning_rate(0)`) and is told about every finished epoch (`on_epoch_end`). The per-step
kinds follow `keras.optimizers.schedules` (ExponentialDecay, CosineDecay); the per-epoch
kinds follow the callbacks LearningRateScheduler (`step`) and ReduceLROnPlateau (`plateau`).
"""

from __future__ import annotations

import math
import warnings
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BeforeValidator,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)

from mnistlab.spec import Spec

# --- specs ---


class ConstantSpec(Spec):
    """The optimiser's learning rate throughout."""

    kind: Literal["constant"] = "constant"


class ExponentialSpec(Spec):
    """Keras ExponentialDecay: lr0 · decay_rate^(step / decay_steps), per optimiser step."""

    kind: Literal["exponential"] = "exponential"
    decay_steps: PositiveInt = Field(description="optimiser steps (batches) per decay_rate")
    decay_rate: PositiveFloat
    staircase: bool = Field(default=False, description="floor(step / decay_steps)")


class StepSpec(Spec):
    """Per epoch: lr0 · factor^(epochs done // every_epochs) (a LearningRateScheduler)."""

    kind: Literal["step"] = "step"
    factor: PositiveFloat
    every_epochs: PositiveInt = Field(description="epochs between two multiplications")


class CosineSpec(Spec):
    """Keras CosineDecay to alpha·lr0 over decay_steps steps, after an optional linear warmup."""

    kind: Literal["cosine"] = "cosine"
    decay_steps: PositiveInt = Field(description="optimiser steps from the peak to the floor")
    alpha: float = Field(default=0.0, ge=0.0, le=1.0, description="floor, as a fraction of lr0")
    warmup_steps: NonNegativeInt = Field(
        default=0, description="optimiser steps rising linearly to lr0 before the decay"
    )
    warmup_initial: NonNegativeFloat = Field(
        default=0.0, description="the rate at step 0 when warmup_steps > 0"
    )


class PlateauSpec(Spec):
    """Keras ReduceLROnPlateau: multiply by `factor` after `patience` epochs without progress."""

    kind: Literal["plateau"] = "plateau"
    monitor: str = "val_loss"
    factor: float = Field(default=0.1, gt=0.0, lt=1.0)
    patience: NonNegativeInt = Field(default=10, description="epochs")
    mode: Literal["auto", "min", "max"] = Field(
        default="auto", description="auto: max when the monitor's name contains 'acc'"
    )
    min_delta: NonNegativeFloat = 1e-4
    cooldown: NonNegativeInt = Field(default=0, description="epochs")
    min_lr: NonNegativeFloat = 0.0


_SPECS: tuple[type[Spec], ...] = (ConstantSpec, ExponentialSpec, StepSpec, CosineSpec, PlateauSpec)
SCHEDULE_KINDS: tuple[str, ...] = tuple(cls.model_fields["kind"].default for cls in _SPECS)


def _kind(value: Any) -> Any:
    """Accept a bare kind ("constant", "plateau") when that kind needs no other field."""
    allowed = ", ".join(SCHEDULE_KINDS)
    if isinstance(value, str):
        if value not in SCHEDULE_KINDS:
            raise ValueError(f"unknown schedule, expected one of {allowed}")  # + got 'x'
        cls = _SPECS[SCHEDULE_KINDS.index(value)]
        missing = [n for n, f in cls.model_fields.items() if f.is_required()]
        if missing:
            example = ", ".join(f"{n}: ..." for n in missing)
            raise ValueError(
                f"schedule {value!r} needs {' and '.join(missing)}: "
                f"write it as a mapping, {{kind: {value}, {example}}}"
            )
        return {"kind": value}
    if isinstance(value, dict):
        kind = value.get("kind")
        if kind is None:
            raise ValueError(f"kind is required: one of {allowed}")
        if kind not in SCHEDULE_KINDS:
            raise ValueError(f"unknown schedule {kind!r}, expected one of {allowed}")
    return value


ScheduleSpec = Annotated[
    ConstantSpec | ExponentialSpec | StepSpec | CosineSpec | PlateauSpec,
    Field(discriminator="kind"),
    BeforeValidator(_kind),
]
"""Any schedule spec, told apart by `kind`; "constant" and "plateau" may be bare strings."""


# --- schedules ---


class Schedule:
    """A constant rate; the base of every schedule.

    Parameters
    ----------
    base_lr : the optimiser's learning rate (lr0).
    """

    def __init__(self, base_lr: float) -> None:
        self.base_lr = base_lr

    def learning_rate(self, step: int) -> float:
        """The rate for the next optimiser step, `step` updates having been done."""
        return self.base_lr

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Epoch `epoch` (0-based) ended with these metrics; per-epoch kinds react."""


class ExponentialDecay(Schedule):
    """Keras ExponentialDecay: lr0 · rate^(step/decay_steps), floored exponent if staircase."""

    def __init__(self, base_lr: float, spec: ExponentialSpec) -> None:
        super().__init__(base_lr)
        self.spec = spec

    def learning_rate(self, step: int) -> float:
        """lr0 · decay_rate^p, p = step / decay_steps (floored when staircase)."""
        p = step / self.spec.decay_steps
        if self.spec.staircase:
            p = math.floor(p)
        return self.base_lr * self.spec.decay_rate**p


class CosineDecay(Schedule):
    """Keras CosineDecay (with warmup: from warmup_initial to lr0 linearly, then the decay)."""

    def __init__(self, base_lr: float, spec: CosineSpec) -> None:
        super().__init__(base_lr)
        self.spec = spec

    def learning_rate(self, step: int) -> float:
        """Warmup, then lr0·((1−α)·½(1 + cos(π·s/decay_steps)) + α), s capped at decay_steps."""
        spec = self.spec
        if step < spec.warmup_steps:
            fraction = step / spec.warmup_steps
            return (self.base_lr - spec.warmup_initial) * fraction + spec.warmup_initial
        s = min(step - spec.warmup_steps, spec.decay_steps)
        cosine = 0.5 * (1.0 + math.cos(math.pi * s / spec.decay_steps))
        return self.base_lr * ((1 - spec.alpha) * cosine + spec.alpha)


class StepDecay(Schedule):
    """lr0 · factor^(epochs done // every_epochs), changing between epochs only."""

    def __init__(self, base_lr: float, spec: StepSpec) -> None:
        super().__init__(base_lr)
        self.spec = spec
        self.current = base_lr

    def learning_rate(self, step: int) -> float:
        """The rate of the current epoch."""
        return self.current

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Set the rate of epoch `epoch + 1`."""
        self.current = self.base_lr * self.spec.factor ** ((epoch + 1) // self.spec.every_epochs)


def _f32(x: float) -> float:
    """Round to float32, as Keras stores the optimiser's learning rate."""
    return float(np.float32(x))


class ReduceLROnPlateau(Schedule):
    """Keras's ReduceLROnPlateau callback as a schedule (Keras 3 arithmetic, float32 rates).

    An epoch improves when `current − min_delta > best` (max) or `current + min_delta <
    best` (min); the first epoch always improves. During cooldown the wait is held at 0.
    When `wait >= patience` and the rate is above `min_lr`, the rate becomes
    `max(rate·factor, min_lr)`, the cooldown starts and the wait resets.
    """

    def __init__(self, base_lr: float, spec: PlateauSpec) -> None:
        super().__init__(base_lr)
        self.spec = spec
        self.current = base_lr
        acc = "acc" in spec.monitor
        self.mode = spec.mode if spec.mode != "auto" else ("max" if acc else "min")
        self.best: float | None = None
        self.wait = 0
        self.cooldown_counter = 0

    def learning_rate(self, step: int) -> float:
        """The rate after the last reduction."""
        return self.current

    def _is_improvement(self, current: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "max":
            return current - self.spec.min_delta > self.best
        return current + self.spec.min_delta < self.best

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Count an epoch without improvement of `monitor`; reduce the rate after patience."""
        current = logs.get(self.spec.monitor)
        if current is None:
            warnings.warn(
                f"ReduceLROnPlateau: metric {self.spec.monitor!r} is not available "
                f"(have {', '.join(logs)}); the learning rate is not changed",
                stacklevel=2,
            )
            return
        current = float(current)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.spec.patience:
                old = _f32(self.current)
                if old > _f32(self.spec.min_lr):
                    self.current = _f32(max(old * self.spec.factor, self.spec.min_lr))
                    self.cooldown_counter = self.spec.cooldown
                    self.wait = 0


def make_schedule(spec: ScheduleSpec, base_lr: float) -> Schedule:
    """Build the schedule `spec` describes, starting from the optimiser's rate.

    Parameters
    ----------
    spec : a validated schedule spec.
    base_lr : the optimiser's `learning_rate` (lr0; with a cosine warmup, the peak).

    Returns
    -------
    Schedule with `learning_rate(step) -> float` and `on_epoch_end(epoch, logs)`.
    """
    if isinstance(spec, ConstantSpec):
        return Schedule(base_lr)
    if isinstance(spec, ExponentialSpec):
        return ExponentialDecay(base_lr, spec)
    if isinstance(spec, CosineSpec):
        return CosineDecay(base_lr, spec)
    if isinstance(spec, StepSpec):
        return StepDecay(base_lr, spec)
    if isinstance(spec, PlateauSpec):
        return ReduceLROnPlateau(base_lr, spec)
    raise TypeError(f"not a schedule spec: {spec!r}")
