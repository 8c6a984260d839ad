"""Repetition statistics of a study: describe, group, pick the best setting, summarise CV folds.

Repetition statistics use the sample standard deviation (ddof=1) with a Student-t 95%
interval of the mean; cross-validation rows use the population std (ddof=0), as
scikit-learn's ``std_test_score``. Non-finite values (a diverged run's NaN loss) never enter
a mean: they are left out and counted in ``Stats.n_nonfinite``, and a candidate with any of
them ranks after every candidate without.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from mnistlab.models.spec import HIDDEN_LAYER_FIELDS
from mnistlab.status import WITH_RESULTS, RunStatus
from mnistlab.studies.records import RunRecord

Mode = Literal["max", "min", "auto"]

# --- describe ---


@dataclass(frozen=True)
class Stats:
    """Summary of the finite values of one metric over repetitions (or folds).

    `std` uses `ddof` (1: sample std, NaN when n < 2; 0: population std, as scikit-learn's
    CV tables). `ci95` is the Student-t 95% interval of the mean, always from the sample
    std with n - 1 degrees of freedom (NaN bounds when n < 2). `n` counts the finite values
    only; `n_nonfinite` counts the NaN/inf values that were left out.
    """

    mean: float
    std: float
    min: float
    max: float
    n: int
    ci95: tuple[float, float]
    n_nonfinite: int = 0
    ddof: int = 1


def t_quantile(p: float, df: int) -> float:
    """Quantile `p` of Student's t distribution with `df` degrees of freedom."""
    from scipy.special import stdtrit  # scipy comes with scikit-learn; imported lazily

    return float(stdtrit(df, p))


def describe(values: Sequence[float], ddof: int = 1) -> Stats:
    """Mean, std, range, count and t-based 95% interval of the finite values.

    Parameters
    ----------
    values : sequence of float
        One value per repetition; NaN, ±inf and None are left out and counted in
        `n_nonfinite`. Large finite values (a loss of 1,570) are kept.
    ddof : int
        Delta degrees of freedom of `std`: 1 (sample, the default) or 0 (population).

    Returns
    -------
    Stats
        NaN mean/min/max when no value is finite; NaN std and interval bounds when fewer
        than two are (or, with ddof=0, std 0.0 for a single value).
    """
    arr = np.asarray(list(values), dtype=np.float64).reshape(-1)
    finite = arr[np.isfinite(arr)]
    n, n_bad = int(finite.size), int(arr.size - finite.size)
    nan = math.nan
    if n == 0:
        return Stats(nan, nan, nan, nan, 0, (nan, nan), n_bad, ddof)
    mean = float(np.mean(finite))
    std = float(np.std(finite, ddof=ddof)) if n > ddof else nan
    if n >= 2:
        half = t_quantile(0.975, n - 1) * float(np.std(finite, ddof=1)) / math.sqrt(n)
        ci = (mean - half, mean + half)
    else:
        ci = (nan, nan)
    return Stats(mean, std, float(finite.min()), float(finite.max()), n, ci, n_bad, ddof)


def resolve_mode(metric: str, mode: Mode = "auto") -> Literal["max", "min"]:
    """'max' or 'min' for `metric`; 'auto' is 'max' when the name contains "acc" (as Keras)."""
    if mode == "auto":
        return "max" if "acc" in metric else "min"
    if mode not in ("max", "min"):
        raise ValueError(f"mode: expected 'max', 'min' or 'auto', got {mode!r}")
    return mode


# --- fields of a run ---


def _dig(value: Any, parts: Sequence[str]) -> tuple[bool, Any]:
    """Follow dotted-path parts into nested dicts/lists; (found, value)."""
    for part in parts:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list | tuple) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def resolve_field(run: RunRecord, path: str) -> Any:
    """The value of a field path for one run: "variant", a label, or a dotted config path.

    A label is taken first (its exact path, or a labelled ancestor such as
    "training.optimizer" for "training.optimizer.learning_rate"), then the resolved
    configuration. None when the path exists nowhere, and for a hidden-layer setting of an
    MLP without hidden layers (softmax regression has no hidden activation).
    """
    if path == "variant":
        return run.variant
    parts = path.split(".")
    no_hidden = run.config.get("model", {}).get("hidden") in ([], ())
    if no_hidden and parts[0] == "model" and parts[1:2] and parts[1] in HIDDEN_LAYER_FIELDS:
        return None
    if path in run.labels:
        return run.labels[path]
    for cut in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in run.labels:
            found, value = _dig(run.labels[prefix], parts[cut:])
            if found:
                return value
    return _dig(run.config, parts)[1]


