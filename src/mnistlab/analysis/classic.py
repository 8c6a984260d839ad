"""Analyses of the classical part: feature selection, SVM decision regions and intuition,
regression fits in original units, and the NumPy net's predictions before training."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from pydantic import Field, PositiveFloat, PositiveInt

from mnistlab.analysis.context import StudyRuns, batched
from mnistlab.analysis.contract import NotApplicable, Options, Result, SimpleTable
from mnistlab.analysis.registry import analysis
from mnistlab.data.regression import regression_splits
from mnistlab.studies.records import RunRecord

SvmKernel = Literal["linear", "poly", "rbf", "sigmoid"]

# --- feature selection ---


class FeatureOptions(Options):
    """Which training image the chosen pixels are drawn over."""

    image: int = Field(default=0, ge=0, description="training image under the chosen pixels")


@analysis(
    "feature_selection",
    "The fitted feature steps: the random forest's pixel importances as an image with the "
    "chosen pixels over a digit, and PCA's explained variance.",
    FeatureOptions,
)
def feature_selection(ctx: StudyRuns, options: FeatureOptions) -> Result:
    """Importances, chosen pixels and PCA variance of each distinct fitted pipeline."""
    result = Result("feature_selection")
    seen: set[str] = set()
    for run in ctx.runs:
        config = ctx.config(run)
        key = config.data.model_dump_json(include={"features"})
        if not config.data.features or key in seen:
            continue
        seen.add(key)
        data, shape = ctx.data(run), ctx.image_shape(run)
        dataset = ctx.dataset(run)
        index = min(options.image, len(dataset.x_train) - 1)
        for i, step in enumerate(data.features):
            label = f"{ctx.group_label(run)}: step {i + 1} ({step.kind})"
            if step.kind == "forest_select":
                importances = np.asarray(step.info["importances"])
                mask = np.zeros(importances.size, dtype=bool)
                mask[np.asarray(step.info["selected"])] = True
                result.items[label] = {
                    "kind": "forest_select",
                    "importances": importances.reshape(shape),
                    "mask": mask.reshape(shape),
                    "digit": dataset.x_train[index].reshape(shape),
                    "label": int(dataset.y_train[index]),
                }
                result.notes.append(f"{label}: {int(mask.sum())} pixels kept of {mask.size}")
            elif step.kind == "pca":
                ratio = np.asarray(step.info["explained_variance_ratio"])
                result.items[label] = {"kind": "pca", "cumulative": np.cumsum(ratio)}
                result.notes.append(
                    f"{label}: {int(step.info['n_components'])} components keep "
                    f"{ratio.sum():.4f} of the variance"
                )
    if not result.items:
        raise NotApplicable("no run uses a pca or forest_select feature step")
    return result


# --- SVM decision regions ---


class RegionOptions(Options):
    """The images projected, the kernels compared, and the mesh of the regions."""

    points: PositiveInt = Field(default=1000, description="seeded training images projected")
    kernels: tuple[SvmKernel, ...] = ("linear", "poly", "sigmoid", "rbf")
    C: PositiveFloat = 1.0
    gamma: Literal["scale", "auto"] | PositiveFloat = "auto"
    degree: PositiveInt = 2
    mesh: PositiveInt = Field(default=150, description="grid points per axis")
    seed: int = 0


def decision_grid(
    points: np.ndarray, labels: np.ndarray, kernel: str, options: RegionOptions
) -> dict[str, np.ndarray]:
    """An SVC fitted on 2-D points and its predicted class over a mesh covering them.

    Returns
    -------
    dict with `xx`, `yy` (mesh, M × M), `zz` (predicted class, M × M) and `accuracy` on the
    points themselves.
    """
    from sklearn.svm import SVC

    svc = SVC(kernel=kernel, C=options.C, gamma=options.gamma, degree=options.degree)
    svc.fit(points, labels)
    low, high = points.min(axis=0), points.max(axis=0)
    pad = 0.05 * (high - low)
    xs = np.linspace(low[0] - pad[0], high[0] + pad[0], options.mesh)
    ys = np.linspace(low[1] - pad[1], high[1] + pad[1], options.mesh)
    xx, yy = np.meshgrid(xs, ys)
    zz = svc.predict(np.c_[xx.ravel(), yy.ravel()]).reshape(xx.shape)
    return {"xx": xx, "yy": yy, "zz": zz, "accuracy": float(svc.score(points, labels))}


@analysis(
    "decision_regions",
    "SVM decision regions of each kernel on a 2-component PCA of training images.",
    RegionOptions,
)
def decision_regions(ctx: StudyRuns, options: RegionOptions) -> Result:
    """PCA(2) of a seeded sample of the first run's training images; one SVC per kernel."""
    from sklearn.decomposition import PCA

    if not ctx.runs:
        raise NotApplicable("no finished run, so no data to project")
    train = ctx.data(ctx.runs[0]).train
    x = train.x.reshape(len(train), -1).cpu().numpy()
    y = train.y.cpu().numpy()
    rows = np.random.default_rng(options.seed).choice(
        len(x), min(options.points, len(x)), replace=False
    )
    points = PCA(n_components=2, random_state=options.seed).fit_transform(x[rows])
    result = Result("decision_regions")
    result.items["points"] = {"coords": points, "digits": y[rows]}
    for kernel in options.kernels:
        result.items[kernel] = decision_grid(points, y[rows], kernel, options)
    result.tables.append(
        SimpleTable(
            f"SVC on the 2-D projection of {len(rows)} images (C {options.C}, gamma "
            f"{options.gamma}, poly degree {options.degree})",
            ["kernel", "accuracy on those points"],
            [[k, f"{result.items[k]['accuracy']:.4f}"] for k in options.kernels],
        )
    )
    return result


