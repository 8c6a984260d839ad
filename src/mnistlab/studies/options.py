"""How to run a study: one frozen set of run settings, from the command line or a notebook."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mnistlab.studies.records import RunResult, RunSpec
    from mnistlab.training.engines import Engine


class StudyListener(Protocol):
    """What the runner tells a progress display."""

    def on_study_begin(self, study: str, total: int, finished: int) -> None: ...
    def on_run_end(self, result: RunResult) -> None: ...
    def on_epoch(self, run: RunSpec, epoch: int, epochs: int, logs: dict[str, float]) -> None: ...


class ExecutorKind(StrEnum):
    """Where a study's runs train (`executors.make_executor` builds the one named)."""

    LOCAL = "local"  # this process, or `jobs` worker processes on this machine
    RAY = "ray"  # Ray tasks on a Ray cluster, or on a local Ray started for the study


@dataclass(frozen=True)
class ClusterOptions:
    """Where and with what a Ray executor runs each task (`ray_executor.RayExecutor`).

    `address` is the cluster's ("auto": the one this machine belongs to, "ray://host:port":
    a remote one through Ray Client; None: a local Ray started for the study, or the one
    this process already initialised); `cpus_per_run` and `gpus_per_run` are each task's
    resources (a fraction of a GPU packs several small runs on one GPU).
    """

    address: str | None = None
    cpus_per_run: int = 1
    gpus_per_run: float = 0.0

    def __post_init__(self) -> None:
        if self.cpus_per_run < 1:
            raise ValueError(f"cpus_per_run must be >= 1, got {self.cpus_per_run}")
        if self.gpus_per_run < 0:
            raise ValueError(f"gpus_per_run must be >= 0, got {self.gpus_per_run}")


@dataclass(frozen=True)
class RunOptions:
    """Settings of one `run_study` call; none of them changes what a run computes.

    `jobs` runs at once in worker processes (None: `executors.auto_jobs` decides);
    `threads` fixes torch's threads per run (None: every core, or one for a small dense
    model); `fresh` discards the study's stored runs first; `stack` trains independent runs
    of one architecture as one stacked model; `captures` are the training-time probes to
    record (None: what the study's analyses need, `mnistlab.analysis.captures_for`);
    `engine` forces one training engine for every run, and then nothing is stacked ("auto":
    `training.engines.choose_engine` picks per run, stacks where `stack` allows); `cluster`
    says where a Ray executor runs (`ClusterOptions`).
    """

    results: Path = Path("results")
    data_dir: Path | None = None
    jobs: int | None = None
    threads: int | None = None
    device: str = "auto"
    fresh: bool = False
    stack: bool = True
    captures: tuple[str, ...] | None = None
    engine: Engine = "auto"
    executor: ExecutorKind = ExecutorKind.LOCAL
    cluster: ClusterOptions = ClusterOptions()
    listener: StudyListener | None = None

    def __post_init__(self) -> None:
        for name in ("jobs", "threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