def value_key(value: Any) -> str:
    """A hashable, order-independent key for a label value (lists and tuples alike)."""
    return json.dumps(value, sort_keys=True, default=str)


def metric_values(runs: Iterable[RunRecord], metric: str) -> list[float]:
    """The metric of each run that finished with numbers (done or diverged).

    A diverged run without the metric counts as NaN (so it shows in `n_nonfinite`); a done
    run without it is skipped (the metric does not apply, e.g. no test split).
    """
    out: list[float] = []
    for run in runs:
        if run.status not in WITH_RESULTS:
            continue
        if metric in run.metrics:
            value = run.metrics[metric]
            out.append(math.nan if value is None else float(value))
        elif run.status == RunStatus.DIVERGED:
            out.append(math.nan)
    return out


def _rank_key(stats: Stats, direction: Literal["max", "min"]) -> tuple[int, float]:
    """Sort key, best first: all-finite candidates before those with NaNs, then by mean."""
    if stats.n == 0:
        return (2, 0.0)
    return (int(stats.n_nonfinite > 0), -stats.mean if direction == "max" else stats.mean)


# --- groups ---


@dataclass(frozen=True)
class Group:
    """The repetitions of one configuration (runs sharing `group`), in repetition order."""

    group: str
    labels: dict[str, Any]
    variant: str | None
    runs: tuple[RunRecord, ...]

    @property
    def order(self) -> int:
        """Position of the group's first run in the study's expansion."""
        return min(run.order for run in self.runs)

    @property
    def config(self) -> dict[str, Any]:
        """The resolved configuration (shared by the repetitions)."""
        return self.runs[0].config

    @property
    def finished(self) -> tuple[RunRecord, ...]:
        """Runs that finished with numbers (done or diverged)."""
        return tuple(run for run in self.runs if run.status in WITH_RESULTS)

    def status_counts(self) -> dict[str, int]:
        """How many runs are in each status, e.g. {"done": 3, "diverged": 1}."""
        counts: dict[str, int] = {}
        for run in self.runs:
            counts[run.status] = counts.get(run.status, 0) + 1
        return counts

    def stats(self, metric: str) -> Stats:
        """Repetition statistics (ddof=1) of `metric` over the finished runs."""
        return describe(metric_values(self.runs, metric))


def group_runs(runs: Sequence[RunRecord]) -> list[Group]:
    """Group the "train" runs by configuration.

    Parameters
    ----------
    runs : sequence of RunRecord
        Any runs of a study; cv-fold and cv-refit runs are ignored.

    Returns
    -------
    list of Group
        One per `group` id, ordered by the `order` of each group's first run; runs inside
        a group are sorted by repetition.
    """
    by_id: dict[str, list[RunRecord]] = {}
    for run in runs:
        if run.role == "train":
            by_id.setdefault(run.group, []).append(run)
    groups = []
    for gid, members in by_id.items():
        members.sort(key=lambda r: (r.repetition, r.order))
        first = min(members, key=lambda r: r.order)
        groups.append(Group(gid, dict(first.labels), first.variant, tuple(members)))
    groups.sort(key=lambda g: g.order)
    return groups


# --- best setting per family ---


@dataclass(frozen=True)
class Candidate:
    """One value of the swept label within a family, with its metric statistics."""

    value: Any
    stats: Stats
    runs: tuple[RunRecord, ...]


@dataclass(frozen=True)
class Selection:
    """The best value of `over` in one family, and the best repetition within it.

    `labels` are the family's labels without `over`. `value`, `stats` and `best_run` are
    None when no candidate has a finite mean (everything diverged or nothing finished);
    `best_run` is also None when no repetition has a finite `best_repetition_by`.
    """

    labels: dict[str, Any]
    variant: str | None
    over: str
    metric: str
    mode: Literal["max", "min"]
    best_repetition_by: str
    value: Any
    stats: Stats | None
    best_run: RunRecord | None
    candidates: tuple[Candidate, ...]


