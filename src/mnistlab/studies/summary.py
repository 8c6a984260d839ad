"""What `mnistlab show`, `studies`, `compare` and `export` print: tables built from the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mnistlab.status import PROBLEMS
from mnistlab.studies.compare import compare_tables
from mnistlab.studies.export import export_table
from mnistlab.studies.records import RunRecord
from mnistlab.studies.results_folder import existing_store, has_store, open_store
from mnistlab.studies.spec import StudySpec
from mnistlab.studies.stats import cv_summary, select_best
from mnistlab.studies.store import Store, StoreError, StudySummary
from mnistlab.studies.tables import (
    Table,
    cv_table,
    runs_table,
    selection_table,
    summary_column,
    summary_table,
)


@dataclass
class Report:
    """A study's tables, in the order `show` prints them."""

    study: str
    description: str
    tables: list[Table] = field(default_factory=list)


def stored_spec(store: Store, name: str, results: Path) -> StudySpec:
    """The spec of a stored study; a one-line error naming the studies there when unknown."""
    row = store.get_study(name)
    if row is None:
        known = ", ".join(s.name for s in store.list_studies()) or "none"
        raise StoreError(f"{results}: no study named {name!r} (studies here: {known})")
    return StudySpec.model_validate_json(row.spec_json)


def _load(store: Store, name: str, results: Path) -> tuple[StudySpec, list[RunRecord]]:
    return stored_spec(store, name, results), store.runs(name)


def list_studies(results: Path) -> list[StudySummary]:
    """The studies of a results store, with run counts by status."""
    if not has_store(results):
        return []
    with open_store(results) as store:
        return store.list_studies()


def summary_of(spec: StudySpec, runs: list[RunRecord], sort: str | None = None) -> Table:
    """One row per configuration with the study's own columns (mean ± std over repetitions)."""
    columns = None
    if spec.table is not None:
        columns = [summary_column(c.title, c.field, c.metric) for c in spec.table.columns]
        sort = sort or spec.table.sort
    trained = [r for r in runs if r.role == "train"]
    return summary_table(trained, columns, sort, title=f"{spec.name}: summary")


TableKind = Literal["summary", "selection", "cv", "runs"]
TABLE_KINDS: tuple[TableKind, ...] = ("summary", "selection", "cv", "runs")


def study_tables(name: str, results: Path, *, sort: str | None = None) -> dict[TableKind, Table]:
    """Every table `show` can print, by kind: summary, selection (the `select` block's best
    settings), cv (cross-validation with its best setting) and runs; a kind the study
    does not have (no `select`, no `cross_validation`) is absent."""
    with existing_store(results) as store:
        return tables_of(*_load(store, name, results), sort)


def tables_of(spec: StudySpec, runs: list[RunRecord], sort: str | None) -> dict[TableKind, Table]:
    """A study's tables from its spec and runs (what `study_tables` reads from the store)."""
    tables: dict[TableKind, Table] = {"summary": summary_of(spec, runs, sort)}
    trained = [r for r in runs if r.role == "train"]
    if spec.select is not None:
        chosen = select_best(
            trained,
            spec.select.metric,
            spec.select.over,
            spec.select.mode,
            spec.select.best_repetition_by,
        )
        tables["selection"] = selection_table(chosen)
    cv = spec.cross_validation
    if cv is not None:
        tables["cv"] = cv_table(cv_summary(runs, cv.metric, list(cv.grid)))
    tables["runs"] = runs_table(runs)
    return tables


def study_report(
    name: str, results: Path, *, sort: str | None = None, with_runs: bool = False
) -> Report:
    """Every table of a study: summary, selection, cross-validation, problem runs."""
    with existing_store(results) as store:
        spec, runs = _load(store, name, results)
    tables = tables_of(spec, runs, sort)
    report = Report(name, spec.description, [tables.pop("summary")])
    report.tables += [tables[kind] for kind in ("selection", "cv") if kind in tables]
    problems = [r for r in runs if r.status in PROBLEMS]
    if with_runs:
        report.tables.append(tables["runs"])
    elif problems:
        report.tables.append(runs_table(problems, title="diverged or failed runs"))
    return report


def compare_studies(a: str, b: str, results: Path) -> Table:
    """Two studies' summaries side by side, matched on the columns that are not metrics."""
    with existing_store(results) as store:
        first = summary_of(*_load(store, a, results))
        second = summary_of(*_load(store, b, results))
    keys = [
        title
        for title, metric in zip(first.columns, first.metrics, strict=True)
        if metric is None and title in second.columns and title not in {"n", "status"}
    ]
    return compare_tables(first, second, keys, names=(a, b))


def export_study(
    name: str,
    results: Path,
    format: Literal["csv", "json", "markdown"],
    table: TableKind = "summary",
) -> str:
    """One of a study's tables as CSV, JSON (raw numbers) or a Markdown table.

    A table the study does not have (`selection` without a `select` block, `cv` without
    `cross_validation`) is a one-line `StoreError` saying which it has.
    """
    tables = study_tables(name, results)
    if table not in tables:
        raise StoreError(f"study {name!r} has no {table} table (it has: {', '.join(tables)})")
    return export_table(tables[table], format)
