"""What a trained classifier gets right and wrong: confusion, per-class scores, ROC, galleries."""

from __future__ import annotations

import numpy as np
from pydantic import Field, PositiveInt
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score, roc_curve

from mnistlab.analysis.context import Predictions, StudyRuns
from mnistlab.analysis.contract import Options, Result, SimpleTable
from mnistlab.analysis.registry import analysis


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts[i, j]: how many samples of true class i were predicted as j.

    Parameters
    ----------
    y_true, y_pred : int arrays of shape (N,).
    n_classes : C.

    Returns
    -------
    int64 array of shape (C, C); rows are true classes.
    """
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return counts


def row_normalised(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its total (a class never seen stays 0)."""
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)


def most_confused_pair(counts: np.ndarray) -> tuple[int, int]:
    """The pair a < b with the largest a-as-b plus b-as-a count (first such pair on ties)."""
    mixed = counts + counts.T
    pairs = [(a, b) for a in range(len(counts)) for b in range(a + 1, len(counts))]
    return max(pairs, key=lambda ab: (mixed[ab], -ab[0], -ab[1]))


def _images(ctx: StudyRuns, run: object, predictions: Predictions) -> np.ndarray:
    shape = ctx.image_shape(run)  # type: ignore[arg-type]
    x = predictions.x
    if x[0].size != np.prod(shape):  # feature steps (PCA, chosen pixels) fed the model
        x = ctx.images(run, predictions.split)  # type: ignore[arg-type]
    return x.reshape(len(x), *shape)


def _classes(predictions: Predictions) -> int:
    return predictions.probabilities.shape[1]


@analysis(
    "confusion_matrix",
    "Confusion matrix of the held-out predictions: counts, and rows normalised to recall.",
)
def confusion_matrix(ctx: StudyRuns, options: Options) -> Result:
    """Counts and row-normalised confusion matrices of each chosen run."""
    result = Result("confusion_matrix")
    for run in ctx.pick(options):
        p = ctx.predictions(run)
        counts = confusion_counts(p.y, p.predicted, _classes(p))
        result.items[ctx.label(run)] = {
            "counts": counts,
            "normalised": row_normalised(counts),
            "split": p.split,
        }
    return result


@analysis(
    "classification_report",
    "Precision, recall and F1 of every class on the held-out data, with their averages.",
)
def classification_report(ctx: StudyRuns, options: Options) -> Result:
    """scikit-learn's classification report as a table per chosen run."""
    result = Result("classification_report")
    for run in ctx.pick(options):
        p = ctx.predictions(run)
        labels = list(range(_classes(p)))
        precision, recall, f1, support = precision_recall_fscore_support(
            p.y, p.predicted, labels=labels, zero_division=0
        )
        rows = [
            [str(c), f"{precision[c]:.3f}", f"{recall[c]:.3f}", f"{f1[c]:.3f}", str(support[c])]
            for c in labels
        ]
        total = int(support.sum())
        accuracy = float((p.predicted == p.y).mean())
        rows.append(["accuracy", "", "", f"{accuracy:.3f}", str(total)])
        for name, weights in (("macro avg", None), ("weighted avg", support)):
            avg = [np.average(v, weights=weights) for v in (precision, recall, f1)]
            rows.append([name, *(f"{v:.3f}" for v in avg), str(total)])
        label = ctx.label(run)
        result.items[label] = {"precision": precision, "recall": recall, "f1": f1}
        result.tables.append(
            SimpleTable(
                f"{label} ({p.split})", ["class", "precision", "recall", "f1", "support"], rows
            )
        )
    return result


class PairOptions(Options):
    """How many example images per cell of the confused pair's 2×2 block."""

    examples: PositiveInt = 25


@analysis(
    "confused_pairs",
    "The two digits confused most often (a-as-b plus b-as-a), with the first held-out images "
    "of each cell of their 2×2 block.",
    PairOptions,
)
def confused_pairs(ctx: StudyRuns, options: PairOptions) -> Result:
    """The most confused pair of each chosen run and its cells' first examples."""
    result = Result("confused_pairs")
    for run in ctx.pick(options):
        p = ctx.predictions(run)
        counts = confusion_counts(p.y, p.predicted, _classes(p))
        a, b = most_confused_pair(counts)
        images = _images(ctx, run, p)
        cells = {}
        for true in (a, b):
            for guess in (a, b):
                rows = np.flatnonzero((p.y == true) & (p.predicted == guess))[: options.examples]
                cells[(true, guess)] = images[rows]
        result.items[ctx.label(run)] = {
            "pair": (a, b),
            "counts": counts[np.ix_([a, b], [a, b])],
            "cells": cells,
        }
        result.tables.append(
            SimpleTable(
                f"{ctx.label(run)}: {a} and {b}",
                ["true \\ predicted", str(a), str(b)],
                [[str(t), *(str(counts[t, g]) for g in (a, b))] for t in (a, b)],
            )
        )
    return result


class MistakeOptions(Options):
    """How many of the most confident mistakes to show."""

    count: PositiveInt = 16


@analysis(
    "confident_mistakes",
    "The held-out images the model got wrong with the highest confidence.",
    MistakeOptions,
)
def confident_mistakes(ctx: StudyRuns, options: MistakeOptions) -> Result:
    """Wrong predictions sorted by the predicted class's probability, highest first."""
    result = Result("confident_mistakes")
    for run in ctx.pick(options):
        p = ctx.predictions(run)
        wrong = np.flatnonzero(p.predicted != p.y)
        confidence = p.probabilities[wrong, p.predicted[wrong]]
        order = wrong[np.argsort(-confidence, kind="stable")][: options.count]
        result.items[ctx.label(run)] = {
            "images": _images(ctx, run, p)[order],
            "true": p.y[order],
            "predicted": p.predicted[order],
            "confidence": p.probabilities[order, p.predicted[order]],
        }
    return result


