"""The study runner: expand, skip what is finished, run the rest, store each result as it lands."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from mnistlab.data.cache import DataCache
from mnistlab.errors import MnistlabError
from mnistlab.status import FINISHED, RunStatus
from mnistlab.studies.execute import RunEvents, RunTask, file_digest
from mnistlab.studies.executors import check_executor, make_executor
from mnistlab.studies.expand import expand, refit_runs
from mnistlab.studies.options import RunOptions
from mnistlab.studies.records import RunRecord, RunResult, RunSpec
from mnistlab.studies.results_folder import has_store, open_store, weights_path
from mnistlab.studies.spec import StudySpec
from mnistlab.studies.stacking import plan_stacks
from mnistlab.studies.store import Store


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
class RunCounts:
    """What a `run_study` call did: runs it finished, and the study's runs by status."""

    study: str
    counts: dict[str, int] = field(default_factory=dict)
    ran: int = 0


REPORT_ONLY_FIELDS = frozenset({"description", "analyses", "table", "select"})
"""Study fields that change what is reported, not what runs: editing them keeps the runs."""


def spec_digest(spec: StudySpec) -> str:
    """Identity of what a study runs: a file that would run differently is another study."""
    return hashlib.sha256(spec.model_dump_json(exclude=REPORT_ONLY_FIELDS).encode()).hexdigest()


def plan_study(spec: StudySpec, options: RunOptions) -> Plan:
    """Expand a study and compare with the store, writing nothing."""
    runs = expand(spec, DataCache(options.data_dir).fingerprint)
    records: dict[str, RunRecord] = {}
    if has_store(options.results):
        with open_store(options.results) as store:
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
    spec: StudySpec, source: str, options: RunOptions, data: DataCache | None = None
) -> RunCounts:
    """Run every unfinished run of a study and store each result in one transaction.

    A killed study resumes: runs left `running` by a dead process go back to `pending`,
    finished ones are skipped. Each run is claimed first (`Store.claim_runs`), so two
    processes running one study on one results folder split its runs, none run twice. A
    diverged or failed run never stops the study. `options` say where and how (`RunOptions`);
    with `options.stack`, independent runs of one architecture train as one stacked model
    (each equal to its run alone), except runs that record training-time captures, which
    always train alone. `data` is the data cache the runs share (default:
    a new one on `options.data_dir`); pass one to share it with what comes after the run.
    """
    check_executor(options)
    data = data or DataCache(options.data_dir)
    if options.captures is None:
        from mnistlab.analysis import captures_for  # the analyses say what they need

        options = replace(options, captures=tuple(captures_for(spec)))
    with open_store(options.results) as store:
        store.save_study(
            spec.name,
            spec.description,
            spec.model_dump_json(),
            spec_digest(spec),
            source,
            replace=options.fresh,
        )
        store.reset_interrupted(spec.name)
        runs = expand(spec, data.fingerprint)
        store.add_runs(runs)
        counts = RunCounts(spec.name)
        todo, held = _claim(store, spec.name, runs)
        if options.listener is not None:
            options.listener.on_study_begin(spec.name, len(runs), len(runs) - len(todo))
        counts.ran += _run(store, todo, runs, options, data)
        # refits need every fold's result: with folds held by another process, it refits
        if spec.cross_validation is not None and spec.cross_validation.refit and not held:
            refits = refit_runs(spec, store.runs(spec.name), data.fingerprint)
            store.add_runs(refits)
            todo, _ = _claim(store, spec.name, refits)
            counts.ran += _run(store, todo, refits, options, data)
        counts.counts = {k: n for k, n in store.counts(spec.name).items() if n}
    return counts


def _claim(store: Store, study: str, runs: Sequence[RunSpec]) -> tuple[list[RunSpec], int]:
    """Claim the unfinished runs no other live process holds: (those to run, how many held)."""
    status = {r.run_id: r.status for r in store.runs(study)}
    unfinished = [r for r in runs if status.get(r.run_id) not in FINISHED]
    worker = f"{os.uname().nodename}:{os.getpid()}"
    mine = store.claim_runs(study, [r.run_id for r in unfinished], worker)
    return [r for r in unfinished if r.run_id in mine], len(unfinished) - len(mine)


def _run(
    store: Store,
    todo: list[RunSpec],
    every: Sequence[RunSpec],
    options: RunOptions,
    data: DataCache,
) -> int:
    """Run `todo` as tasks (continue-mode chains stay together); return how many finished."""
    if not todo:
        return 0
    records = {r.run_id: r for r in store.runs(every[0].study)}
    tasks, blocked = _tasks(todo, records, options)
    if options.stack and options.engine == "auto":
        tasks = plan_stacks(tasks, data)
    finished = 0
    for result in blocked:
        _store_result(store, result, options)
        finished += 1
    listener = options.listener

    def on_epoch(run: RunSpec, epoch: int, epochs: int, logs: dict[str, float]) -> None:
        store.record_epoch(run.run_id, epoch, logs)  # readers follow the run live
        if listener is not None:
            listener.on_epoch(run, epoch, epochs, logs)

    events = RunEvents(
        on_start=lambda run, worker: store.mark_running(run.run_id, worker), on_epoch=on_epoch
    )
    executor = make_executor(options, tasks, data, events)
    try:
        for result in executor.submit(tasks):
            _store_result(store, result, options)
            finished += 1
    except MnistlabError:
        raise
    except Exception as exc:  # a worker process died: what finished is stored, rerun resumes
        raise MnistlabError(
            f"a worker stopped unexpectedly ({exc!r}); run again to resume"
        ) from exc
    return finished


def _tasks(
    todo: list[RunSpec], records: dict[str, RunRecord], options: RunOptions
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
        parent = run.parent
        parent_weights = weights_path(options.results, run.study, parent) if parent else None
        tasks.append(
            RunTask(
                tuple(chain),
                options.results,
                options.data_dir,
                parent_weights,
                threads=options.threads,
                device=options.device,
                captures=options.captures or (),
                engine=options.engine,
            )
        )
    return tasks, blocked


def _store_result(store: Store, result: RunResult, options: RunOptions) -> None:
    artifacts = {}
    for kind, path in result.artifacts.items():
        file = Path(path)
        digest, size = file_digest(file)
        artifacts[kind] = (str(file.relative_to(options.results)), digest, size)
    store.finish_run(result, artifacts)
    if options.listener is not None:
        options.listener.on_run_end(result)
