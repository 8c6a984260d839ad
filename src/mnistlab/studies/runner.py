"""The study runner: expand, skip what is finished, run the rest, store each result as it lands."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from mnistlab.data import DataSpec
from mnistlab.errors import MnistlabError
from mnistlab.models.stacked import stack_conflicts
from mnistlab.runtime import select_device
from mnistlab.studies.execute import (
    EpochListener,
    RunTask,
    file_digest,
    fingerprint_data,
    one_thread_run,
    training_steps,
    worth_stacking,
)
from mnistlab.studies.executors import Executor, InProcessExecutor, LocalPoolExecutor
from mnistlab.studies.expand import expand, refit_runs
from mnistlab.studies.records import RunRecord, RunResult, RunSpec
from mnistlab.studies.results_folder import has_store, open_store, weights_path
from mnistlab.studies.spec import StudySpec
from mnistlab.studies.status import FINISHED, RunStatus
from mnistlab.studies.store import Store
from mnistlab.training.stacked import training_conflicts

MIN_POOL_STEPS = 50_000
"""Training steps a study needs before `auto_jobs` starts worker processes: each worker
takes ~2 s to start (a fresh interpreter importing torch); small steps take ~0.1 ms."""
MAX_STACK = 32  # members per stack; larger stacks gain little once per-member work dominates


class StudyListener(Protocol):
    """What the runner tells a progress display."""

    def on_study_begin(self, study: str, total: int, finished: int) -> None: ...
    def on_run_end(self, result: RunResult) -> None: ...
    def on_epoch(self, run: RunSpec, epoch: int, epochs: int, logs: dict[str, float]) -> None: ...


@dataclass
class Plan:
    """What `run` would do: every run of the study, and those not finished yet."""

    study: StudySpec
    runs: list[RunSpec]
    todo: list[RunSpec]
    seconds_per_epoch: float | None  # measured on this study's finished runs, if any

    def by_variant(self) -> list[tuple[str | None, int, int, str]]:
        """(variant, runs, runs to do, epochs per run) in study order."""
        rows: dict[str | None, list] = {}
        todo = {r.run_id for r in self.todo}
        for run in self.runs:
            row = rows.setdefault(run.variant, [0, 0, set()])
            row[0] += 1
            row[1] += run.run_id in todo
            row[2].add(run.config.training.epochs)
        return [
            (name, n, left, ", ".join(map(str, sorted(epochs))))
            for name, (n, left, epochs) in rows.items()
        ]

    @property
    def estimate_seconds(self) -> float | None:
        """Time left at the measured pace (None until a run of the study was measured)."""
        if self.seconds_per_epoch is None:
            return None
        return self.seconds_per_epoch * sum(r.config.training.epochs for r in self.todo)


@dataclass
class Outcome:
    """Counts of a finished `run` call, by status, over the whole study."""

    study: str
    counts: dict[str, int] = field(default_factory=dict)
    ran: int = 0


REPORT_ONLY_FIELDS = frozenset({"description", "analyses", "table", "select"})
"""Study fields that change what is reported, not what runs: editing them keeps the runs."""


def spec_digest(spec: StudySpec) -> str:
    """Identity of what a study runs: a file that would run differently is another study."""
    return hashlib.sha256(spec.model_dump_json(exclude=REPORT_ONLY_FIELDS).encode()).hexdigest()


def plan_study(spec: StudySpec, results: Path, data_dir: Path | None = None) -> Plan:
    """Expand a study and compare with the store, writing nothing."""
    runs = expand(spec, lambda data: fingerprint_data(data, data_dir))
    records: dict[str, RunRecord] = {}
    if has_store(results):
        with open_store(results) as store:
            records = {r.run_id: r for r in store.runs(spec.name)}
    todo = [r for r in runs if r.run_id not in records or records[r.run_id].status not in FINISHED]
    measured = [r for r in records.values() if r.status == RunStatus.DONE and r.seconds]
    pace = None
    if measured:
        pace = sum(r.seconds or 0.0 for r in measured) / sum(
            max(1.0, r.metrics.get("epochs_run", 1.0)) for r in measured
        )
    return Plan(spec, runs, todo, pace)


def count_runs(spec: StudySpec) -> int:
    """How many runs a study expands to (cross-validation refits not counted), reading no data."""
    return len(expand(spec, lambda data: "unread"))


def run_study(
    spec: StudySpec,
    source: str,
    results: Path,
    *,
    fresh: bool = False,
    jobs: int | None = None,
    data_dir: Path | None = None,
    device: str = "auto",
    stack: bool = True,
    listener: StudyListener | None = None,
    captures: Sequence[str] | None = None,
    threads: int | None = None,
) -> Outcome:
    """Run every unfinished run of a study and store each result in one transaction.

    A killed study resumes: runs left `running` go back to `pending`, finished ones are
    skipped. A diverged or failed run never stops the study. `jobs` runs at once in worker
    processes (None: `auto_jobs` decides); `threads` fixes torch's threads per run (None:
    every core, or one for a small dense model). With `stack`, independent runs
    of one architecture train as one stacked model (each equal to its run alone), except
    runs that record training-time `captures` (default: what the study's analyses need,
    `mnistlab.analysis.captures_for`), which always train alone.
    """
    if captures is None:
        from mnistlab.analysis import captures_for  # the analyses say what they need

        captures = captures_for(spec)
    probes = tuple(captures)
    with open_store(results) as store:
        store.save_study(
            spec.name,
            spec.description,
            spec.model_dump_json(),
            spec_digest(spec),
            source,
            replace=fresh,
        )
        store.reset_interrupted(spec.name)

        def fingerprint(data: DataSpec) -> str:
            return fingerprint_data(data, data_dir)

        runs = expand(spec, fingerprint)
        store.add_runs(runs)
        worker = f"{os.uname().nodename}:{os.getpid()}"
        outcome = Outcome(spec.name)
        todo = _unfinished(store, spec.name, runs)

        def executor(tasks: Sequence[RunTask]) -> Executor:
            count = jobs or auto_jobs(tasks, data_dir, device)
            return _executor(count, listener, lambda run: store.mark_running(run.run_id, worker))

        if listener is not None:
            listener.on_study_begin(spec.name, len(runs), len(runs) - len(todo))
        outcome.ran += _run(
            store, executor, todo, runs, results, data_dir, device, stack, listener, probes, threads
        )
        if spec.cross_validation is not None and spec.cross_validation.refit:
            refits = refit_runs(spec, store.runs(spec.name), fingerprint)
            store.add_runs(refits)
            todo = _unfinished(store, spec.name, refits)
            outcome.ran += _run(
                store,
                executor,
                todo,
                refits,
                results,
                data_dir,
                device,
                stack,
                listener,
                probes,
                threads,
            )
        outcome.counts = {k: n for k, n in store.counts(spec.name).items() if n}
    return outcome


def auto_jobs(tasks: Sequence[RunTask], data_dir: Path | None, device: str) -> int:
    """Tasks at once when the user did not say: one per core when every task is one run of a
    small dense model that trains best on one thread (`runtime.default_threads`), else one.

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
    if sum(training_steps(run, data_dir) for run in runs) < MIN_POOL_STEPS:
        return 1  # starting the workers would cost more than they save
    if all(one_thread_run(run, data_dir) for run in runs):
        return min(cores, len(runs))
    return 1