def _without(labels: dict[str, Any], over: str) -> dict[str, Any]:
    """Labels with `over` removed, also from inside a labelled ancestor or descendant."""
    out: dict[str, Any] = {}
    for path, value in labels.items():
        if path == over or path.startswith(over + "."):
            continue
        if over.startswith(path + ".") and isinstance(value, dict):
            value = _drop_path(value, over[len(path) + 1 :].split("."))
        out[path] = value
    return out


def _drop_path(value: dict[str, Any], parts: list[str]) -> dict[str, Any]:
    """A copy of nested dict `value` without the key at `parts`."""
    copy = dict(value)
    head = parts[0]
    if len(parts) == 1:
        copy.pop(head, None)
    elif isinstance(copy.get(head), dict):
        copy[head] = _drop_path(copy[head], parts[1:])
    return copy


def _best_repetition(
    runs: Sequence[RunRecord], metric: str, direction: Literal["max", "min"]
) -> RunRecord | None:
    """The finished run with the best finite metric; ties go to the lowest repetition."""
    scored = []
    for run in runs:
        value = run.metrics.get(metric) if run.status in WITH_RESULTS else None
        if value is not None and math.isfinite(value):
            scored.append((-value if direction == "max" else value, run.repetition, run.order, run))
    if not scored:
        return None
    return min(scored, key=lambda s: s[:3])[3]


def select_best(
    runs: Sequence[RunRecord],
    metric: str,
    over: str,
    mode: Mode = "auto",
    best_repetition_by: str | None = None,
) -> list[Selection]:
    """For each family of configurations, the value of `over` with the best mean metric.

    Train runs that differ only in the label `over` (and the seed) form a family: same
    variant, same labels once `over` is removed. Within the winning value, the best
    repetition is the one with the best `best_repetition_by`.

    Parameters
    ----------
    runs : sequence of RunRecord
        The study's runs; only role "train" is used.
    metric : str
        The metric whose mean over repetitions ranks the values, e.g. "val_accuracy".
    over : str
        The swept field path, a key of the runs' labels, e.g.
        "training.optimizer.learning_rate".
    mode : {"max", "min", "auto"}
        Whether higher is better; "auto" is "max" when "acc" is in `metric`.
    best_repetition_by : str, optional
        The metric that picks the best repetition (default: `metric`, in `mode`'s
        direction; another metric follows its own "auto" direction).

    Returns
    -------
    list of Selection
        One per family, in the order of each family's first run. Ties in the mean go to
        the value that comes first; a value with a non-finite repetition ranks after every
        value without; NaN metrics never win.
    """
    direction = resolve_mode(metric, mode)
    rep_metric = best_repetition_by or metric
    rep_direction = direction if rep_metric == metric else resolve_mode(rep_metric)
    families: dict[str, dict[str, list[RunRecord]]] = {}
    heads: dict[str, RunRecord] = {}
    for run in sorted((r for r in runs if r.role == "train"), key=lambda r: r.order):
        fkey = value_key([run.variant, _without(run.labels, over)])
        heads.setdefault(fkey, run)
        families.setdefault(fkey, {}).setdefault(value_key(resolve_field(run, over)), []).append(
            run
        )

    selections = []
    for fkey, by_value in families.items():
        head = heads[fkey]
        candidates = tuple(
            Candidate(
                resolve_field(members[0], over),
                describe(metric_values(members, metric)),
                tuple(members),
            )
            for members in by_value.values()
        )
        ranked = [c for c in candidates if c.stats.n > 0]
        winner = min(ranked, key=lambda c: _rank_key(c.stats, direction)) if ranked else None
        selections.append(
            Selection(
                labels=_without(head.labels, over),
                variant=head.variant,
                over=over,
                metric=metric,
                mode=direction,
                best_repetition_by=rep_metric,
                value=winner.value if winner else None,
                stats=winner.stats if winner else None,
                best_run=_best_repetition(winner.runs, rep_metric, rep_direction)
                if winner
                else None,
                candidates=candidates,
            )
        )
    return selections


