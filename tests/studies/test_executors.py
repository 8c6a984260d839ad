"""Executors: which one `RunOptions` picks, how many jobs, and what they report."""

import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from mnistlab.data.cache import DataCache
from mnistlab.errors import MnistlabError
from mnistlab.studies.execute import RunEvents, RunTask, least_seconds, training_steps
from mnistlab.studies.executors import (
    RAY_MISSING,
    WORKER_START_SECONDS,
    InProcessExecutor,
    LocalPoolExecutor,
    auto_jobs,
    make_executor,
)
from mnistlab.studies.expand import expand
from mnistlab.studies.loading import parse_study
from mnistlab.studies.options import ExecutorKind, RunOptions

BASE = """
name: tiny
data: {dataset: digits, scaling: minmax, validation: {kind: tail, n: 300}}
model: {hidden: [8]}
training: {optimizer: {name: adam, learning_rate: 0.01}, epochs: 2, batch_size: 64}
"""
DATA = DataCache()


def _tasks(extra: str) -> list[RunTask]:
    spec = parse_study(BASE + extra, "tiny.yaml")
    return [RunTask((run,), Path("results")) for run in expand(spec, DATA.fingerprint)]


def _least(tasks: list[RunTask]) -> float:
    return sum(least_seconds(t.runs[0], DATA) for t in tasks)


def test_least_seconds_counts_steps_at_the_compiled_engines_cost():
    (task,) = _tasks("")
    steps = training_steps(task.runs[0], DATA)
    rows = DATA.training_rows(task.runs[0].config.data)
    assert steps == 2 * -(-rows // 64) == 46  # two epochs of batches of 64
    macs = 64 * 8 + 8 * 10
    assert least_seconds(task.runs[0], DATA) == pytest.approx(
        steps * 2e-6 + steps * 64 * 6 * macs / 50e9
    )


def test_auto_jobs_pools_small_dense_runs_only_when_there_is_enough_work():
    cores = len(os.sched_getaffinity(0))
    long_small = _tasks(
        "grid: {training.epochs: [4000], training.batch_size: [1]}\nrepetitions: 2\n"
    )
    assert _least(long_small) / 2 > WORKER_START_SECONDS
    assert auto_jobs(long_small, DATA, "cpu") == (min(cores, 2) if cores > 1 else 1)
    stacked = [replace(long_small[0], runs=tuple(t.runs[0] for t in long_small), stacked=True)]
    assert auto_jobs(stacked * 2, DATA, "cpu") == 1  # stacks keep every core
    # 120,000 steps of batch 1, ~0.3 s at the compiled engine's speed: not worth two workers
    short_small = _tasks(
        "grid: {training.epochs: [40], training.batch_size: [1]}\nrepetitions: 2\n"
    )
    assert _least(short_small) < WORKER_START_SECONDS
    assert auto_jobs(short_small, DATA, "cpu") == 1
    wide = _tasks(
        "grid: {model.hidden: [[2048, 2048]], training.epochs: [40], training.batch_size: [1]}\n"
        "repetitions: 2\n"
    )
    assert _least(wide) / 2 > WORKER_START_SECONDS
    assert auto_jobs(wide, DATA, "cpu") == 1  # a 2048x2048 GEMM per step wants every core


def test_the_options_pick_the_executor():
    events = RunEvents(on_start=lambda run, worker: None)
    tasks = _tasks("repetitions: 2\n")
    pool = make_executor(RunOptions(jobs=2), tasks, DATA, events)
    assert isinstance(pool, LocalPoolExecutor) and pool.jobs == 2
    for jobs in (1, None):  # None: auto_jobs finds these runs too short for workers
        here = make_executor(RunOptions(jobs=jobs), tasks, DATA, events)
        assert isinstance(here, InProcessExecutor) and here.data is DATA


def test_the_in_process_executor_reports_each_start_with_its_worker(tmp_path):
    started: list[tuple[str, str]] = []
    events = RunEvents(on_start=lambda run, worker: started.append((run.run_id, worker)))
    tasks = [replace(task, results=tmp_path) for task in _tasks("repetitions: 2\n")]
    results = list(InProcessExecutor(DATA, events).submit(tasks))
    assert [r.status for r in results] == ["done", "done"]
    worker = f"{os.uname().nodename}:{os.getpid()}"
    assert started == [(t.runs[0].run_id, worker) for t in tasks]


def test_the_ray_executor_without_ray_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails, as when not installed
    monkeypatch.delitem(sys.modules, "mnistlab.studies.ray_executor", raising=False)
    events = RunEvents(on_start=lambda run, worker: None)
    options = RunOptions(executor=ExecutorKind.RAY)
    with pytest.raises(MnistlabError) as raised:
        make_executor(options, _tasks("repetitions: 2\n"), DATA, events)
    assert str(raised.value) == RAY_MISSING == "--executor ray needs Ray: pip install -e '.[ray]'"
