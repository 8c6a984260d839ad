"""Result tables of a study: cells as strings for display, raw numbers for export.

A `Table` keeps both: `rows` (what a person reads: "97.85 ± 0.12", "512-128") and `raw`
(what a machine reads: {"mean": 0.9785, "std": 0.0012, "n": 4, "n_nonfinite": 0}, or
the label value itself). Accuracies display as percentages with 2 decimals, other metrics
with 4 significant digits; raw numbers stay in their own units (fractions). Rendering to
the terminal is the CLI's job; `export` writes CSV, JSON or a Markdown pipe table.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from mnistlab.studies.records import RunRecord
from mnistlab.studies.stats import (
    CvRow,
    Group,
    Selection,
    Stats,
    group_runs,
    resolve_field,
    resolve_mode,
    value_key,
)

# --- tables and columns ---

SPECIAL_FIELDS = ("variant", "status", "n")  # computed per group, not read from a config
_METRIC_TITLES = {
    "accuracy": "train acc",
    "val_accuracy": "val acc",
    "test_accuracy": "test acc",
    "loss": "train loss",
    "val_loss": "val loss",
    "test_loss": "test loss",
    "epochs_run": "epochs",
    "best_epoch": "best epoch",
}
_SORT_ALIASES = {
    "acc": "accuracy",
    "train_acc": "accuracy",
    "train_accuracy": "accuracy",
    "train_loss": "loss",
    "val_acc": "val_accuracy",
    "test_acc": "test_accuracy",
}
_CLASSIFICATION_METRICS = ("accuracy", "val_accuracy", "test_accuracy", "test_loss")
_REGRESSION_METRICS = ("loss", "val_loss", "test_loss")
_RUN_METRICS = ("accuracy", "val_accuracy", "test_accuracy", "loss", "val_loss", "test_loss")
_NOT_LABELS = frozenset({"variant", "seed", "repetition"})


@dataclass(frozen=True)
class Column:
    """A column of a summary table: a field of the configuration or a metric.

    `field` is "variant", "status", "n", a label path, or a dotted path into the run's
    resolved `config` (e.g. "model.hidden", "training.optimizer.learning_rate"); `metric`
    is a key of the run's metrics (e.g. "val_accuracy"). Give exactly one.
    """

    title: str
    field: str | None = None
    metric: str | None = None

    def __post_init__(self) -> None:
        if (self.field is None) == (self.metric is None):
            raise ValueError(f"column {self.title!r}: give exactly one of field or metric")


@dataclass
class Table:
    """A table: display strings in `rows`, the same cells' raw values in `raw`.

    `metrics` has one entry per column: the metric name of a metric column, else None.
    `note` says what the numbers are (e.g. which std), for the renderer to print below.
    `keys` name the columns in JSON export: field paths and metric names ("val_accuracy",
    "training.optimizer.learning_rate"), stable whatever the titles say; empty: the titles.
    """

    title: str
    columns: list[str]
    rows: list[list[str]]
    raw: list[list[Any]] = field(default_factory=list)
    metrics: list[str | None] = field(default_factory=list)
    note: str = ""
    keys: list[str] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        """One dict per row, export key (default: the column title) -> raw value."""
        keys = self.keys or self.columns
        return [dict(zip(keys, row, strict=True)) for row in self.raw]


# --- formatting ---


def is_accuracy(metric: str) -> bool:
    """Whether a metric is an accuracy (shown as a percentage)."""
    return "acc" in metric


def metric_title(metric: str) -> str:
    """A short column title: "val_accuracy" -> "val acc (%)", "test_loss" -> "test loss"."""
    title = _METRIC_TITLES.get(metric, metric)
    return f"{title} (%)" if is_accuracy(metric) else title


def format_number(metric: str, value: float | None) -> str:
    """One number of `metric`: accuracies as percentages with 2 decimals, else 4 significant."""
    if value is None or not math.isfinite(value):
        return "nan" if value is None or math.isnan(value) else ("inf" if value > 0 else "-inf")
    return f"{value * 100:.2f}" if is_accuracy(metric) else f"{value:.4g}"


def format_stats(metric: str, stats: Stats) -> str:
    """ "mean ± std" for two or more finite values, the value for one, with left-out NaNs.

    Examples: "97.85 ± 0.12", "0.0587", "0.0612 ± 0.0044 (1 non-finite)", "nan".
    """
    if stats.n == 0:
        return "nan" if stats.n_nonfinite else "-"
    text = format_number(metric, stats.mean)
    if stats.n > 1:
        text += f" ± {format_number(metric, stats.std)}"
    if stats.n_nonfinite:
        text += f" ({stats.n_nonfinite} non-finite)"
    return text


def _stats_raw(stats: Stats) -> dict[str, Any]:
    """Raw numbers of a Stats cell, for export."""
    return {"mean": stats.mean, "std": stats.std, "n": stats.n, "n_nonfinite": stats.n_nonfinite}


def format_value(value: Any) -> str:
    """A configuration value made readable.

    Hidden sizes [512, 128] -> "512-128"; {"name": "relu"} -> "relu"; an optimizer dict ->
    its name; {"name": "random_normal", "mean": 0.0, "stddev": 0.062} ->
    "random_normal(mean=0, stddev=0.062)"; a regulariser {"l1": 0, "l2": 0.01} ->
    "l2(0.01)"; None -> "-"; an empty list -> "none".
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        if not value:
            return "none"
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        return ("-" if numeric else ", ").join(format_value(v) for v in value)
    if isinstance(value, dict):
        return _format_dict(value)
    return str(value)


