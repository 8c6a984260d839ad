"""Result tables of a study, built from its runs: summary, selections, cross-validation, runs.

A `Table` keeps each cell twice: in `rows` what a person reads ("97.85 ± 0.12", "512-128")
and in `raw` what a machine reads ({"mean": 0.9785, "std": 0.0012, "n": 4, "n_nonfinite": 0},
or the label value itself). Every table is made the same way: `Column`s (a title, an export
key, the metric it shows or None, and a cell maker) applied to each row's item (a
configuration's `Group`, a `Selection`, a `CvRow` or a run). How numbers read is
`studies.formatting`; rendering is the CLI's and the report's; text export is
`studies.export`; side-by-side comparison is `studies.compare`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from mnistlab.status import RunStatus
from mnistlab.studies.formatting import (
    format_number,
    format_stats,
    format_value,
    is_accuracy,
    metric_title,
)
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

Item = TypeVar("Item")
Cell = tuple[str, Any]
"""One cell: (what is displayed, the raw value exported)."""

SPECIAL_FIELDS = ("variant", "status", "n")  # computed per group, not read from a config
COUNT_METRICS = frozenset({"epochs_run"})  # metrics that count, shown as integers
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


# --- tables, columns and cells ---


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


@dataclass(frozen=True)
class Column(Generic[Item]):
    """One column of a table: its title, export key, the metric it shows, its cell maker.

    `key` is a field path or a metric name (what JSON export calls the column); `metric`
    is None for a column of labels or counts.
    """

    title: str
    key: str
    metric: str | None
    cell: Callable[[Item], Cell]


def shown(value: Any) -> Cell:
    """The cell of a plain value: readable text, the value itself."""
    return format_value(value), value


def metric_cell(metric: str, metrics: Mapping[str, float] | None) -> Cell:
    """The cell of one metric of a run's final metrics; "-" when it has none."""
    if metrics is None or metric not in metrics:
        return "-", None
    value = metrics[metric]
    if metric in COUNT_METRICS:
        return format_value(int(value)), value
    return format_number(metric, value), value


def stats_cell(metric: str, stats: Stats | None) -> Cell:
    """The cell of a metric's statistics over repetitions or folds; "-" when there are none."""
    if stats is None or (stats.n == 0 and stats.n_nonfinite == 0):
        return "-", None
    raw = {"mean": stats.mean, "std": stats.std, "n": stats.n, "n_nonfinite": stats.n_nonfinite}
    return format_stats(metric, stats), raw


def label_column(title: str, key: str, value: Callable[[Item], Any]) -> Column[Item]:
    """A column of plain values (labels, seeds, ids)."""
    return Column(title, key, None, lambda item: shown(value(item)))


def metric_column(
    title: str, key: str, metric: str, metrics: Callable[[Item], Mapping[str, float] | None]
) -> Column[Item]:
    """A column of one metric of each item's run (`metrics` gives that run's, or None)."""
    return Column(title, key, metric, lambda item: metric_cell(metric, metrics(item)))


def build_table(
    title: str, columns: Sequence[Column[Item]], items: Sequence[Item], note: str
) -> Table:
    """A Table from columns applied to each item (repeated export keys fall back to titles)."""
    cells = [[column.cell(item) for column in columns] for item in items]
    keys = [c.key for c in columns]
    return Table(
        title=title,
        columns=[c.title for c in columns],
        rows=[[text for text, _ in row] for row in cells],
        raw=[[value for _, value in row] for row in cells],
        metrics=[c.metric for c in columns],
        note=note,
        keys=[k if keys.count(k) == 1 else c.title for k, c in zip(keys, columns, strict=True)],
    )


def _titles(paths: Sequence[str]) -> list[str]:
    """Short titles for label paths: the last segment, or the full path where two collide."""
    last = [p.rsplit(".", 1)[-1] for p in paths]
    return [s if last.count(s) == 1 else p for s, p in zip(last, paths, strict=True)]


def label_paths(labels: Sequence[Mapping[str, Any]]) -> list[str]:
    """The field paths the items' labels set (grid and variant values), in order of first
    appearance; "variant", "seed" and "repetition" are not among them."""
    paths: list[str] = []
    for d in labels:
        paths.extend(p for p in d if p not in paths and p not in _NOT_LABELS)
    return paths


