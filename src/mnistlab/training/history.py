"""The record of one fit: Keras's History keys per epoch, plus how the run ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

RunStatus = Literal["running", "done", "diverged"]


@dataclass
class History:
    """Per-epoch metrics under Keras's names (`loss`, `accuracy`, `val_loss`, `val_accuracy`).

    Also `learning_rate` (the rate of the epoch's last step) and `time` (seconds per epoch).
    `status` says how the run ended; a diverged run names the epoch and batch (0-based).
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: list[int] = field(default_factory=list)
    status: RunStatus = "running"
    diverged_at: tuple[int, int] | None = None
    stopped_epoch: int | None = None
    best_epoch: int | None = None
    engine: str = ""  # the engine that trained the run, and why (`EngineChoice.describe`)

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        """Record one epoch's logs."""
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    @property
    def last(self) -> dict[str, float]:
        """The last epoch's logs (a coursework 'train accuracy' is `last['accuracy']`)."""
        return {key: values[-1] for key, values in self.history.items() if values}

    @property
    def diverged(self) -> bool:
        """True when a NaN/inf loss (or an opted-in bound) ended the run."""
        return self.status == "diverged"