def _format_dict(value: dict[str, Any]) -> str:
    """A spec dict: a regulariser, a named/kinded variant with its parameters, or k=v pairs."""
    if value and set(value) <= {"l1", "l2"}:
        parts = [f"{k}({format_value(value[k])})" for k in ("l1", "l2") if value.get(k)]
        return "+".join(parts) or "none"
    tag = value.get("name", value.get("kind"))
    params = {k: v for k, v in value.items() if k not in ("name", "kind") and v is not None}
    if tag is not None and ("learning_rate" in value or not params):
        return str(tag)  # an optimizer shows its name; its learning rate is its own label
    inner = ", ".join(f"{k}={format_value(v)}" for k, v in params.items())
    return f"{tag}({inner})" if tag is not None else inner


def _titles(paths: Sequence[str]) -> list[str]:
    """Short titles for label paths: the last segment, or the full path where two collide."""
    last = [p.rsplit(".", 1)[-1] for p in paths]
    return [s if last.count(s) == 1 else p for s, p in zip(last, paths, strict=True)]


def _varying_paths(runs: Sequence[RunRecord]) -> list[str]:
    """Label paths (in order of first appearance) whose value differs between the runs."""
    paths: list[str] = []
    for run in runs:
        paths.extend(p for p in run.labels if p not in paths and p not in _NOT_LABELS)
    return [p for p in paths if len({value_key(resolve_field(r, p)) for r in runs}) > 1]


def _present_metrics(runs: Sequence[RunRecord], candidates: Sequence[str]) -> list[str]:
    """The candidate metrics that at least one run has."""
    return [m for m in candidates if any(m in r.metrics for r in runs)]


# --- summary ---


def default_columns(runs: Sequence[RunRecord]) -> list[Column]:
    """The summary's default columns for these runs.

    "variant" (if any run has one), every label path that varies between configurations,
    then train / val (if any) / test accuracy and test loss (train / val / test loss for a
    study without accuracy), "n", and "status" when some configuration is not all done.

    Parameters
    ----------
    runs : sequence of RunRecord
        The study's runs.

    Returns
    -------
    list of Column
    """
    groups = group_runs(runs)
    heads = [g.runs[0] for g in groups]
    columns = [Column("variant", field="variant")] if any(g.variant for g in groups) else []
    paths = _varying_paths(heads)
    columns += [Column(t, field=p) for t, p in zip(_titles(paths), paths, strict=True)]
    train = [r for g in groups for r in g.runs]
    metrics = _present_metrics(train, _CLASSIFICATION_METRICS)
    if not any(is_accuracy(m) for m in metrics):
        metrics = _present_metrics(train, _REGRESSION_METRICS) or [
            "accuracy",
            "test_accuracy",
            "test_loss",
        ]
    columns += [Column(metric_title(m), metric=m) for m in metrics]
    return _with_counts(columns, groups)


def _with_counts(columns: list[Column], groups: Sequence[Group]) -> list[Column]:
    """Columns plus "n", and "status" when some configuration is not all done (if absent)."""
    fields = {c.field for c in columns}
    if "n" not in fields:
        columns.append(Column("n", field="n"))
    if "status" not in fields and any(
        g.status_counts().get("done", 0) != len(g.runs) for g in groups
    ):
        columns.append(Column("status", field="status"))
    return columns