def _varying(labels: Sequence[Mapping[str, Any]], value: Callable[[int, str], Any]) -> list[str]:
    """Label paths (in order of first appearance) whose value differs between the items."""
    paths = label_paths(labels)
    return [p for p in paths if len({value_key(value(i, p)) for i in range(len(labels))}) > 1]


def _varying_paths(runs: Sequence[RunRecord]) -> list[str]:
    """Label paths whose resolved value differs between the runs."""
    return _varying([r.labels for r in runs], lambda i, p: resolve_field(runs[i], p))


def _varying_labels(labels: Sequence[Mapping[str, Any]]) -> list[str]:
    """Paths whose value differs between label dicts."""
    return _varying(labels, lambda i, p: labels[i].get(p))


def _present_metrics(runs: Sequence[RunRecord], candidates: Sequence[str]) -> list[str]:
    """The candidate metrics that at least one run has."""
    return [m for m in candidates if any(m in r.metrics for r in runs)]


# --- summary ---


def summary_column(
    title: str, field: str | None = None, metric: str | None = None
) -> Column[Group]:
    """A summary column: a configuration field or a metric's statistics over repetitions.

    `field` is "variant", "status", "n", a label path, or a dotted path into the run's
    resolved `config` (e.g. "model.hidden", "training.optimizer.learning_rate"); `metric`
    is a key of the run's metrics (e.g. "val_accuracy"). Give exactly one.
    """
    if metric is not None and field is None:
        return Column(title, metric, metric, lambda g: _group_metric_cell(g, metric))
    if field is not None and metric is None:
        return Column(title, field, None, lambda g: _group_field_cell(g, field))
    raise ValueError(f"column {title!r}: give exactly one of field or metric")


def default_columns(runs: Sequence[RunRecord]) -> list[Column[Group]]:
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
    columns = [summary_column("variant", field="variant")] if any(g.variant for g in groups) else []
    paths = _varying_paths([g.runs[0] for g in groups])
    columns += [summary_column(t, field=p) for t, p in zip(_titles(paths), paths, strict=True)]
    train = [r for g in groups for r in g.runs]
    metrics = _present_metrics(train, _CLASSIFICATION_METRICS)
    if not any(is_accuracy(m) for m in metrics):
        metrics = _present_metrics(train, _REGRESSION_METRICS) or [
            "accuracy",
            "test_accuracy",
            "test_loss",
        ]
    columns += [summary_column(metric_title(m), metric=m) for m in metrics]
    return _with_counts(columns, groups)


def _with_counts(columns: list[Column[Group]], groups: Sequence[Group]) -> list[Column[Group]]:
    """Columns plus "n", and "status" when some configuration is not all done (if absent)."""
    fields = {c.key for c in columns if c.metric is None}
    if "n" not in fields:
        columns.append(summary_column("n", field="n"))
    if "status" not in fields and any(
        g.status_counts().get(RunStatus.DONE, 0) != len(g.runs) for g in groups
    ):
        columns.append(summary_column("status", field="status"))
    return columns


def group_status(group: Group) -> str:
    """ "done", "pending", or the counts of the other states, e.g. "diverged 1/4"."""
    counts, total = group.status_counts(), len(group.runs)
    for state in (RunStatus.DONE, RunStatus.PENDING):
        if counts.get(state, 0) == total:
            return state.value
    states = (RunStatus.DIVERGED, RunStatus.FAILED, RunStatus.RUNNING, RunStatus.PENDING)
    return ", ".join(f"{s} {counts[s]}/{total}" for s in states if counts.get(s))


def _group_metric_cell(group: Group, metric: str) -> Cell:
    """A metric over a configuration's finished repetitions, or the state of its runs."""
    if not group.finished:
        counts = group.status_counts()
        waiting = (RunStatus.RUNNING, RunStatus.PENDING)
        return next((s for s in waiting if counts.get(s)), RunStatus.FAILED).value, None
    return stats_cell(metric, group.stats(metric))


