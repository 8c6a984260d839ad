"""The data itself: class counts, samples, pixel values, two pixels, and its PCA."""

from __future__ import annotations

import numpy as np
from pydantic import Field, PositiveInt
from sklearn.decomposition import PCA

from mnistlab.analysis.context import StudyRuns
from mnistlab.analysis.contract import NotApplicable, Options, Result, SimpleTable
from mnistlab.analysis.registry import analysis
from mnistlab.studies.records import RunRecord

HISTOGRAM_BINS = 50


class OverviewOptions(Options):
    """Samples to show, the image drawn as numbers, and the two pixels compared."""

    samples: PositiveInt = 25
    image: int = Field(default=0, ge=0, description="training image shown as its raw matrix")
    pixels: tuple[int, int] = Field(default=(77, 78), description="two pixel indices (row-major)")


def _first(ctx: StudyRuns) -> RunRecord:
    if not ctx.runs:
        raise NotApplicable("no finished run, so no data to look at")
    return ctx.runs[0]


def _splits(ctx: StudyRuns, run: RunRecord) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The run's splits as fed to the model (scaled), name -> (x (N, D), y (N,))."""
    data = ctx.data(run)
    named = {"train": data.train, "val": data.val, "test": data.test}
    out = {}
    for name, split in named.items():
        if split is None or (name == "val" and split is data.test):
            continue
        x = split.x.cpu().numpy()
        out[name] = (x.reshape(len(x), -1), split.y.cpu().numpy())
    return out


def value_counts(values: np.ndarray) -> dict[int, int]:
    """How often each value occurs, sorted by value."""
    unique, counts = np.unique(values, return_counts=True)
    return {int(u): int(c) for u, c in zip(unique, counts, strict=True)}


@analysis(
    "data_overview",
    "The data: class counts per split, sample digits, value ranges and intensity histograms, "
    "one image as its raw matrix, and two neighbouring pixels' values.",
    OverviewOptions,
)
def data_overview(ctx: StudyRuns, options: OverviewOptions) -> Result:
    """Counts, samples, ranges, histograms (scaled data); raw matrix and pixels (as read)."""
    run = _first(ctx)
    dataset = ctx.dataset(run)
    splits = _splits(ctx, run)
    classes = ctx.data(run).n_classes
    shape = ctx.image_shape(run)
    result = Result("data_overview")
    result.items["counts"] = {n: np.bincount(y, minlength=classes) for n, (_, y) in splits.items()}
    x_train, y_train = splits["train"]
    result.items["samples"] = {
        "images": x_train[: options.samples].reshape(-1, *shape),
        "labels": y_train[: options.samples],
    }
    result.items["histograms"] = {
        n: np.histogram(x, bins=HISTOGRAM_BINS) for n, (x, _) in splits.items()
    }
    raw = dataset.x_train.reshape(len(dataset.x_train), -1)
    index = min(options.image, len(raw) - 1)
    result.items["raw"] = {
        "matrix": raw[index].reshape(shape),
        "label": int(dataset.y_train[index]),
    }
    a, b = options.pixels
    if max(a, b) >= raw.shape[1]:
        raise NotApplicable(f"pixels {a} and {b}: images have {raw.shape[1]} pixels")
    result.items["pixels"] = {
        "indices": (a, b),
        "values": raw[:, [a, b]],
        "digits": dataset.y_train,
        "counts": (value_counts(raw[:, a]), value_counts(raw[:, b])),
    }
    result.tables.append(
        SimpleTable(
            "class counts",
            ["split", *map(str, range(classes)), "total"],
            [[n, *map(str, c), str(c.sum())] for n, c in result.items["counts"].items()],
        )
    )
    result.tables.append(
        SimpleTable(
            "value ranges (as fed to the model)",
            ["split", "images", "min", "max", "mean"],
            [
                [n, str(len(x)), f"{x.min():.4g}", f"{x.max():.4g}", f"{x.mean():.4g}"]
                for n, (x, _) in splits.items()
            ],
        )
    )
    values = np.unique(raw[index])
    result.tables.append(
        SimpleTable(
            f"training image {index} (digit {result.items['raw']['label']}) as read",
            [str(c) for c in range(shape[-1])],
            [[str(v) for v in row] for row in result.items["raw"]["matrix"]],
        )
    )
    result.notes.append(f"its {len(values)} distinct pixel values: {', '.join(map(str, values))}")
    for pixel, counts in zip((a, b), result.items["pixels"]["counts"], strict=True):
        shown = ", ".join(f"{v}: {c}" for v, c in list(counts.items())[:12])
        more = " …" if len(counts) > 12 else ""
        result.notes.append(f"pixel {pixel} value counts (training images): {shown}{more}")
    return result


class PcaOptions(Options):
    """Components of the cumulative curve, and points in the scatter plots."""

    components: PositiveInt = 100
    points: PositiveInt = Field(default=5000, description="seeded training rows in the scatters")
    seed: int = 0


@analysis(
    "pca",
    "Principal components of the training images: 2-D and 3-D scatters coloured by digit and "
    "the cumulative explained variance.",
    PcaOptions,
)
def pca(ctx: StudyRuns, options: PcaOptions) -> Result:
    """Explained variance ratios (first `components`) and the first three coordinates."""
    run = _first(ctx)
    x, y = _splits(ctx, run)["train"]
    components = min(options.components, *x.shape)
    model = PCA(n_components=components, random_state=options.seed).fit(x)
    ratio = model.explained_variance_ratio_
    rows = np.random.default_rng(options.seed).choice(
        len(x), min(options.points, len(x)), replace=False
    )
    result = Result("pca")
    result.items["explained"] = {"ratio": ratio, "cumulative": np.cumsum(ratio)}
    result.items["scatter"] = {"coords": model.transform(x[rows])[:, :3], "digits": y[rows]}
    result.tables.append(
        SimpleTable(
            "explained variance ratio",
            ["components", "ratio", "cumulative"],
            [
                [str(k), f"{ratio[k - 1]:.4f}", f"{np.cumsum(ratio)[k - 1]:.4f}"]
                for k in (1, 2, 3, 10, 50, components)
                if k <= components
            ],
        )
    )
    return result