def group_status(group: Group) -> str:
    """ "done", "pending", or the counts of the other states, e.g. "diverged 1/4"."""
    counts, total = group.status_counts(), len(group.runs)
    for state in ("done", "pending"):
        if counts.get(state, 0) == total:
            return state
    states = ("diverged", "failed", "running", "pending")
    return ", ".join(f"{s} {counts[s]}/{total}" for s in states if counts.get(s))


def _group_cell(group: Group, column: Column) -> tuple[str, Any]:
    """(display, raw) of one summary cell."""
    if column.metric is not None:
        if not group.finished:
            counts = group.status_counts()
            state = next((s for s in ("running", "pending") if counts.get(s)), "failed")
            return state, None
        stats = group.stats(column.metric)
        if stats.n == 0 and stats.n_nonfinite == 0:
            return "-", None
        return format_stats(column.metric, stats), _stats_raw(stats)
    if column.field == "status":
        text = group_status(group)
        return text, text
    if column.field == "n":
        k, total = len(group.finished), len(group.runs)
        return (str(k) if k == total else f"{k}/{total}"), k
    assert column.field is not None
    value = resolve_field(group.runs[0], column.field)
    return format_value(value), value


def _sort_value(value: Any) -> tuple[int, Any]:
    """Sort key of a raw field value: numbers, then number lists, then text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    if isinstance(value, list | tuple) and all(isinstance(v, int | float) for v in value):
        return (1, tuple(value))
    return (2, format_value(value))


def _sorter(
    sort: str, columns: Sequence[Column], runs: Sequence[RunRecord]
) -> tuple[Callable[[Group], Any], bool]:
    """(key, reverse) for `sort` (a column title, metric or field path); key: (tier, value)."""
    flip, name = sort.startswith("-"), sort.lstrip("-")
    target = _SORT_ALIASES.get(name, name)
    column = next((c for c in columns if c.title == name), None) or next(
        (c for c in columns if target in (c.metric, c.field)), None
    )
    metric = column.metric if column else None
    path = column.field if column else None
    if column is None:
        if any(target in r.metrics for r in runs):
            metric = target
        elif any(resolve_field(r, target) is not None for r in runs):
            path = target
        else:
            titles = ", ".join(c.title for c in columns)
            raise ValueError(f"sort: no column, metric or field {name!r}; columns: {titles}")
    if metric is not None:
        m = metric

        def by_metric(g: Group) -> Any:
            stats = g.stats(m)  # non-finite repetitions: after the all-finite, as select_best
            return (int(stats.n_nonfinite > 0), stats.mean) if stats.n else None

        return by_metric, (resolve_mode(m) == "max") != flip
    assert path is not None
    if path in SPECIAL_FIELDS[1:]:
        return (lambda g: (0, _group_cell(g, Column("", field=path))[1])), flip
    p = path
    return (lambda g: (0, resolve_field(g.runs[0], p))), flip


def summary_table(
    runs: Sequence[RunRecord],
    columns: Sequence[Column] | None = None,
    sort: str | None = None,
    title: str = "summary",
) -> Table:
    """One row per configuration: its fields and the repetition statistics of its metrics.

    Parameters
    ----------
    runs : sequence of RunRecord
        The study's runs (role "train" are summarised).
    columns : sequence of Column, optional
        The columns; default `default_columns(runs)`. "n" (finished repetitions) and, when
        some configuration is not all done, "status" (e.g. "diverged 1/4") are appended
        unless present, so that a diverged or missing repetition is never hidden.
    sort : str, optional
        A column title, metric ("val_accuracy", or "val_acc" / "test_acc" / "train_loss")
        or field path. Metrics sort best first (accuracies descending, losses ascending),
        fields ascending; a leading "-" reverses. A configuration with a non-finite
        repetition sorts after those without (as `select_best` ranks), missing values
        last. Default: the study's order.
    title : str
        The table's title (the CLI passes the study name).

    Returns
    -------
    Table
        Metric cells are "mean ± sample std" (ddof=1) when a configuration has two or
        more finished repetitions, the value otherwise; "pending" / "running" / "failed"
        when none finished. Raw metric cells are {"mean", "std", "n", "n_nonfinite"}.
    """
    groups = group_runs(runs)
    cols = _with_counts(list(columns), groups) if columns is not None else default_columns(runs)
    if sort:
        key, reverse = _sorter(sort, cols, runs)
        keyed = [(key(g), g) for g in groups]
        present = [(k, g) for k, g in keyed if k is not None and k[1] is not None]
        present.sort(key=lambda kg: _sort_value(kg[0][1]), reverse=reverse)
        present.sort(key=lambda kg: kg[0][0])  # stable: tiers first, order kept inside
        groups = [g for _, g in present] + [g for k, g in keyed if k is None or k[1] is None]
    cells = [[_group_cell(g, c) for c in cols] for g in groups]
    return Table(
        title=title,
        columns=[c.title for c in cols],
        rows=[[text for text, _ in row] for row in cells],
        raw=[[value for _, value in row] for row in cells],
        metrics=[c.metric for c in cols],
        note="mean ± sample std (ddof=1) over repetitions; accuracies in %",
        keys=_unique([c.metric or c.field or c.title for c in cols], [c.title for c in cols]),
    )


# --- selections, cross-validation and runs ---


def selection_table(selections: Sequence[Selection], title: str = "best settings") -> Table:
    """One row per family: the chosen value, its statistics and its best repetition.

    Parameters
    ----------
    selections : sequence of Selection
        From `select_best` (all with the same metric and `over`).
    title : str
        The table's title.

    Returns
    -------
    Table
        Columns: variant (if any), the family labels that vary, the swept field, the
        metric's mean ± sample std over the chosen value's repetitions, n, the best
        repetition and seed, and the best repetition's train / val / test metrics.
    """
    if not selections:
        return Table(title, [], [], [], [], "")
    first = selections[0]
    best_runs = [s.best_run for s in selections if s.best_run is not None]
    paths = _varying_label_dicts([s.labels for s in selections])
    specs: list[_Spec] = []
    if any(s.variant for s in selections):
        specs.append(_Spec("variant", "variant", None, lambda s: _shown(s.variant)))
    for t, p in zip(_titles(paths), paths, strict=True):
        specs.append(_Spec(t, p, None, lambda s, p=p: _shown(s.labels.get(p))))
    specs.append(_Spec(_titles([first.over])[0], first.over, None, lambda s: _shown(s.value)))
    m = first.metric
    specs.append(
        _Spec(
            f"mean {metric_title(m)}",
            m,
            m,
            lambda s: (format_stats(m, s.stats), _stats_raw(s.stats)) if s.stats else ("-", None),
        )
    )
    specs.append(_Spec("n", "n", None, lambda s: _shown(s.stats.n if s.stats else 0)))
    specs.append(
        _Spec("best rep", "best_repetition", None, lambda s: _run_attr(s.best_run, "repetition"))
    )
    specs.append(_Spec("seed", "best_seed", None, lambda s: _run_attr(s.best_run, "seed")))
    for metric in _present_metrics(best_runs, _RUN_METRICS):
        specs.append(
            _Spec(
                f"best {metric_title(metric)}", f"best_{metric}", metric, _best_metric_cell(metric)
            )
        )
    specs.append(_Spec("run", "best_run_id", None, lambda s: _run_attr(s.best_run, "run_id")))
    note = (
        f"the {first.over} with the best mean {m} (mean ± sample std, ddof=1); best rep = "
        f"the repetition with the best {first.best_repetition_by} within it"
    )
    return _build(title, specs, selections, note)


def _run_attr(run: RunRecord | None, attr: str) -> tuple[str, Any]:
    """(display, raw) of a run attribute, "-" without a run."""
    if run is None:
        return "-", None
    value = getattr(run, attr)
    return format_value(value), value


def _best_metric_cell(metric: str) -> Callable[[Selection], tuple[str, Any]]:
    """A cell maker for one metric of a selection's best run."""

    def cell(s: Selection) -> tuple[str, Any]:
        if s.best_run is None or metric not in s.best_run.metrics:
            return "-", None
        value = s.best_run.metrics[metric]
        return format_number(metric, value), value

    return cell