# --- SVM intuition ---


class IntuitionOptions(Options):
    """The synthetic sets' size and seed, and the linear SVC's C."""

    samples: PositiveInt = 200
    C: PositiveFloat = 1000.0
    mesh: PositiveInt = 150
    seed: int = 0


def synthetic_sets(samples: int, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Three 2-D two-class sets: linearly separable blobs, overlapping (noisy) blobs, circles."""
    from sklearn.datasets import make_blobs, make_circles

    return {
        "separable": make_blobs(samples, centers=2, cluster_std=0.6, random_state=seed),
        "noisy": make_blobs(samples, centers=2, cluster_std=2.2, random_state=seed),
        "circles": make_circles(samples, noise=0.05, factor=0.4, random_state=seed),
    }


def quadratic_map(x: np.ndarray) -> np.ndarray:
    """φ(x1, x2) = (x1², x2², √2·x1·x2), whose inner products are <x, y>²: (N, 2) -> (N, 3)."""
    return np.stack([x[:, 0] ** 2, x[:, 1] ** 2, math.sqrt(2) * x[:, 0] * x[:, 1]], axis=1)


def kernel_identity_error(pairs: int = 1000, seed: int = 0) -> float:
    """max |<φ(x), φ(y)> − <x, y>²| over random 2-D pairs: the kernel trick, numerically."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(pairs, 2)), rng.normal(size=(pairs, 2))
    mapped = (quadratic_map(x) * quadratic_map(y)).sum(axis=1)
    return float(np.abs(mapped - (x * y).sum(axis=1) ** 2).max())


@analysis(
    "svm_intuition",
    "Why kernels help: a linear SVC (C = 1000) with its margins at −1, 0, 1 on separable, "
    "noisy and circular 2-D sets, and the quadratic map that makes the circles separable.",
    IntuitionOptions,
)
def svm_intuition(ctx: StudyRuns, options: IntuitionOptions) -> Result:
    """Decision function on a mesh, support vectors, φ of the circles, the kernel check."""
    from sklearn.svm import SVC

    result = Result("svm_intuition")
    rows = []
    for name, (x, y) in synthetic_sets(options.samples, options.seed).items():
        svc = SVC(kernel="linear", C=options.C).fit(x, y)
        low, high = x.min(axis=0) - 0.5, x.max(axis=0) + 0.5
        xx, yy = np.meshgrid(
            np.linspace(low[0], high[0], options.mesh), np.linspace(low[1], high[1], options.mesh)
        )
        zz = svc.decision_function(np.c_[xx.ravel(), yy.ravel()]).reshape(xx.shape)
        result.items[name] = {
            "x": x,
            "y": y,
            "xx": xx,
            "yy": yy,
            "decision": zz,
            "support": svc.support_vectors_,
            "accuracy": float(svc.score(x, y)),
        }
        rows.append([name, f"{svc.score(x, y):.3f}", str(len(svc.support_vectors_))])
    circles_x, circles_y = result.items["circles"]["x"], result.items["circles"]["y"]
    mapped = quadratic_map(circles_x)
    mapped_svc = SVC(kernel="linear", C=options.C).fit(mapped, circles_y)
    result.items["mapped"] = {"phi": mapped, "y": circles_y}
    rows.append(["circles after φ", f"{mapped_svc.score(mapped, circles_y):.3f}", "-"])
    error = kernel_identity_error(seed=options.seed)
    result.items["identity"] = {"max_error": error}
    result.tables.append(
        SimpleTable(
            f"linear SVC, C = {options.C:g}", ["set", "training accuracy", "support vectors"], rows
        )
    )
    result.notes.append(
        f"kernel identity <φ(x), φ(y)> = <x, y>² on 1,000 random pairs: largest difference "
        f"{error:.2e}"
    )
    return result


# --- regression fits ---


@analysis(
    "regression_fit",
    "Regression in the data's own units: the raw data with the model's curve, and the "
    "predictions against the targets on the test points.",
)
def regression_fit(ctx: StudyRuns, options: Options) -> Result:
    """Each chosen run's predictions, mapped back through the target's min-max scaling."""
    result = Result("regression_fit")
    rows = []
    for run in ctx.pick(options):
        spec = ctx.config(run).data
        if spec.regression is None:
            raise NotApplicable("the study's data is not a regression CSV")
        result.items[ctx.label(run)] = entry = _regression_entry(ctx, run)
        rows.append(
            [
                ctx.label(run),
                f"{entry['train_mse']:.4g}",
                f"{entry['test_mse']:.4g}" if entry["test_x"].size else "-",
            ]
        )
    result.tables.append(
        SimpleTable("MSE in the data's units", ["run", "train MSE", "test MSE"], rows)
    )
    return result


def _regression_entry(ctx: StudyRuns, run: RunRecord) -> dict[str, object]:
    spec = ctx.config(run).data
    assert spec.regression is not None
    table = ctx.cache.table(spec)
    parts = regression_splits(table, spec.regression)
    net = ctx.model(run)
    x_raw = np.stack([table.columns[c] for c in spec.regression.x], axis=1)
    y_raw = np.stack([table.columns[c] for c in spec.regression.y], axis=1)

    def predict(rows: np.ndarray) -> np.ndarray:
        scaled = parts.x_scaler.apply(rows).astype(np.float32)
        out = batched(net, torch.from_numpy(scaled).to(ctx.device))
        return parts.y_scaler.invert(out)

    grid = np.linspace(x_raw[:, 0].min(), x_raw[:, 0].max(), 200)[:, None]
    train, test = parts.train_rows, parts.test_rows
    train_pred, test_pred = predict(x_raw[train]), predict(x_raw[test])
    return {
        "x": x_raw[:, 0],
        "y": y_raw[:, 0],
        "train_rows": train,
        "test_rows": test,
        "curve_x": grid[:, 0],
        "curve_y": predict(np.repeat(grid, x_raw.shape[1], axis=1))[:, 0]
        if x_raw.shape[1] == 1
        else np.array([]),
        "test_x": x_raw[test, 0],
        "test_y": y_raw[test, 0],
        "test_pred": test_pred[:, 0],
        "train_mse": float(np.mean((train_pred - y_raw[train]) ** 2)),
        "test_mse": float(np.mean((test_pred - y_raw[test]) ** 2)) if len(test) else math.nan,
        "x_name": spec.regression.x[0],
        "y_name": spec.regression.y[0],
    }


# --- the NumPy net before training ---


class BeforeOptions(Options):
    """How many test images to list."""

    rows: PositiveInt = 20


@analysis(
    "initial_predictions",
    "The NumPy network's predictions on the first test images before training, next to the "
    "labels and to its predictions after training.",
    BeforeOptions,
)
def initial_predictions(ctx: StudyRuns, options: BeforeOptions) -> Result:
    """From the scores the NumPy engine stored before and after training."""
    result = Result("initial_predictions")
    for run in ctx.pick(options):
        path = ctx.artifact(run, "scores")
        if path is None or not path.is_file():
            continue
        with np.load(path) as archive:
            if "scores_test_before" not in archive.files:
                continue
            before = archive["scores_test_before"][: options.rows].argmax(axis=1)
            after = archive["scores_test"][: options.rows].argmax(axis=1)
            labels = archive["labels_test"][: options.rows]
        label = ctx.label(run)
        result.items[label] = {"labels": labels, "before": before, "after": after}
        result.tables.append(
            SimpleTable(
                f"{label}: first {len(labels)} test images",
                ["image", "label", "before training", "after training"],
                [
                    [str(i), str(t), str(b), str(a)]
                    for i, (t, b, a) in enumerate(zip(labels, before, after, strict=True))
                ],
            )
        )
        result.notes.append(
            f"{label}: {int((before == labels).sum())} of {len(labels)} right before training, "
            f"{int((after == labels).sum())} after"
        )
    if not result.items:
        raise NotApplicable("no run of the numpy engine with stored test scores")
    return result
