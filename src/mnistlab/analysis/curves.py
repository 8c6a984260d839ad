"""Learning curves from the stored histories: per run, and mean ± std per configuration."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field

from mnistlab.analysis.context import StudyRuns
from mnistlab.analysis.contract import NotApplicable, Options, Result, SimpleTable
from mnistlab.analysis.registry import analysis
from mnistlab.studies.records import RunRecord


class CurvesOptions(Options):
    """Which History keys to draw, and how."""

    runs: Literal["first", "best", "all", "selected"] = "all"
    keys: list[str] = Field(
        default_factory=lambda: ["loss", "val_loss", "accuracy", "val_accuracy"],
        description="History keys; a panel per key (layout by-metric) or a line per key",
    )
    layout: Literal["by-metric", "by-run"] = Field(
        default="by-metric",
        description="by-metric: a panel per key, a line (band) per configuration; "
        "by-run: a panel per configuration, a line per key",
    )
    ylim: tuple[float, float] | None = Field(default=None, description="y range, e.g. [0, 1]")


def stack_padded(curves: Sequence[Sequence[float]]) -> np.ndarray:
    """Curves of unequal length as one (runs, epochs) array, NaN after a curve's end."""
    length = max((len(c) for c in curves), default=0)
    out = np.full((len(curves), length), np.nan)
    for i, curve in enumerate(curves):
        out[i, : len(curve)] = np.asarray(curve, dtype=np.float64)
    return out


def mean_std(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-epoch mean and sample std (ddof=1) over the finite values; std 0 for one value."""
    finite = np.isfinite(curves)
    count = finite.sum(axis=0)
    filled = np.where(finite, curves, 0.0)
    mean = filled.sum(axis=0) / np.maximum(count, 1)
    squares = np.where(finite, (filled - mean) ** 2, 0.0).sum(axis=0)
    std = np.where(count > 1, np.sqrt(squares / np.maximum(count - 1, 1)), 0.0)
    return np.where(count > 0, mean, np.nan), std


def _grouped(ctx: StudyRuns, runs: list[RunRecord]) -> dict[str, list[RunRecord]]:
    groups: dict[str, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(ctx.group_label(run), []).append(run)
    return groups


@analysis(
    "curves",
    "Training and validation loss and accuracy per epoch; bands are mean ± std over repetitions.",
    CurvesOptions,
)
def curves(ctx: StudyRuns, options: CurvesOptions) -> Result:
    """Per configuration and key: the runs' curves, their mean and std per epoch."""
    result = Result("curves")
    for label, runs in _grouped(ctx, ctx.pick(options)).items():
        entry: dict[str, dict[str, np.ndarray]] = {}
        for key in options.keys:
            series = [ctx.history(r).get(key) for r in runs]
            present = [s for s in series if s]
            if not present:
                continue
            stacked = stack_padded(present)
            mean, std = mean_std(stacked)
            entry[key] = {"runs": stacked, "mean": mean, "std": std}
        if entry:
            result.items[label] = entry
    if not result.items:
        raise NotApplicable(f"no run has any of {', '.join(options.keys)} in its History")
    return result


class ZeroOneOptions(Options):
    """Zero-one error per epoch, for the first repetition of each configuration."""


@analysis(
    "zero_one_error",
    "Zero-one error (1 − accuracy) per epoch on the training data and on the held-out data.",
    ZeroOneOptions,
)
def zero_one_error(ctx: StudyRuns, options: ZeroOneOptions) -> Result:
    """1 − accuracy per epoch on the training and held-out data.

    From the re-evaluations of `training.evaluate_each_epoch` where the run has them (the
    model in inference mode after each epoch, as a notebook re-predicting its data), else
    from the History's running training-mode accuracy and val_accuracy.
    """
    result = Result("zero_one_error")
    held_out = "validation"
    for run in ctx.pick(options):
        history = ctx.history(run)
        if "accuracy" not in history:
            continue
        if ctx.config(run).data.validation.kind == "test" or "test_eval_accuracy" in history:
            held_out = "test"
        train = history.get("train_eval_accuracy", history["accuracy"])
        entry = {"train": 1.0 - np.asarray(train)}
        tested = history.get("test_eval_accuracy", history.get("val_accuracy"))
        if tested is not None:
            entry[held_out] = 1.0 - np.asarray(tested)
        result.items[ctx.label(run)] = entry
    if not result.items:
        raise NotApplicable("no run recorded an accuracy")
    rows = [
        [label, *(f"{curve[-1]:.4f}" for curve in entry.values())]
        for label, entry in result.items.items()
    ]
    result.tables.append(SimpleTable("final zero-one error", ["run", "train", held_out], rows))
    if any("train_eval_accuracy" in ctx.history(run) for run in ctx.pick(options)):
        result.notes.append("re-evaluated after each epoch in inference mode (evaluate_each_epoch)")
    elif held_out == "test":
        result.notes.append("the validation data is the test set, so its error is the test error")
    return result
