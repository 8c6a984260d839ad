"""A rich progress bar for fit: one task per run, Keras-style epoch lines as it goes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from mnistlab.training.callbacks import Callback

if TYPE_CHECKING:
    from mnistlab.training.state import RunState

UPDATES_PER_EPOCH = 20  # redraws per epoch: smooth enough, and cheap next to the steps


class ProgressBar(Callback):
    """Shows epoch, steps, ETA and the last epoch's metrics; prints one line per epoch."""

    def __init__(self, steps_per_epoch: int, console: Console | None = None) -> None:
        self.steps_per_epoch = steps_per_epoch
        self.every_n_steps = max(1, steps_per_epoch // UPDATES_PER_EPOCH)
        self.console = console or Console(stderr=True)

    def on_run_begin(self, run: RunState) -> None:
        self.epochs = run.spec.epochs
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.task = self.progress.add_task(
            "fit",
            total=self.epochs * self.steps_per_epoch,
            epoch=1,
            epochs=self.epochs,
            metrics="",
        )
        self.progress.start()

    def on_epoch_begin(self, run: RunState, epoch: int) -> None:
        self.progress.update(self.task, completed=epoch * self.steps_per_epoch, epoch=epoch + 1)

    def on_step_end(self, run: RunState) -> None:
        self.progress.update(self.task, completed=run.step)

    def on_epoch_end(self, run: RunState, epoch: int, logs: dict[str, float]) -> None:
        metrics = " - ".join(
            f"{key}: {value:.4f}"
            for key, value in logs.items()
            if key in {"loss", "accuracy", "val_loss", "val_accuracy"}
        )
        self.progress.update(
            self.task, completed=(epoch + 1) * self.steps_per_epoch, metrics=metrics
        )
        self.progress.console.print(
            f"Epoch {epoch + 1}/{self.epochs} - {logs['time']:.1f}s - {metrics}"
        )

    def on_run_end(self, run: RunState) -> None:
        self.progress.stop()
        if run.history.diverged:
            epoch, batch = run.history.diverged_at or (0, 0)
            self.console.print(f"diverged: non-finite loss at epoch {epoch + 1}, batch {batch}")