def _executor(
    jobs: int, listener: StudyListener | None, on_start: Callable[[RunSpec], None]
) -> Executor:
    """In this process (runs marked running as they start), or a pool of `jobs` workers."""
    if jobs > 1:
        return LocalPoolExecutor(jobs)
    on_epoch: EpochListener | None = listener.on_epoch if listener is not None else None
    return InProcessExecutor(on_epoch, on_start)


def _unfinished(store: Store, study: str, runs: Sequence[RunSpec]) -> list[RunSpec]:
    status = {r.run_id: r.status for r in store.runs(study)}
    return [r for r in runs if status.get(r.run_id) not in FINISHED]


def _run(
    store: Store,
    executor_for: Callable[[Sequence[RunTask]], Executor],
    todo: list[RunSpec],
    every: Sequence[RunSpec],
    results: Path,
    data_dir: Path | None,
    device: str,
    stack: bool,
    listener: StudyListener | None,
    captures: tuple[str, ...] = (),
    threads: int | None = None,
) -> int:
    """Run `todo` as tasks (continue-mode chains stay together); return how many finished."""
    if not todo:
        return 0
    records = {r.run_id: r for r in store.runs(every[0].study)}
    tasks, blocked = _tasks(todo, records, results, data_dir, device)
    tasks = [replace(task, captures=captures, threads=threads) for task in tasks]
    if stack:
        tasks = _stacked(tasks)
    finished = 0
    for result in blocked:
        _store_result(store, result, results, listener)
        finished += 1
    executor = executor_for(tasks)
    if isinstance(executor, LocalPoolExecutor):  # its workers cannot tell when they start
        worker = f"pool of {executor.jobs} in {os.getpid()}"
        for task in tasks:
            for run in task.runs:
                store.mark_running(run.run_id, worker)
    try:
        for result in executor.submit(tasks):
            _store_result(store, result, results, listener)
            finished += 1
    except MnistlabError:
        raise
    except Exception as exc:  # a worker process died: what finished is stored, rerun resumes
        raise MnistlabError(
            f"a worker stopped unexpectedly ({exc!r}); run again to resume"
        ) from exc
    return finished


