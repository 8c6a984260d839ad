"""Executors: how a study's tasks reach a worker (in this process, or a local process pool).

One small interface, `submit(tasks) -> iterator of RunResult`, so that a cluster engine can be
added later without touching the runner.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import replace
from typing import Protocol

from mnistlab.studies.execute import EpochListener, RunTask, execute
from mnistlab.studies.records import RunResult, RunSpec


class Executor(Protocol):
    """Runs tasks and yields each run's result as it becomes available (any order)."""

    def submit(self, tasks: Sequence[RunTask]) -> Iterator[RunResult]: ...


class InProcessExecutor:
    """Runs tasks one after another in this process, reporting each run's start and epochs."""

    def __init__(
        self,
        on_epoch: EpochListener | None = None,
        on_start: Callable[[RunSpec], None] | None = None,
    ) -> None:
        self.on_epoch = on_epoch
        self.on_start = on_start

    def submit(self, tasks: Sequence[RunTask]) -> Iterator[RunResult]:
        for task in tasks:
            yield from execute(task, self.on_epoch, self.on_start)


def _run_task(task: RunTask) -> list[RunResult]:
    return list(execute(task))


class LocalPoolExecutor:
    """Runs tasks in `jobs` worker processes that split the cores between them.

    Each worker gets cores // jobs torch threads (at least one), so two 1-thread workers
    never fight over one core. A chain's results come back when the whole chain is done.
    """

    def __init__(self, jobs: int) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        self.jobs = jobs
        self.threads = max(1, len(os.sched_getaffinity(0)) // jobs)

    def submit(self, tasks: Sequence[RunTask]) -> Iterator[RunResult]:
        context = multiprocessing.get_context("spawn")  # no forked torch thread pools
        with ProcessPoolExecutor(self.jobs, mp_context=context) as pool:
            pending: set[Future[list[RunResult]]] = {
                pool.submit(_run_task, _with_threads(task, self.threads)) for task in tasks
            }
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield from future.result()


def _with_threads(task: RunTask, threads: int) -> RunTask:
    return replace(task, threads=task.threads or threads)
