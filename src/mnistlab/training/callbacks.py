"""Callbacks: the loop emits events; early stopping, checkpoints and probes listen."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import save_file
from torch import Tensor

from mnistlab.training.spec import CheckpointSpec, EarlyStoppingSpec, MonitorMode

if TYPE_CHECKING:
    from mnistlab.training.state import RunState


class Callback:
    """Base callback: every hook is a no-op. Stop a run with `run.stop = True`, never raise.

    `on_step_end` is called only every `every_n_steps` optimiser steps (0: never), after the
    update, while the step's gradients are still on the parameters.
    """

    every_n_steps: int = 0

    def on_run_begin(self, run: RunState) -> None:
        """Called once, after the model is built and before the first step."""

    def on_epoch_begin(self, run: RunState, epoch: int) -> None:
        """Called at the start of each epoch (0-based)."""

    def on_step_end(self, run: RunState) -> None:
        """Called every `every_n_steps` steps; `run.step` counts the steps done."""

    def on_epoch_end(self, run: RunState, epoch: int, logs: dict[str, float]) -> None:
        """Called after each epoch with its logs (`loss`, `accuracy`, `val_loss`, ...)."""

    def on_run_end(self, run: RunState) -> None:
        """Called once when the run ends, whatever the reason (done, stopped, diverged)."""


class Events:
    """Calls every registered callback's hook, in order."""

    def __init__(self, callbacks: Iterable[Callback]) -> None:
        self.callbacks = list(callbacks)
        self.stepped = [cb for cb in self.callbacks if cb.every_n_steps > 0]

    def on_run_begin(self, run: RunState) -> None:
        for cb in self.callbacks:
            cb.on_run_begin(run)

    def on_epoch_begin(self, run: RunState, epoch: int) -> None:
        for cb in self.callbacks:
            cb.on_epoch_begin(run, epoch)

    def on_step_end(self, run: RunState) -> None:
        for cb in self.stepped:
            if run.step % cb.every_n_steps == 0:
                cb.on_step_end(run)

    def on_epoch_end(self, run: RunState, epoch: int, logs: dict[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(run, epoch, logs)

    def on_run_end(self, run: RunState) -> None:
        for cb in self.callbacks:
            cb.on_run_end(run)


# --- monitoring a metric ---


def monitor_direction(monitor: str, mode: MonitorMode) -> str:
    """'min' or 'max': Keras's 'auto' maximises metrics whose name contains 'acc'."""
    if mode != "auto":
        return mode
    return "max" if "acc" in monitor else "min"


def is_improvement(current: float, best: float, direction: str, min_delta: float = 0.0) -> bool:
    """Keras's strict test: better than `best` by more than `min_delta`."""
    if direction == "min":
        return current + min_delta < best
    return current - min_delta > best


def _initial_best(direction: str) -> float:
    return math.inf if direction == "min" else -math.inf


def _copy_state(model: torch.nn.Module) -> dict[str, Tensor]:
    return {name: t.detach().clone() for name, t in model.state_dict().items()}


class EarlyStopping(Callback):
    """Keras EarlyStopping: strict improvement by min_delta, stop after `patience` misses.

    `restore_best_weights` restores only when the run stops early, as tf.keras 2.x did
    (Keras 3 also restores at the end of a run that never stopped).
    """

    def __init__(self, spec: EarlyStoppingSpec) -> None:
        self.spec = spec
        self.direction = monitor_direction(spec.monitor, spec.mode)

    def on_run_begin(self, run: RunState) -> None:
        self.wait = 0
        self.best = _initial_best(self.direction)
        self.best_epoch: int | None = None
        self.best_weights: dict[str, Tensor] | None = None
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, run: RunState, epoch: int, logs: dict[str, float]) -> None:
        current = logs[self.spec.monitor]
        if self.spec.restore_best_weights and self.best_weights is None:
            self.best_weights = _copy_state(run.model)
        self.wait += 1
        if is_improvement(current, self.best, self.direction, self.spec.min_delta):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.spec.restore_best_weights:
                self.best_weights = _copy_state(run.model)
            return
        if self.wait >= self.spec.patience and epoch > 0:
            self.stopped_epoch = epoch
            run.stop = True
            run.history.stopped_epoch = epoch
            if self.spec.restore_best_weights and self.best_weights is not None:
                run.model.load_state_dict(self.best_weights)


class BestCheckpoint(Callback):
    """Keras ModelCheckpoint(save_best_only=True): keeps the best weights in memory.

    Saves them as safetensors when the spec names a path; restores them at the end when
    the spec asks, as a notebook that reloads its checkpoint after fit.
    """

    def __init__(self, spec: CheckpointSpec) -> None:
        self.spec = spec
        self.direction = monitor_direction(spec.monitor, spec.mode)

    def on_run_begin(self, run: RunState) -> None:
        self.best = _initial_best(self.direction)
        self.best_epoch: int | None = None
        self.best_weights: dict[str, Tensor] | None = None

    def on_epoch_end(self, run: RunState, epoch: int, logs: dict[str, float]) -> None:
        current = logs[self.spec.monitor]
        if is_improvement(current, self.best, self.direction):
            self.best, self.best_epoch = current, epoch
            self.best_weights = _copy_state(run.model)
            run.history.best_epoch = epoch
            if self.spec.path is not None:
                save_weights(self.best_weights, self.spec.path)

    def on_run_end(self, run: RunState) -> None:
        if self.spec.restore and self.best_weights is not None:
            run.model.load_state_dict(self.best_weights)


def save_weights(
    state: dict[str, Tensor], path: Path, metadata: dict[str, str] | None = None
) -> None:
    """Write a state dict as safetensors (contiguous CPU copies), with optional text metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    save_file(tensors, str(path), metadata=metadata)


def callbacks_from_spec(
    early_stopping: EarlyStoppingSpec | None, checkpoint: CheckpointSpec | None
) -> list[Callback]:
    """The callbacks a training spec asks for, in Keras's order."""
    made: list[Callback] = []
    if early_stopping is not None:
        made.append(EarlyStopping(early_stopping))
    if checkpoint is not None:
        made.append(BestCheckpoint(checkpoint))
    return made


# --- probes for analyses that need training-time data ---


class WeightSnapshots(Callback):
    """Copies of every parameter at initialisation and, optionally, after each epoch."""

    def __init__(self, every_epoch: bool = True) -> None:
        self.every_epoch = every_epoch
        self.initial: dict[str, Tensor] = {}
        self.epochs: list[dict[str, Tensor]] = []

    def on_run_begin(self, run: RunState) -> None:
        self.initial = {k: v.cpu() for k, v in _copy_state(run.model).items()}
        self.epochs = []

    def on_epoch_end(self, run: RunState, epoch: int, logs: dict[str, float]) -> None:
        if self.every_epoch:
            self.epochs.append({k: v.cpu() for k, v in _copy_state(run.model).items()})


class GradientNorms(Callback):
    """Per-parameter gradient L2 norm, averaged over the sampled steps of each epoch.

    `per_epoch[name]` lists one mean norm per epoch: the vanishing-gradient view.
    """

    def __init__(self, every_n_steps: int = 1) -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self.per_epoch: dict[str, list[float]] = {}

    def on_epoch_begin(self, run: RunState, epoch: int) -> None:
        self._sums: dict[str, Tensor] = {}
        self._count = 0

    def on_step_end(self, run: RunState) -> None:
        for name, param in run.model.named_parameters():
            if param.grad is not None:
                norm = param.grad.detach().norm()
                self._sums[name] = self._sums.get(name, 0) + norm
        self._count += 1

    def add_gradient_norms(self, sums: dict[str, float], steps: int) -> None:
        """The compiled engine's epoch: per-parameter norm sums over `steps` sampled steps."""
        self._sums = {name: sums[name] for name in self._names}
        self._count += steps

    def on_run_begin(self, run: RunState) -> None:
        self._names = [name for name, _ in run.model.named_parameters()]

    def on_epoch_end(self, run: RunState, epoch: int, logs: dict[str, float]) -> None:
        if self._count == 0:
            warnings.warn("GradientNorms sampled no step this epoch", stacklevel=2)
            return
        for name, total in self._sums.items():
            self.per_epoch.setdefault(name, []).append(float(total) / self._count)