# --- cross-validation ---


@dataclass(frozen=True)
class CvRow:
    """One (configuration, setting) of a cross-validated search, over its folds.

    `stats` uses the population std (ddof=0), as scikit-learn's `std_test_score`; `scores`
    are the fold metrics in fold order (NaN for a fold without a finite value). `rank` is
    1 for the best setting of the configuration (equal means share a rank, as
    scikit-learn's `rank_test_score`); `best` marks the first rank-1 row. `refit` is the
    cv-refit run with the same labels, if any.
    """

    labels: dict[str, Any]
    variant: str | None
    configuration: dict[str, Any]
    setting: dict[str, Any]
    metric: str
    stats: Stats
    folds: tuple[int, ...]
    scores: tuple[float, ...]
    rank: int
    best: bool
    refit: RunRecord | None
    runs: tuple[RunRecord, ...]


def _strip_fold(labels: dict[str, Any]) -> dict[str, Any]:
    """Labels without the fold (data.validation and below)."""
    return {
        k: v
        for k, v in labels.items()
        if k != "data.validation" and not k.startswith("data.validation.")
    }


def _fold_index(run: RunRecord) -> int:
    """The run's fold: config data.validation.index for a "fold" split, else its repetition."""
    validation = run.config.get("data", {}).get("validation") or {}
    if isinstance(validation, dict) and validation.get("kind") == "fold":
        return int(validation["index"])
    return run.repetition


def cv_summary(
    runs: Sequence[RunRecord],
    metric: str = "val_accuracy",
    params: Sequence[str] | None = None,
    mode: Mode = "auto",
) -> list[CvRow]:
    """Mean and population std of the fold metric per (configuration, setting), and the best.

    Parameters
    ----------
    runs : sequence of RunRecord
        The study's runs; role "cv-fold" rows are summarised, "cv-refit" rows are attached
        to the row with the same labels.
    metric : str
        The fold score, by default "val_accuracy" (the held-out fold is the validation data).
    params : sequence of str, optional
        The searched label paths (the grid). The other labels and the variant identify the
        configuration whose best setting is chosen. None: every label is part of the
        setting, and the best is chosen per variant.
    mode : {"max", "min", "auto"}
        Whether higher is better; "auto" is "max" when "acc" is in `metric`.

    Returns
    -------
    list of CvRow
        In the order of each row's first run. Folds are told apart by the configuration's
        data.validation (kind "fold"), whose labels are ignored.
    """
    direction = resolve_mode(metric, mode)
    folds_of: dict[str, list[RunRecord]] = {}
    refits: dict[str, RunRecord] = {}
    for run in sorted(runs, key=lambda r: r.order):
        key = value_key([run.variant, _strip_fold(run.labels)])
        if run.role == "cv-fold":
            folds_of.setdefault(key, []).append(run)
        elif run.role == "cv-refit":
            refits.setdefault(key, run)

    rows: list[CvRow] = []
    for key, members in folds_of.items():
        members.sort(key=_fold_index)
        labels = _strip_fold(members[0].labels)
        if params is None:
            configuration, setting = {}, dict(labels)
        else:
            configuration = {k: v for k, v in labels.items() if k not in params}
            setting = {k: v for k, v in labels.items() if k in params}
        scores = [r.metrics.get(metric) for r in members]
        rows.append(
            CvRow(
                labels=labels,
                variant=members[0].variant,
                configuration=configuration,
                setting=setting,
                metric=metric,
                stats=describe(metric_values(members, metric), ddof=0),
                folds=tuple(_fold_index(r) for r in members),
                scores=tuple(math.nan if v is None else float(v) for v in scores),
                rank=0,
                best=False,
                refit=refits.get(key),
                runs=tuple(members),
            )
        )

    by_config: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_config.setdefault(value_key([row.variant, row.configuration]), []).append(i)
    for indices in by_config.values():
        keys = {i: _rank_key(rows[i].stats, direction) for i in indices}
        winner = min(indices, key=lambda i: (keys[i], i))
        for i in indices:
            rank = 1 + sum(keys[j] < keys[i] for j in indices)
            rows[i] = replace(rows[i], rank=rank, best=i == winner and rows[i].stats.n > 0)
    return rows