def _tasks(
    todo: list[RunSpec],
    records: dict[str, RunRecord],
    results: Path,
    data_dir: Path | None,
    device: str,
) -> tuple[list[RunTask], list[RunResult]]:
    """Group runs into tasks: a chain of continue-mode runs is one task, run in order.

    A chain whose finished parent diverged or failed cannot continue: its runs are reported
    as failed, naming the parent.
    """
    pending = {r.run_id: r for r in todo}
    child = {r.parent: r for r in todo if r.parent is not None}
    tasks: list[RunTask] = []
    blocked: list[RunResult] = []
    for run in todo:
        if run.parent is not None and run.parent in pending:
            continue  # not a chain head: its parent's task runs it
        chain = [run]
        while chain[-1].run_id in child:
            chain.append(child[chain[-1].run_id])
        parent = records.get(run.parent) if run.parent else None
        if parent is not None and parent.status != RunStatus.DONE:
            reason = f"continues run {parent.run_id}, which {parent.status}"
            blocked.extend(RunResult(r.run_id, RunStatus.FAILED, error=reason) for r in chain)
            continue
        parent_weights = weights_path(results, run.study, run.parent) if run.parent else None
        tasks.append(RunTask(tuple(chain), results, data_dir, parent_weights, device=device))
    return tasks, blocked


def _stacked(tasks: list[RunTask]) -> list[RunTask]:
    """Merge independent single runs that can train as one stack; chains stay as they are.

    Runs that record training-time captures train alone: the stacked loop has no probes.
    So do runs that train faster alone (`execute.worth_stacking`).
    """
    groups: list[list[RunTask]] = []
    kept: list[RunTask] = []
    for task in tasks:
        alone = len(task.runs) > 1 or task.runs[0].parent is not None or task.captures
        if alone or not worth_stacking(task.runs[0], task.data_dir):
            kept.append(task)
            continue
        for group in groups:
            if len(group) < MAX_STACK and _stackable(group[0].runs[0], task.runs[0]):
                group.append(task)
                break
        else:
            groups.append([task])
    for group in groups:
        runs = tuple(task.runs[0] for task in group)
        kept.append(replace(group[0], runs=runs, stacked=len(runs) > 1))
    return kept


def _stackable(a: RunSpec, b: RunSpec) -> bool:
    """Same data, same architecture, and training settings a stack can hold per member."""
    return (
        a.config.data == b.config.data
        and not stack_conflicts([a.config.model, b.config.model])
        and not training_conflicts([a.config.training, b.config.training])
    )


def _store_result(
    store: Store, result: RunResult, results: Path, listener: StudyListener | None
) -> None:
    artifacts = {}
    for kind, path in result.artifacts.items():
        file = Path(path)
        digest, size = file_digest(file)
        artifacts[kind] = (str(file.relative_to(results)), digest, size)
    store.finish_run(result, artifacts)
    if listener is not None:
        listener.on_run_end(result)