def _varying_label_dicts(labels: Sequence[dict[str, Any]]) -> list[str]:
    """Paths (in order of first appearance) whose value differs between label dicts."""
    paths: list[str] = []
    for d in labels:
        paths.extend(p for p in d if p not in paths and p not in _NOT_LABELS)
    return [p for p in paths if len({value_key(d.get(p)) for d in labels}) > 1]


class _Spec(NamedTuple):
    """How to make one column: its title, export key, metric (or None) and cell maker."""

    title: str
    key: str
    metric: str | None
    make: Callable[[Any], tuple[str, Any]]


def _shown(value: Any) -> tuple[str, Any]:
    """(display, raw) of a plain value."""
    return format_value(value), value


def _build(title: str, specs: Sequence[_Spec], items: Sequence[Any], note: str) -> Table:
    """A Table from column specs applied to each item."""
    cells = [[spec.make(item) for spec in specs] for item in items]
    return Table(
        title=title,
        columns=[spec.title for spec in specs],
        rows=[[text for text, _ in row] for row in cells],
        raw=[[value for _, value in row] for row in cells],
        metrics=[spec.metric for spec in specs],
        note=note,
        keys=_unique([spec.key for spec in specs], [spec.title for spec in specs]),
    )


def _unique(keys: list[str], titles: list[str]) -> list[str]:
    """Export keys, falling back to the title where a key repeats."""
    return [k if keys.count(k) == 1 else t for k, t in zip(keys, titles, strict=True)]


