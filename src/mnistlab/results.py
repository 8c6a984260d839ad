"""Results as data: a results folder's studies, runs, histories and statistics as pandas
DataFrames, and its trained models, read without ever writing, for notebooks and tools.

```python
from mnistlab.results import open_results

r = open_results("results")
r.runs("quickstart").groupby("variant")["test_accuracy"].agg(["mean", "std", "count"])
r.study("quickstart")  # in a notebook: the summary table and the learning curves
```

The store is opened with SQLite's `mode=ro` (a WAL reader: a study still running keeps
writing while a notebook reads), so nothing here can change a results folder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mnistlab.errors import MnistlabError
from mnistlab.status import WITH_RESULTS
from mnistlab.studies.export import flat_records
from mnistlab.studies.records import RunRecord
from mnistlab.studies.results_folder import DB_NAME
from mnistlab.studies.spec import StudySpec
from mnistlab.studies.stats import resolve_field
from mnistlab.studies.store import STATUSES, Store, StoreError
from mnistlab.studies.summary import tables_of
from mnistlab.studies.tables import Table, label_paths

if TYPE_CHECKING:
    from torch import nn

FIRST_METRICS = ("accuracy", "val_accuracy", "test_accuracy", "loss", "val_loss", "test_loss")
"""Final metrics in this order first (as `show` orders them), the others after, by name."""
HISTORY_COLUMNS = ("run_id", "epoch", "key", "value")


class ResultsError(MnistlabError):
    """A results folder, study or run asked for is not there (one line, naming it)."""


def open_results(path: str | Path = "results") -> Results:
    """Open a results folder for reading only (SQLite `mode=ro`; nothing is ever written).

    Parameters
    ----------
    path : str or Path
        The results folder (the one `mnistlab run --results` wrote), holding `mnistlab.db`.

    Returns
    -------
    Results
        Open until `close()` (or the end of a `with` block).

    Raises
    ------
    ResultsError
        The folder or its store is missing, or the file is not a readable results store.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ResultsError(f"{folder}: no such results folder")
    if not (folder / DB_NAME).is_file():
        raise ResultsError(f"{folder}: no results store here ({DB_NAME}); run a study first")
    try:
        store = Store.open_readonly(folder / DB_NAME)
    except StoreError as exc:
        raise ResultsError(str(exc)) from None
    return Results(folder, store)


