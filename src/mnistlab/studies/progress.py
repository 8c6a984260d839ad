"""The live display of `mnistlab run`: runs done / total with ETA, the current run's epoch."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from mnistlab.status import RunStatus
from mnistlab.studies.records import RunResult, RunSpec

SHOWN_METRICS = ("loss", "accuracy", "val_accuracy")


class StudyProgress:
    """A rich display fed by the runner; use as a context manager around `run_study`."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.runs_task = self.progress.add_task("runs", total=None, detail="", visible=False)
        self.epoch_task = self.progress.add_task("epoch", total=None, detail="", visible=False)
        self.current: str | None = None

    def __enter__(self) -> StudyProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_study_begin(self, study: str, total: int, finished: int) -> None:
        self.progress.update(
            self.runs_task,
            description=f"{study}: runs",
            total=total,
            completed=finished,
            visible=True,
            detail=f"{finished} already finished" if finished else "",
        )

    def on_epoch(self, run: RunSpec, epoch: int, epochs: int, logs: dict[str, float]) -> None:
        if run.run_id != self.current:
            self.current = run.run_id
            self.progress.reset(self.epoch_task, total=epochs, visible=True)
        detail = " ".join(f"{k} {logs[k]:.4f}" for k in SHOWN_METRICS if k in logs)
        self.progress.update(
            self.epoch_task,
            completed=epoch + 1,
            description=f"run {run.run_id[:8]}",
            detail=detail,
        )

    def on_run_end(self, result: RunResult) -> None:
        self.progress.advance(self.runs_task)
        metrics = result.metrics
        if result.status == RunStatus.DONE:
            score = metrics.get(
                "test_accuracy", metrics.get("val_accuracy", metrics.get("accuracy"))
            )
            shown = (
                f"{score:.2%}"
                if score is not None
                else f"loss {metrics.get('loss', float('nan')):.4g}"
            )
            line = f"[green]done[/green] {result.run_id[:8]} {shown} ({result.seconds:.1f} s)"
        elif result.status == RunStatus.DIVERGED:
            epoch = int(metrics.get("diverged_epoch", 0)) + 1
            line = f"[yellow]diverged[/yellow] {result.run_id[:8]} at epoch {epoch}"
        else:
            reason = (result.error or "").strip().splitlines()[-1:] or ["unknown error"]
            line = f"[red]failed[/red] {result.run_id[:8]}: {reason[0]}"
        self.progress.console.print(line, highlight=False)
