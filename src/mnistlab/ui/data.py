"""What the web UI reads from a results folder: studies, runs, histories and files, read-only.

Every read opens the store with SQLite's `mode=ro` (a WAL reader: a study that is running
keeps writing while the UI reads), so the UI never changes a results folder. This module
is the UI's only door to the store.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mnistlab.errors import MnistlabError
from mnistlab.studies.records import RunRecord
from mnistlab.studies.results_folder import DB_NAME
from mnistlab.studies.spec import StudySpec
from mnistlab.studies.store import ArtifactRow, Store, StoreError, StudySummary
from mnistlab.studies.summary import TableKind, tables_of
from mnistlab.studies.tables import Table

REPORT_PATTERNS = ("report.html", "analysis-*.html")  # what `report` / `analyze` write


class NotFound(MnistlabError):
    """A study, run or file the UI was asked for is not in the results folder."""


@dataclass(frozen=True)
class StudyEntry:
    """One line of the studies list: the study, its run counts and its last activity."""

    summary: StudySummary
    last_activity: str


@dataclass(frozen=True)
class RunDetail:
    """Everything the run page shows: the record, History, artifacts and timestamps."""

    record: RunRecord
    history: dict[str, list[float]]
    artifacts: dict[str, ArtifactRow]
    times: dict[str, str | None] = field(default_factory=dict)


class Results:
    """A results folder, read-only: `Results(path).studies()`, `.study(name)`, `.run(id)`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()

    # --- the store ---

    def _connect(self) -> Store:
        """A read-only connection to the store (WAL reader); NotFound when there is none."""
        path = self.folder / DB_NAME
        if not path.is_file():
            raise NotFound(f"{self.folder}: no results store here ({DB_NAME}); run a study first")
        try:
            return Store.open_readonly(path)
        except StoreError as exc:
            raise NotFound(str(exc)) from None

    def studies(self) -> list[StudyEntry]:
        """Every study with its run counts by status and when it last changed (UTC)."""
        if not (self.folder / DB_NAME).is_file():
            return []
        with self._connect() as store:
            summaries = store.list_studies()
            latest = store.last_activity()
        return [StudyEntry(s, max(s.updated, latest.get(s.name) or "")) for s in summaries]

    def spec(self, name: str) -> StudySpec:
        """A stored study's spec; NotFound when there is no such study."""
        with self._connect() as store:
            row = store.get_study(name)
        if row is None:
            raise NotFound(f"no study named {name!r} in {self.folder}")
        return StudySpec.model_validate_json(row.spec_json)

    def runs(self, name: str) -> list[RunRecord]:
        """A study's runs in expansion order (NotFound for an unknown study)."""
        self.spec(name)
        with self._connect() as store:
            return store.runs(name)

    def tables(self, name: str, sort: str | None = None) -> dict[TableKind, Table]:
        """The study's tables as `mnistlab show` builds them: summary, selection, cv, runs."""
        return tables_of(self.spec(name), self.runs(name), sort)

    def histories(self, name: str) -> dict[str, dict[str, list[float]]]:
        """Each run's History so far (a running run's epochs too), by run id."""
        with self._connect() as store:
            return store.histories(name)

    def run(self, run_id: str) -> RunDetail:
        """One run with its History, artifacts and timestamps; NotFound when not stored."""
        with self._connect() as store:
            record = store.run(run_id)
            if record is None:
                raise NotFound(f"no run {run_id!r} in {self.folder}")
            times = asdict(store.times(record.study)[run_id])
            return RunDetail(record, store.history(run_id), store.artifacts(run_id), times)

    # --- files ---

    def file(self, relative: str) -> Path:
        """A file inside the results folder; NotFound for anything outside it or missing.

        `relative` is taken as the URL gave it: `../`, absolute paths and links that lead out
        of the folder are refused, so no route can read beyond the results folder.
        """
        candidate = (self.folder / relative).resolve()
        if not candidate.is_relative_to(self.folder) or not candidate.is_file():
            raise NotFound(f"no file {relative!r} in the results folder")
        return candidate

    def reports(self, name: str) -> list[str]:
        """The study's HTML reports and analyses written by `report` / `analyze`, as paths
        relative to the results folder."""
        folder = self.folder / name
        if not folder.is_dir():
            return []
        found = {p for pattern in REPORT_PATTERNS for p in folder.glob(pattern) if p.is_file()}
        return sorted(str(p.relative_to(self.folder)) for p in found)


def finite(value: Any) -> Any:
    """JSON-safe numbers: NaN and infinities become None, recursively through lists/dicts."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