def cv_table(cv_rows: Sequence[CvRow], title: str = "cross-validation") -> Table:
    """One row per (configuration, setting): fold mean ± population std, rank, best.

    Parameters
    ----------
    cv_rows : sequence of CvRow
        From `cv_summary`.
    title : str
        The table's title.

    Returns
    -------
    Table
        Columns: variant (if any), the configuration and setting labels that vary
        within a variant (all setting labels when there is one setting), the fold
        metric's mean ± population std (ddof=0, as scikit-learn's std_test_score), each
        fold's score, rank, "*" on the best setting of each configuration, and the refit
        run's test accuracy / loss when there is one.
    """
    if not cv_rows:
        return Table(title, [], [], [], [], "")
    m = cv_rows[0].metric
    specs: list[_Spec] = []
    if any(r.variant for r in cv_rows):
        specs.append(_Spec("variant", "variant", None, lambda r: _shown(r.variant)))
    config_paths = _varying_within(cv_rows, lambda r: r.configuration)
    setting_paths = _varying_within(cv_rows, lambda r: r.setting)
    if not setting_paths:  # one setting: show what it is
        for r in cv_rows:
            setting_paths.extend(p for p in r.setting if p not in setting_paths)
    paths = config_paths + setting_paths
    for t, p in zip(_titles(paths), paths, strict=True):
        specs.append(_Spec(t, p, None, lambda r, p=p: _shown(r.labels.get(p))))
    specs.append(
        _Spec(metric_title(m), m, m, lambda r: (format_stats(m, r.stats), _stats_raw(r.stats)))
    )
    specs.append(
        _Spec(
            "folds",
            "fold_scores",
            None,
            lambda r: (", ".join(format_number(m, v) for v in r.scores), list(r.scores)),
        )
    )
    specs.append(_Spec("rank", "rank", None, lambda r: (str(r.rank), r.rank)))
    specs.append(_Spec("best", "best", None, lambda r: ("*" if r.best else "", r.best)))
    refits = [r.refit for r in cv_rows if r.refit is not None]
    for metric in _present_metrics(refits, ("test_accuracy", "test_loss")):
        specs.append(
            _Spec(f"refit {metric_title(metric)}", f"refit_{metric}", metric, _refit_cell(metric))
        )
    note = f"mean ± population std (ddof=0, as scikit-learn's std_test_score) of {m} over folds"
    return _build(title, specs, cv_rows, note)


def _varying_within(rows: Sequence[CvRow], labels: Callable[[CvRow], dict[str, Any]]) -> list[str]:
    """Label paths that vary between rows of the same variant (the variant column says the rest)."""
    by_variant: dict[str | None, list[dict[str, Any]]] = {}
    for r in rows:
        by_variant.setdefault(r.variant, []).append(labels(r))
    paths: list[str] = []
    for dicts in by_variant.values():
        paths.extend(p for p in _varying_label_dicts(dicts) if p not in paths)
    return paths


def _refit_cell(metric: str) -> Callable[[CvRow], tuple[str, Any]]:
    """A cell maker for one metric of a CV row's refit run."""

    def cell(r: CvRow) -> tuple[str, Any]:
        if r.refit is None or metric not in r.refit.metrics:
            return "-", None
        value = r.refit.metrics[metric]
        return format_number(metric, value), value

    return cell