class Results:
    """A results folder, read-only: its studies, runs, histories, statistics and models."""

    def __init__(self, folder: Path, store: Store) -> None:
        self.folder = folder
        self.store = store  # opened read-only: a write through it fails

    def close(self) -> None:
        """Close the store (idempotent)."""
        self.store.close()

    def __enter__(self) -> Results:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Results({str(self.folder)!r})"

    # --- studies ---

    def studies(self) -> pd.DataFrame:
        """One row per study: name, description, runs, a count per status, created, updated."""
        rows = [
            {
                "name": s.name,
                "description": s.description,
                "runs": s.total,
                **{str(status): s.counts.get(status, 0) for status in STATUSES},
                "created": s.created,
                "updated": s.updated,
            }
            for s in self.store.list_studies()
        ]
        frame = pd.DataFrame(
            rows, columns=["name", "description", "runs", *map(str, STATUSES), "created", "updated"]
        )
        for column in ("created", "updated"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame

    def study(self, name: str) -> Study:
        """One study, its tables and figures together (shown inline in a notebook)."""
        self.spec(name)
        return Study(self, name)

    def spec(self, study: str) -> StudySpec:
        """The stored study's validated spec; one line naming it when there is none."""
        row = self.store.get_study(study)
        if row is None:
            known = ", ".join(s.name for s in self.store.list_studies()) or "none"
            raise ResultsError(f"{self.folder}: no study named {study!r} (studies here: {known})")
        return StudySpec.model_validate_json(row.spec_json)

    def records(self, study: str) -> list[RunRecord]:
        """The study's runs as the store returns them, in expansion order."""
        self.spec(study)
        return self.store.runs(study)

    def record(self, study: str, run_id: str) -> RunRecord:
        """One run of the study, by its id or a unique prefix of it."""
        matches = [r for r in self.records(study) if r.run_id.startswith(run_id)]
        exact = [r for r in matches if r.run_id == run_id]
        if exact or len(matches) == 1:
            return (exact or matches)[0]
        if not matches:
            raise ResultsError(f"no run {run_id!r} in study {study!r} of {self.folder}")
        raise ResultsError(f"run {run_id!r} matches {len(matches)} runs of {study!r}; give more")

    # --- tables ---

    def runs(self, study: str) -> pd.DataFrame:
        """One row per run: what it is, how it ended, its final metrics and its timings.

        Returns
        -------
        DataFrame
            Columns: run_id, variant, one column per field path the grid or a variant sets
            (e.g. "model.hidden"; lists as tuples, so they group), repetition, seed, role,
            status, the final metrics (one float column each, NaN where a run has none;
            accuracies as fractions), seconds (training time), started, finished (UTC),
            error and group (the configuration's id, shared by its repetitions).
        """
        records = self.records(study)
        paths = label_paths([r.labels for r in records])
        metrics = _metric_names(records)
        times = self.store.times(study)
        rows = []
        for r in records:
            when = times[r.run_id]
            rows.append(
                {
                    "run_id": r.run_id,
                    "variant": r.variant,
                    **{p: _hashable(resolve_field(r, p)) for p in paths},
                    "repetition": r.repetition,
                    "seed": r.seed,
                    "role": r.role,
                    "status": str(r.status),
                    **{m: _number(r.metrics.get(m)) for m in metrics},
                    "seconds": _number(r.seconds),
                    "started": when.started,
                    "finished": when.finished,
                    "error": r.error,
                    "group": r.group,
                }
            )
        columns = [
            "run_id",
            "variant",
            *paths,
            "repetition",
            "seed",
            "role",
            "status",
            *metrics,
            "seconds",
            "started",
            "finished",
            "error",
            "group",
        ]
        frame = pd.DataFrame(rows, columns=columns)
        for column in (*metrics, "seconds"):
            frame[column] = frame[column].astype("float64")
        for column in ("started", "finished"):
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        return frame

    def history(self, study: str) -> pd.DataFrame:
        """Every run's per-epoch History in long format: run_id, epoch (0-based, as the
        store and `best_epoch` count), key (e.g. "val_loss") and value (NaN kept)."""
        self.spec(study)
        rows = [
            (run_id, epoch, key, _number(value))
            for run_id, history in self.store.histories(study).items()
            for key, values in history.items()
            for epoch, value in enumerate(values)
        ]
        frame = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
        return frame.astype({"epoch": "int64", "value": "float64"})

    def statistics(self, study: str) -> pd.DataFrame:
        """The summary `show` prints, one row per configuration, as numbers: each metric's
        mean, sample std (ddof=1) and n over repetitions in columns METRIC_mean, _std, _n."""
        return _frame(self.tables(study)["summary"])

    def selections(self, study: str) -> pd.DataFrame:
        """The `select` block's best settings as numbers (mean, std and n in their own
        columns); a study without a `select` block is a one-line error."""
        tables = self.tables(study)
        if "selection" not in tables:
            raise ResultsError(f"study {study!r} has no `select` block, so no selections")
        return _frame(tables["selection"])

    def tables(self, study: str) -> dict[str, Table]:
        """The tables `show` builds for the study (summary, selection, cv, runs), as
        display text and raw values; `statistics` and `selections` are their numbers."""
        return dict(tables_of(self.spec(study), self.records(study), None))

    # --- files and models ---

    def artifact(self, run: RunRecord, kind: str) -> Path | None:
        """The path of one of a run's stored files ("weights", "captures"), if it exists."""
        row = self.store.artifacts(run.run_id).get(kind)
        if row is None or not (self.folder / row.path).is_file():
            return None
        return self.folder / row.path

    def report(self, study: str) -> Path | None:
        """The study's HTML report (`mnistlab report`), if one was written."""
        from mnistlab.report.html import REPORT_NAME

        path = self.folder / study / REPORT_NAME
        return path if path.is_file() else None

    def load_model(self, study: str, run_id: str, data_dir: Path | None = None) -> nn.Module:
        """A run's trained torch network, rebuilt with its final weights, in eval mode.

        Parameters
        ----------
        study : str
            The study's name.
        run_id : str
            The run's id, or a unique prefix of it.
        data_dir : Path, optional
            Where the run's dataset is, needed only for weights stored without a model card.

        Returns
        -------
        torch.nn.Module
            Input as the run's data feeds it: (N, D) float32 for an MLP, already scaled.

        Raises
        ------
        MnistlabError
            One line: the run is unknown, did not finish with weights, or is not a network.
        """
        from mnistlab.predict.classify import run_classifier

        record = self.record(study, run_id)
        weights = self.artifact(record, "weights") if record.status in WITH_RESULTS else None
        if weights is None:
            raise ResultsError(
                f"run {record.run_id} of study {study!r} has no weights file ({record.status})"
            )
        return run_classifier(record, weights, data_dir).net


@dataclass(frozen=True)
class Study:
    """One study of a results folder: its tables, model loading, and an inline summary."""

    results: Results
    name: str

    @property
    def spec(self) -> StudySpec:
        """The study's validated spec."""
        return self.results.spec(self.name)

    def runs(self) -> pd.DataFrame:
        """One row per run (`Results.runs`)."""
        return self.results.runs(self.name)

    def history(self) -> pd.DataFrame:
        """Per-epoch History, long format (`Results.history`)."""
        return self.results.history(self.name)

    def statistics(self) -> pd.DataFrame:
        """Mean, std and n per configuration and metric (`Results.statistics`)."""
        return self.results.statistics(self.name)

    def selections(self) -> pd.DataFrame:
        """The best settings of the `select` block (`Results.selections`)."""
        return self.results.selections(self.name)

    def load_model(self, run_id: str, data_dir: Path | None = None) -> nn.Module:
        """A run's trained network in eval mode (`Results.load_model`)."""
        return self.results.load_model(self.name, run_id, data_dir)

    def curves_png(self) -> str | None:
        """The report's learning-curves figure as a PNG data URI; None when no run has
        a History yet."""
        from mnistlab.analysis import NotApplicable, StudyRuns, finished_runs
        from mnistlab.analysis.curves import CurvesOptions, curves
        from mnistlab.report.figures import draw
        from mnistlab.report.style import styled, to_png_data

        runs = finished_runs(self.results.records(self.name))
        context = StudyRuns(self.spec, runs, self.results.folder, self.results.store)
        options = CurvesOptions()
        try:
            result = curves(context, options)
        except NotApplicable:
            return None
        with styled():
            figures = draw(result, options)
            return to_png_data(figures[0][1]) if figures else None

    def _repr_html_(self) -> str:
        """The summary table and the learning curves, for Jupyter's rich display."""
        from mnistlab.report.html import from_table, render_table

        spec = self.spec
        summary = self.results.tables(self.name)["summary"]
        counts = self.results.store.counts(self.name)
        shown = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
        parts = [
            f"<h3>{escape(self.name)}</h3>",
            f"<p>{escape(spec.description)}</p>" if spec.description else "",
            f"<p>{escape(shown or 'no runs')}</p>",
            str(render_table(from_table(summary))),
            f"<p><small>{escape(summary.note)}</small></p>",
        ]
        png = self.curves_png()
        if png is not None:
            parts.append(f'<img src="{png}" alt="learning curves of {escape(self.name)}">')
        return "\n".join(p for p in parts if p)

    def __repr__(self) -> str:
        return f"Study({self.name!r} in {str(self.results.folder)!r})"


# --- helpers ---


def _metric_names(records: Sequence[RunRecord]) -> list[str]:
    """Every final metric some run has: `FIRST_METRICS` first, then the rest by name."""
    present = {m for r in records for m in r.metrics}
    return [m for m in FIRST_METRICS if m in present] + sorted(present - set(FIRST_METRICS))


def _number(value: Any) -> float:
    """A stored number as a float (None, as JSON keeps a missing value, is NaN)."""
    return math.nan if value is None else float(value)


def _hashable(value: Any) -> Any:
    """A label value a DataFrame can group by: lists become tuples, all the way down."""
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    return value


def _frame(table: Table) -> pd.DataFrame:
    """A table's raw numbers (as CSV export writes them) as a DataFrame; `attrs["note"]`
    says what the numbers are."""
    header, rows = flat_records(table)
    frame = pd.DataFrame(rows, columns=header)
    frame.attrs["note"] = table.note
    return frame