def roc_per_class(y: np.ndarray, scores: np.ndarray) -> dict[str, object]:
    """One-vs-rest ROC curves and AUC per class, plus macro and micro averages.

    Parameters
    ----------
    y : (N,) int labels; scores : (N, C) class scores (probabilities).

    Returns
    -------
    dict with `curves` (class -> (fpr, tpr)), `auc` (C,) (NaN for a class absent from y),
    `macro` (mean over classes present), `micro` (AUC of the pooled one-vs-rest problem),
    `micro_curve` and `macro_curve` (the classes' TPRs averaged at the union of their FPRs).
    """
    classes = scores.shape[1]
    onehot = np.eye(classes, dtype=np.int64)[y]
    curves: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    auc = np.full(classes, np.nan)
    for c in range(classes):
        if 0 < onehot[:, c].sum() < len(y):
            fpr, tpr, _ = roc_curve(onehot[:, c], scores[:, c])
            curves[c] = (fpr, tpr)
            auc[c] = roc_auc_score(onehot[:, c], scores[:, c])
    micro_fpr, micro_tpr, _ = roc_curve(onehot.ravel(), scores.ravel())
    # macro-average curve: every class's TPR at the union of their FPRs, averaged
    grid = np.unique(np.concatenate([fpr for fpr, _ in curves.values()]))
    macro_tpr = np.mean([np.interp(grid, fpr, tpr) for fpr, tpr in curves.values()], axis=0)
    return {
        "curves": curves,
        "macro_curve": (grid, macro_tpr),
        "auc": auc,
        "macro": float(np.nanmean(auc)),
        "micro": float(roc_auc_score(onehot.ravel(), scores.ravel())),
        "micro_curve": (micro_fpr, micro_tpr),
    }


class RocOptions(Options):
    """Whether to add the coursework's AUC from hard one-hot predictions, labelled as such."""

    hard: bool = Field(
        default=False,
        description="also the macro AUC of one-hot predicted classes (how the coursework scored "
        "its SVMs), in its own column",
    )


@analysis(
    "roc",
    "One-vs-rest ROC curves of every class on the held-out data, with per-class, macro and "
    "micro AUC; the table says what each run's curves rank by (probabilities, else the "
    "decision function).",
    RocOptions,
)
def roc(ctx: StudyRuns, options: RocOptions) -> Result:
    """ROC curves and AUC of each chosen run, from its probabilities or decision values."""
    result = Result("roc")
    rows = []
    for run in ctx.pick(options):
        p = ctx.predictions(run)
        entry = roc_per_class(p.y, p.ranking)
        entry["source"] = p.source
        label = ctx.label(run)
        result.items[label] = entry
        hard = []
        if options.hard:
            one_hot = np.eye(p.probabilities.shape[1])[p.predicted]
            entry["hard_macro"] = roc_per_class(p.y, one_hot)["macro"]
            hard = [f"{entry['hard_macro']:.4f}"]
        rows.append(
            [
                label,
                p.source,
                f"{entry['macro']:.4f}",
                f"{entry['micro']:.4f}",
                *hard,
                *(f"{a:.4f}" for a in entry["auc"]),
            ]
        )  # type: ignore[union-attr]
    classes = len(next(iter(result.items.values()))["auc"])
    extra = ["macro, hard one-hot (coursework)"] if options.hard else []
    result.tables.append(
        SimpleTable(
            "AUC",
            ["run", "scores from", "macro", "micro", *extra, *map(str, range(classes))],
            rows,
        )
    )
    return result


class PredictionOptions(Options):
    """How many test images to show, and how many rows of probabilities."""

    images: PositiveInt = 25
    probability_rows: PositiveInt = Field(default=20, description="rows of the probability table")


def label_rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean square error between true and predicted labels as numbers (as printed)."""
    return float(np.sqrt(np.mean((np.asarray(y_true, float) - np.asarray(y_pred, float)) ** 2)))


@analysis(
    "predictions",
    "The first held-out images with their predicted and true labels (wrong ones in red), the "
    "predicted probabilities of the first rows, and the RMSE between true and predicted labels.",
    PredictionOptions,
)
def predictions(ctx: StudyRuns, options: PredictionOptions) -> Result:
    """First images with labels, a probability table and the label RMSE per chosen run."""
    result = Result("predictions")
    rmse_rows = []
    for run in ctx.pick(options):
        p = ctx.predictions(run)
        label = ctx.label(run)
        n = options.images
        result.items[label] = {
            "images": _images(ctx, run, p)[:n],
            "true": p.y[:n],
            "predicted": p.predicted[:n],
        }
        k = options.probability_rows
        classes = _classes(p)
        rows = [
            [str(i), str(p.y[i]), str(p.predicted[i]), *(f"{v:.3f}" for v in p.probabilities[i])]
            for i in range(min(k, len(p.y)))
        ]
        result.tables.append(
            SimpleTable(
                f"{label}: predicted probabilities ({p.split})",
                ["#", "true", "predicted", *map(str, range(classes))],
                rows,
            )
        )
        rmse_rows.append([label, p.split, f"{label_rmse(p.y, p.predicted):.4f}"])
    result.tables.insert(
        0,
        SimpleTable("RMSE between true and predicted labels", ["run", "split", "RMSE"], rmse_rows),
    )
    return result