def _group_field_cell(group: Group, path: str) -> Cell:
    """A configuration's field, its status, or its count of finished repetitions."""
    if path == "status":
        text = group_status(group)
        return text, text
    if path == "n":
        k, total = len(group.finished), len(group.runs)
        return (str(k) if k == total else f"{k}/{total}"), k
    return shown(resolve_field(group.runs[0], path))


def _sort_value(value: Any) -> tuple[int, Any]:
    """Sort key of a raw field value: numbers, then number lists, then text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    if isinstance(value, list | tuple) and all(isinstance(v, int | float) for v in value):
        return (1, tuple(value))
    return (2, format_value(value))


def _sorter(
    sort: str, columns: Sequence[Column[Group]], runs: Sequence[RunRecord]
) -> tuple[Callable[[Group], Any], bool]:
    """(key, reverse) for `sort` (a column title, metric or field path); key: (tier, value)."""
    flip, name = sort.startswith("-"), sort.lstrip("-")
    target = _SORT_ALIASES.get(name, name)
    column = next((c for c in columns if c.title == name), None) or next(
        (c for c in columns if c.key == target), None
    )
    metric = column.metric if column else None
    path = column.key if column is not None and column.metric is None else None
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
    p = path
    if p in SPECIAL_FIELDS[1:]:
        return (lambda g: (0, _group_field_cell(g, p)[1])), flip
    return (lambda g: (0, resolve_field(g.runs[0], p))), flip


def summary_table(
    runs: Sequence[RunRecord],
    columns: Sequence[Column[Group]] | None = None,
    sort: str | None = None,
    title: str = "summary",
) -> Table:
    """One row per configuration: its fields and the repetition statistics of its metrics.

    Parameters
    ----------
    runs : sequence of RunRecord
        The study's runs (role "train" are summarised).
    columns : sequence of Column, optional
        The columns (`summary_column`); default `default_columns(runs)`. "n" (finished
        repetitions) and, when some configuration is not all done, "status" (e.g.
        "diverged 1/4") are appended unless present, so that a diverged or missing
        repetition is never hidden.
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
    note = "mean ± sample std (ddof=1) over repetitions; accuracies in %"
    return build_table(title, cols, groups, note)


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
    first, m = selections[0], selections[0].metric
    best_runs = [s.best_run for s in selections if s.best_run is not None]
    paths = _varying_labels([s.labels for s in selections])
    columns: list[Column[Selection]] = []
    if any(s.variant for s in selections):
        columns.append(label_column("variant", "variant", lambda s: s.variant))
    for t, p in zip(_titles(paths), paths, strict=True):
        columns.append(label_column(t, p, lambda s, p=p: s.labels.get(p)))
    columns += [
        label_column(_titles([first.over])[0], first.over, lambda s: s.value),
        Column(f"mean {metric_title(m)}", m, m, lambda s: stats_cell(m, s.stats)),
        label_column("n", "n", lambda s: s.stats.n if s.stats else 0),
        _best_run_column("best rep", "best_repetition", "repetition"),
        _best_run_column("seed", "best_seed", "seed"),
    ]
    for metric in _present_metrics(best_runs, _RUN_METRICS):
        columns.append(
            metric_column(
                f"best {metric_title(metric)}",
                f"best_{metric}",
                metric,
                lambda s: s.best_run.metrics if s.best_run else None,
            )
        )
    columns.append(_best_run_column("run", "best_run_id", "run_id"))
    note = (
        f"the {first.over} with the best mean {m} (mean ± sample std, ddof=1); best rep = "
        f"the repetition with the best {first.best_repetition_by} within it"
    )
    return build_table(title, columns, selections, note)


