"""Executors: how a study's tasks reach a worker (this process, a local process pool, Ray).

An executor is one method, `submit(tasks) -> iterator of RunResult`, and a promise:

- it yields one `RunResult` for every run of every task, in any order, each as soon as it
  is known (a run that raises is a `failed` result, never an exception: `execute` sees to
  that); an exception out of `submit` means the executor itself broke, and the runner
  keeps what it stored so far (a rerun resumes);
- it calls `events.on_start(run, worker)` when a run starts, or, when it cannot tell, for
  each run before the work leaves; the runner marks the run `running` by that worker;
- it feeds `events.on_epoch` when the epochs happen where the display is (this process);
- it never writes the store: the runner, in the driving process, stores each result.

`make_executor` builds the executor that `RunOptions.executor` names; a new kind is one
class here (or beside, as `ray_executor.RayExecutor`) plus one branch there.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mnistlab.data.cache import DataCache
from mnistlab.errors import MnistlabError, SpecError
from mnistlab.runtime import select_device
from mnistlab.studies.execute import (
    RunEvents,
    RunTask,
    execute,
    least_seconds,
    one_thread_run,
)
from mnistlab.studies.options import ExecutorKind, RunOptions
from mnistlab.studies.records import RunResult, RunSpec

if TYPE_CHECKING:
    from mnistlab.studies.ray_executor import RayExecutor

WORKER_START_SECONDS = 5.0
"""What starting the worker processes costs (fresh interpreters importing torch, loading the
compiled kernels and the dataset, side by side): `auto_jobs` pools only work that saves
more. Measured with (b) as a 4-run study of 24 run-epochs: 4.7 s in this process, 7.4 s in
two workers."""

RAY_MISSING = "--executor ray needs Ray: pip install -e '.[ray]'"


class Executor(Protocol):
    """Runs tasks and yields each run's result as it becomes available (any order)."""

    def submit(self, tasks: Sequence[RunTask]) -> Iterator[RunResult]: ...


def make_executor(
    options: RunOptions, tasks: Sequence[RunTask], data: DataCache, events: RunEvents
) -> Executor:
    """The executor `options.executor` names, sized for these tasks.

    Local: `options.jobs` worker processes, or `auto_jobs` when not given; one job runs
    in this process, sharing `data` with the runner. Ray: Ray tasks as `options.cluster`
    says (`ray_executor.RayExecutor`); Ray is an optional dependency, imported only here.
    """
    if options.executor == ExecutorKind.LOCAL:
        jobs = options.jobs or auto_jobs(tasks, data, options.device)
        if jobs > 1:
            return LocalPoolExecutor(jobs, events)
        return InProcessExecutor(data, events)
    if options.executor == ExecutorKind.RAY:
        return _ray_executor()(options.cluster, data, events)
    raise ValueError(f"executor: unknown kind {options.executor!r}")


def check_executor(options: RunOptions) -> None:
    """Raise the one-line error now, before a study touches its store, when the executor
    `options` name cannot run as asked (Ray not installed; CUDA on Ray without a GPU)."""
    if options.executor != ExecutorKind.RAY:
        return
    _ray_executor()
    if options.device.startswith("cuda") and options.cluster.gpus_per_run == 0:
        raise SpecError("device: --device cuda on Ray needs --gpus-per-run > 0")


def _ray_executor() -> type[RayExecutor]:
    """The Ray executor's class, imported on demand: Ray is an optional dependency."""
    try:
        from mnistlab.studies.ray_executor import RayExecutor
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "ray":
            raise
        raise MnistlabError(RAY_MISSING) from None
    return RayExecutor


def auto_jobs(tasks: Sequence[RunTask], data: DataCache, device: str) -> int:
    """Tasks at once when the user did not say: one per core when every task is one run of a
    small dense model that trains best on one thread (`runtime.default_threads`) and the
    study's least training time (`least_seconds`: every run at the compiled engine's speed)
    saves more than `WORKER_START_SECONDS` spread over the cores; else one.

    Two 1-thread workers finish such runs faster than one 2-thread process
    (docs/performance.md); stacks and chains keep every core; on a GPU, one process keeps
    the device.
    """
    cores = len(os.sched_getaffinity(0))
    if cores < 2 or len(tasks) < 2 or select_device(device).type != "cpu":
        return 1
    if any(task.stacked or len(task.runs) > 1 for task in tasks):
        return 1
    runs = [task.runs[0] for task in tasks]
    if not all(one_thread_run(run, data) for run in runs):
        return 1
    workers = min(cores, len(runs))
    least = sum(least_seconds(run, data) or 0.0 for run in runs)
    if least * (1 - 1 / workers) <= WORKER_START_SECONDS:
        return 1  # even at the compiled engine's speed the workers would cost more than they save
    return workers


class InProcessExecutor:
    """Runs tasks one after another in this process, reporting each run's start and epochs."""

    def __init__(self, data: DataCache, events: RunEvents) -> None:
        self.data = data
        self.events = events
        self.worker = f"{os.uname().nodename}:{os.getpid()}"

    def submit(self, tasks: Sequence[RunTask]) -> Iterator[RunResult]:
        def on_start(run: RunSpec) -> None:
            self.events.on_start(run, self.worker)

        for task in tasks:
            yield from execute(task, self.data, self.events.on_epoch, on_start)


class LocalPoolExecutor:
    """Runs tasks in `jobs` worker processes that split the cores between them.

    Each worker gets cores // jobs torch threads (at least one), so two 1-thread workers
    never fight over one core. A chain's results come back when the whole chain is done;
    the workers cannot say when a run starts, so every run is reported started up front.
    """

    def __init__(self, jobs: int, events: RunEvents) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        self.jobs = jobs
        self.events = events
        self.threads = max(1, len(os.sched_getaffinity(0)) // jobs)

    def submit(self, tasks: Sequence[RunTask]) -> Iterator[RunResult]:
        worker = f"pool of {self.jobs} in {os.getpid()}"
        for task in tasks:
            for run in task.runs:
                self.events.on_start(run, worker)
        context = multiprocessing.get_context("spawn")  # no forked torch thread pools
        with ProcessPoolExecutor(self.jobs, mp_context=context) as pool:
            pending: set[Future[list[RunResult]]] = {
                pool.submit(_run_task, _with_threads(task, self.threads)) for task in tasks
            }
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield from future.result()


@cache
def _worker_data(data_dir: Path | None) -> DataCache:
    """A worker process's data, kept across the tasks it runs (one cache per data folder)."""
    return DataCache(data_dir)


def _run_task(task: RunTask) -> list[RunResult]:
    return list(execute(task, _worker_data(task.data_dir)))


def _with_threads(task: RunTask, threads: int) -> RunTask:
    return replace(task, threads=task.threads or threads)