def run_status(run: RunRecord) -> str:
    """The run's status; a diverged run with its epoch, e.g. "diverged @ epoch 12"."""
    epoch = run.metrics.get("diverged_epoch")
    if run.status == "diverged" and epoch is not None and math.isfinite(epoch):
        return f"diverged @ epoch {int(epoch)}"
    return run.status


def runs_table(runs: Sequence[RunRecord], title: str = "runs") -> Table:
    """One row per run, in study order: id, status, labels, seed, metrics, seconds.

    Parameters
    ----------
    runs : sequence of RunRecord
        Any runs (all roles; a "role" column appears when not all are "train").
    title : str
        The table's title.

    Returns
    -------
    Table
        Columns: id (first 12 characters; raw: the full id), status (a diverged run with
        its `diverged_epoch`, as stored), variant (if any), role (if mixed), the label
        paths that vary, rep, seed, the train / val / test accuracies and losses present,
        epochs (`epochs_run`, if any) and seconds.
    """
    ordered = sorted(runs, key=lambda r: (r.order, r.repetition))
    specs = [
        _Spec("id", "run_id", None, lambda r: (r.run_id[:12], r.run_id)),
        _Spec("status", "status", None, lambda r: (run_status(r), r.status)),
    ]
    if any(r.variant for r in ordered):
        specs.append(_Spec("variant", "variant", None, lambda r: _shown(r.variant)))
    if any(r.role != "train" for r in ordered):
        specs.append(_Spec("role", "role", None, lambda r: _shown(r.role)))
    paths = _varying_paths(ordered)
    for t, p in zip(_titles(paths), paths, strict=True):
        specs.append(_Spec(t, p, None, lambda r, p=p: _shown(resolve_field(r, p))))
    specs.append(_Spec("rep", "repetition", None, lambda r: _shown(r.repetition)))
    specs.append(_Spec("seed", "seed", None, lambda r: _shown(r.seed)))
    for metric in _present_metrics(ordered, (*_RUN_METRICS, "epochs_run")):
        specs.append(_Spec(metric_title(metric), metric, metric, _run_metric_cell(metric)))
    specs.append(
        _Spec(
            "seconds",
            "seconds",
            None,
            lambda r: ("-" if r.seconds is None else f"{r.seconds:.1f}", r.seconds),
        )
    )
    return _build(title, specs, ordered, "final metrics of each run; accuracies in %")


def _run_metric_cell(metric: str) -> Callable[[RunRecord], tuple[str, Any]]:
    """A cell maker for one metric of a run."""

    def cell(r: RunRecord) -> tuple[str, Any]:
        if metric not in r.metrics:
            return "-", None
        value = r.metrics[metric]
        if metric == "epochs_run":
            return format_value(int(value)), value
        return format_number(metric, value), value

    return cell


# --- comparison ---


def _mean(raw: Any) -> float:
    """The mean of a raw metric cell (a Stats dict or a number); NaN when absent."""
    if isinstance(raw, dict):
        raw = raw.get("mean")
    return float(raw) if isinstance(raw, int | float) else math.nan


def format_delta(metric: str, delta: float) -> str:
    """A signed difference: accuracies in percentage points, else 4 significant digits."""
    if not math.isfinite(delta):
        return "-"
    return f"{delta * 100:+.2f}" if is_accuracy(metric) else f"{delta:+.4g}"