def _best_run_column(title: str, key: str, attr: str) -> Column[Selection]:
    """A column of one attribute of a selection's best run ("-" without one)."""
    return label_column(
        title, key, lambda s: getattr(s.best_run, attr) if s.best_run is not None else None
    )


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
    columns: list[Column[CvRow]] = []
    if any(r.variant for r in cv_rows):
        columns.append(label_column("variant", "variant", lambda r: r.variant))
    config_paths = _varying_within(cv_rows, lambda r: r.configuration)
    setting_paths = _varying_within(cv_rows, lambda r: r.setting)
    if not setting_paths:  # one setting: show what it is
        for r in cv_rows:
            setting_paths.extend(p for p in r.setting if p not in setting_paths)
    paths = config_paths + setting_paths
    for t, p in zip(_titles(paths), paths, strict=True):
        columns.append(label_column(t, p, lambda r, p=p: r.labels.get(p)))
    columns += [
        Column(metric_title(m), m, m, lambda r: stats_cell(m, r.stats)),
        Column(
            "folds",
            "fold_scores",
            None,
            lambda r: (", ".join(format_number(m, v) for v in r.scores), list(r.scores)),
        ),
        Column("rank", "rank", None, lambda r: (str(r.rank), r.rank)),
        Column("best", "best", None, lambda r: ("*" if r.best else "", r.best)),
    ]
    refits = [r.refit for r in cv_rows if r.refit is not None]
    for metric in _present_metrics(refits, ("test_accuracy", "test_loss")):
        columns.append(
            metric_column(
                f"refit {metric_title(metric)}",
                f"refit_{metric}",
                metric,
                lambda r: r.refit.metrics if r.refit else None,
            )
        )
    note = f"mean ± population std (ddof=0, as scikit-learn's std_test_score) of {m} over folds"
    return build_table(title, columns, cv_rows, note)


def _varying_within(rows: Sequence[CvRow], labels: Callable[[CvRow], dict[str, Any]]) -> list[str]:
    """Label paths that vary between rows of the same variant (the variant column says the rest)."""
    by_variant: dict[str | None, list[dict[str, Any]]] = {}
    for r in rows:
        by_variant.setdefault(r.variant, []).append(labels(r))
    paths: list[str] = []
    for dicts in by_variant.values():
        paths.extend(p for p in _varying_labels(dicts) if p not in paths)
    return paths


def run_status(run: RunRecord) -> str:
    """The run's status; a diverged run with its epoch, e.g. "diverged @ epoch 12"."""
    epoch = run.metrics.get("diverged_epoch")
    if run.status == RunStatus.DIVERGED and epoch is not None and math.isfinite(epoch):
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
        epochs (`epochs_run`, if any), seconds, and the engine that trained each run and why
        (if stored).
    """
    ordered = sorted(runs, key=lambda r: (r.order, r.repetition))
    columns: list[Column[RunRecord]] = [
        Column("id", "run_id", None, lambda r: (r.run_id[:12], r.run_id)),
        Column("status", "status", None, lambda r: (run_status(r), r.status)),
    ]
    if any(r.variant for r in ordered):
        columns.append(label_column("variant", "variant", lambda r: r.variant))
    if any(r.role != "train" for r in ordered):
        columns.append(label_column("role", "role", lambda r: r.role))
    paths = _varying_paths(ordered)
    for t, p in zip(_titles(paths), paths, strict=True):
        columns.append(label_column(t, p, lambda r, p=p: resolve_field(r, p)))
    columns.append(label_column("rep", "repetition", lambda r: r.repetition))
    columns.append(label_column("seed", "seed", lambda r: r.seed))
    for metric in _present_metrics(ordered, (*_RUN_METRICS, "epochs_run")):
        columns.append(metric_column(metric_title(metric), metric, metric, lambda r: r.metrics))
    columns.append(
        Column(
            "seconds",
            "seconds",
            None,
            lambda r: ("-" if r.seconds is None else f"{r.seconds:.1f}", r.seconds),
        )
    )
    note = "final metrics of each run; accuracies in %"
    engines = Counter(r.engine for r in ordered if r.engine)
    if engines:
        columns.append(
            Column("engine", "engine", None, lambda r: (engine_name(r.engine), r.engine))
        )
        note += "".join(f"\nengine {text}: {n} runs" for text, n in sorted(engines.items()))
    return build_table(title, columns, ordered, note)


def engine_name(description: str | None) -> str:
    """The engine of a stored `EngineChoice.describe()` without its reason: "compiled"."""
    return "-" if not description else description.split(" (", 1)[0]