def compare_tables(
    a: Table,
    b: Table,
    key_columns: Sequence[str],
    names: tuple[str, str] | None = None,
) -> Table:
    """Two tables side by side: rows matched on key columns, metrics with their difference.

    Parameters
    ----------
    a, b : Table
        Usually two summary tables (e.g. of STUDY_A and STUDY_B).
    key_columns : sequence of str
        Column titles present in both; rows match when their displayed key cells are equal
        (the first unmatched row of `b` with that key).
    names : (str, str), optional
        How to label the two sides; default the tables' titles, or ("A", "B") when equal.

    Returns
    -------
    Table
        The key columns, then for each metric column found in both: "A: col", "B: col"
        and "Δ col" (B − A, of the means; accuracies in percentage points). Rows of `a`
        in order, then rows only in `b`; a missing side shows "-". Export keys: the key
        columns' keys, then "a.<key>", "b.<key>", "delta.<key>" per metric.
    """
    for k in key_columns:
        if k not in a.columns or k not in b.columns:
            raise ValueError(f"compare: key column {k!r} must be in both tables")
    name_a, name_b = names or ((a.title, b.title) if a.title != b.title else ("A", "B"))
    shared = [
        (title, metric)
        for title, metric in zip(a.columns, a.metrics, strict=True)
        if metric and title not in key_columns and title in b.columns
        if b.metrics[b.columns.index(title)]
    ]
    ka = [a.columns.index(k) for k in key_columns]
    kb = [b.columns.index(k) for k in key_columns]
    pending: dict[tuple[str, ...], list[int]] = {}
    for j, row in enumerate(b.rows):
        pending.setdefault(tuple(row[i] for i in kb), []).append(j)
    pairs: list[tuple[int | None, int | None]] = []
    for i, row in enumerate(a.rows):
        matches = pending.get(tuple(row[c] for c in ka), [])
        pairs.append((i, matches.pop(0) if matches else None))
    pairs += [(None, j) for js in pending.values() for j in js]
    pairs.sort(key=lambda p: (p[0] is None, p[0] if p[0] is not None else p[1]))

    columns = list(key_columns)
    metrics: list[str | None] = [None] * len(key_columns)
    a_keys = a.keys or a.columns
    keys = [a_keys[i] for i in ka]
    for title, metric in shared:
        columns += [f"{name_a}: {title}", f"{name_b}: {title}", f"Δ {title}"]
        metrics += [metric, metric, metric]
        key = a_keys[a.columns.index(title)]
        keys += [f"a.{key}", f"b.{key}", f"delta.{key}"]
    rows, raw = [], []
    for i, j in pairs:
        keys_from = (a, i, ka) if i is not None else (b, j, kb)
        table, r, idx = keys_from
        assert r is not None
        row = [table.rows[r][c] for c in idx]
        raw_row = [table.raw[r][c] for c in idx]
        for title, metric in shared:
            ca, cb = a.columns.index(title), b.columns.index(title)
            va = a.raw[i][ca] if i is not None else None
            vb = b.raw[j][cb] if j is not None else None
            delta = _mean(vb) - _mean(va)
            row += [
                a.rows[i][ca] if i is not None else "-",
                b.rows[j][cb] if j is not None else "-",
                format_delta(metric, delta),
            ]
            raw_row += [va, vb, delta if math.isfinite(delta) else None]
        rows.append(row)
        raw.append(raw_row)
    note = f"Δ = {name_b} − {name_a}; accuracies in %, differences in percentage points"
    return Table(f"{name_a} vs {name_b}", columns, rows, raw, metrics, note, keys)


# --- export ---


def _plain(value: Any) -> Any:
    """A JSON-ready copy: tuples as lists, NaN/inf as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def _markdown_cell(text: str) -> str:
    """A cell safe inside a pipe table."""
    return text.replace("|", "\\|").replace("\n", " ")


def export(table: Table, format: Literal["csv", "json", "markdown"]) -> str:
    """The table as text.

    Parameters
    ----------
    table : Table
        Any table from this module.
    format : {"csv", "json", "markdown"}
        "csv": the displayed cells, header first, "\\n" line ends (csv module quoting);
        "json": a list of row objects, `Table.keys` (field paths, metric names) -> raw
        value (metric cells as {"mean", "std", "n", "n_nonfinite"} in the metric's own
        units: accuracies as fractions, not %; NaN as null);
        "markdown": a GitHub pipe table of the displayed cells, metric columns right-aligned.

    Returns
    -------
    str
        Ending with a newline.
    """
    if format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(table.columns)
        writer.writerows(table.rows)
        return buffer.getvalue()
    if format == "json":
        return json.dumps(_plain(table.records()), indent=2, ensure_ascii=False) + "\n"
    if format == "markdown":
        metrics = table.metrics or [None] * len(table.columns)
        lines = [
            "| " + " | ".join(_markdown_cell(c) for c in table.columns) + " |",
            "| " + " | ".join("---:" if m else "---" for m in metrics) + " |",
        ]
        lines += ["| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in table.rows]
        return "\n".join(lines) + "\n"
    raise ValueError(f"export: format must be 'csv', 'json' or 'markdown', got {format!r}")
