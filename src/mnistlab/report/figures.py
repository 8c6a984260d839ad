"""Drawers: one function per analysis turning its `Result` into titled matplotlib figures.

Register a drawer with `@drawer("name")`; it gets the analysis's `Result` and returns
``[(title, Figure), ...]``. Layout only: every number comes from the analysis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from mnistlab.analysis import Result
from mnistlab.report.style import (
    DIGIT_MAP,
    RIGHT,
    WRONG,
    digit_color,
    image_axes,
    line_color,
    new_figure,
)

Figures = list[tuple[str, Figure]]
Drawer = Callable[[Result, Any], Figures]
_DRAWERS: dict[str, Drawer] = {}
MAX_COLS = 4  # panels per row
THUMBNAIL_PX = 20  # width of a digit thumbnail on the t-SNE map


def drawer(name: str) -> Callable[[Drawer], Drawer]:
    """Register the decorated function as the drawer of analysis `name`."""

    def register(fn: Drawer) -> Drawer:
        _DRAWERS[name] = fn
        return fn

    return register


def draw(result: Result, options: Any) -> Figures:
    """The figures of one result, drawn with its options ([] for a tables-only analysis)."""
    fn = _DRAWERS.get(result.name)
    return [] if fn is None else fn(result, options)


def _grid(count: int, cols: int = MAX_COLS, height: float = 2.6) -> tuple[Figure, list[Any]]:
    cols = max(1, min(cols, count))
    rows = math.ceil(count / cols)
    fig, axes = new_figure(rows, cols, height=height)
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def _epochs_axis(ax: Any) -> None:
    """An x axis of whole epochs."""
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def digit_legend(ax: Any, classes: int = 10, title: str = "digit") -> None:
    """A legend with one coloured marker per digit."""
    handles = [
        Line2D([], [], marker="o", ls="", color=digit_color(d), label=str(d))
        for d in range(classes)
    ]
    ax.legend(
        handles=handles, title=title, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False
    )


def image_grid(
    images: np.ndarray,
    titles: Sequence[str] = (),
    colors: Sequence[str] = (),
    cols: int = 10,
    vrange: tuple[float, float] | None = None,
    cmap: str = "gray_r",
    size: float = 0.9,
) -> Figure:
    """Images in a grid, each with an optional coloured title."""
    count = max(len(images), 1)
    cols = min(cols, count)
    rows = math.ceil(count / cols)
    fig, axes = new_figure(rows, cols, height=size + 0.25, width=min(9.0, cols * (size + 0.1)))
    for i, ax in enumerate(axes.flat):
        image_axes(ax)
        if i >= len(images):
            ax.set_visible(False)
            continue
        low, high = vrange if vrange is not None else (None, None)
        ax.imshow(images[i], cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
        if i < len(titles):
            ax.set_title(titles[i], fontsize=7, color=colors[i] if i < len(colors) else "black")
    return fig


# --- curves ---


@drawer("curves")
def _curves(result: Result, options: Any) -> Figures:
    keys = list(dict.fromkeys(k for entry in result.items.values() for k in entry))
    by_run = options.layout == "by-run"
    panels = list(result.items) if by_run else keys
    fig, axes = _grid(len(panels), cols=2 if by_run else MAX_COLS, height=2.8)
    for ax, panel in zip(axes, panels, strict=True):
        lines = keys if by_run else list(result.items)
        for i, line in enumerate(lines):
            entry = result.items[panel if by_run else line]
            key = line if by_run else panel
            if key not in entry:
                continue
            curve = entry[key]
            epochs = np.arange(1, len(curve["mean"]) + 1)
            color = line_color(i)
            ax.plot(epochs, curve["mean"], color=color, label=line, lw=1.4)
            if len(curve["runs"]) > 1:
                ax.fill_between(
                    epochs,
                    curve["mean"] - curve["std"],
                    curve["mean"] + curve["std"],
                    color=color,
                    alpha=0.2,
                    lw=0,
                )
        ax.set_title(panel)
        _epochs_axis(ax)
        if options.ylim is not None:
            ax.set_ylim(*options.ylim)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=min(len(labels), 3),
        frameon=False,
        fontsize=7,
    )
    return [("learning curves (mean ± std over repetitions)", fig)]


@drawer("zero_one_error")
def _zero_one(result: Result, options: Any) -> Figures:
    fig, axes = new_figure(1, 1, height=3.2)
    ax = axes[0, 0]
    for i, (label, entry) in enumerate(result.items.items()):
        for style, (split, curve) in zip(("-", "--"), entry.items(), strict=False):
            epochs = np.arange(1, len(curve) + 1)
            ax.plot(epochs, curve, style, color=line_color(i), label=f"{label}: {split}", lw=1.3)
    _epochs_axis(ax)
    ax.set_ylabel("zero-one error")
    ax.legend(loc="upper right", fontsize=7, frameon=False)
    return [("zero-one error per epoch (solid: train, dashed: held out)", fig)]


# --- classification ---


def _heatmap(ax: Any, matrix: np.ndarray, fmt: str, title: str) -> None:
    ax.imshow(matrix, cmap="Blues")
    image_axes(ax)
    classes = len(matrix)
    ax.set_xticks(range(classes))
    ax.set_yticks(range(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    top = matrix.max() or 1
    for i in range(classes):
        for j in range(classes):
            value = matrix[i, j]
            ax.text(
                j,
                i,
                format(value, fmt),
                ha="center",
                va="center",
                fontsize=6,
                color="white" if value > top / 2 else "black",
            )


@drawer("confusion_matrix")
def _confusion(result: Result, options: Any) -> Figures:
    figures = []
    for label, entry in result.items.items():
        fig, axes = new_figure(1, 2, height=4.2)
        _heatmap(axes[0, 0], entry["counts"], "d", "counts")
        _heatmap(axes[0, 1], entry["normalised"], ".2f", "row-normalised (recall)")
        figures.append((f"{label} ({entry['split']})", fig))
    return figures


@drawer("confused_pairs")
def _pairs(result: Result, options: Any) -> Figures:
    figures = []
    for label, entry in result.items.items():
        a, b = entry["pair"]
        for (true, guess), images in entry["cells"].items():
            if len(images) == 0:
                continue
            fig = image_grid(images, cols=min(len(images), 13), size=0.65)
            colour = RIGHT if true == guess else WRONG
            fig.suptitle(f"true {true} predicted {guess}", color=colour, fontsize=9)
            figures.append((f"{label}: pair {a}/{b}, true {true} as {guess}", fig))
    return figures


@drawer("confident_mistakes")
def _mistakes(result: Result, options: Any) -> Figures:
    figures = []
    for label, entry in result.items.items():
        titles = [
            f"{t}→{p} ({c:.2f})"
            for t, p, c in zip(entry["true"], entry["predicted"], entry["confidence"], strict=True)
        ]
        fig = image_grid(entry["images"], titles, [WRONG] * len(titles), cols=8)
        figures.append((f"{label}: true→predicted (confidence)", fig))
    return figures


@drawer("roc")
def _roc(result: Result, options: Any) -> Figures:
    figures = []
    for label, entry in result.items.items():
        fig, axes = new_figure(1, 1, height=4.0, width=6.5)
        ax = axes[0, 0]
        for c, (fpr, tpr) in entry["curves"].items():
            ax.plot(fpr, tpr, color=digit_color(c), lw=1, label=f"{c} (AUC {entry['auc'][c]:.3f})")
        fpr, tpr = entry["micro_curve"]
        ax.plot(fpr, tpr, "k--", lw=1.2, label=f"micro (AUC {entry['micro']:.3f})")
        if "macro_curve" in entry:
            fpr, tpr = entry["macro_curve"]
            ax.plot(fpr, tpr, "k:", lw=1.4, label=f"macro (AUC {entry['macro']:.3f})")
        ax.plot([0, 1], [0, 1], ":", color="grey", lw=0.8)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(f"macro AUC {entry['macro']:.4f} (scores: {entry.get('source', '-')})")
        ax.legend(
            title="digit", loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=7
        )
        figures.append((label, fig))
    return figures


@drawer("predictions")
def _predictions(result: Result, options: Any) -> Figures:
    figures = []
    for label, entry in result.items.items():
        right = entry["true"] == entry["predicted"]
        titles = [
            f"pred {p} / true {t}" for p, t in zip(entry["predicted"], entry["true"], strict=True)
        ]
        colors = [RIGHT if ok else WRONG for ok in right]
        figures.append((label, image_grid(entry["images"], titles, colors, cols=5, size=1.2)))
    return figures


# --- weights and learning speed ---


def _log_if_positive(ax: Any, values: np.ndarray) -> None:
    """A log y axis when there is something positive to show on it (a dead unit has 0s)."""
    if np.any(np.asarray(values) > 0):
        ax.set_yscale("log")


@drawer("weight_histograms")
def _histograms(result: Result, options: Any) -> Figures:
    figures = []
    for label, layers in result.items.items():
        for layer, moments in layers.items():
            fig, axes = new_figure(len(moments), 2, height=2.2)
            for row, (moment, parts) in enumerate(moments.items()):
                for col, (kind, hist) in enumerate(parts.items()):
                    ax = axes[row, col]
                    edges = hist["edges"]
                    ax.stairs(hist["counts"], edges, fill=True, color=line_color(col), alpha=0.8)
                    ax.set_title(f"{kind}, {moment}")
            figures.append((f"{label}: {layer}", fig))
    return figures


@drawer("weight_violins")
def _violins(result: Result, options: Any) -> Figures:
    figures = []
    for label, values in result.items.items():
        fig, axes = new_figure(1, 1, height=3.0)
        ax = axes[0, 0]
        names = list(values)
        parts = ax.violinplot([values[n] for n in names], showmedians=True)
        for i, body in enumerate(parts["bodies"]):
            body.set_facecolor(line_color(i))
            body.set_alpha(0.6)
        ax.set_xticks(range(1, len(names) + 1), names)
        ax.set_ylabel("kernel weight")
        figures.append((label, fig))
    return figures


@drawer("hidden_weights_images")
def _weight_images(result: Result, options: Any) -> Figures:
    figures = []
    for label, moments in result.items.items():
        for moment, entry in moments.items():
            low, high = entry["range"]
            fig = image_grid(
                entry["images"],
                [str(i) for i in range(len(entry["images"]))],
                cols=8,
                vrange=(low, high),
                cmap="gray",
                size=1.0,
            )
            figures.append((f"{label}: {moment} (grey scale {low:.3g} to {high:.3g})", fig))
    return figures


@drawer("learning_speed")
def _speed(result: Result, options: Any) -> Figures:
    figures = []
    for label, entry in result.items.items():
        fig, axes = new_figure(1, 3, height=3.0)
        for ax, key, title in zip(
            axes[0],
            ("grad_norm", "relative_change"),
            ("gradient norm", "mean|ΔW| / mean|W|"),
            strict=False,
        ):
            values = entry[key]
            epochs = np.arange(1, len(values) + 1)
            for i, layer in enumerate(entry["layers"]):
                ax.plot(epochs, values[:, i], color=line_color(i), label=layer, lw=1.3)
            _log_if_positive(ax, values)
            ax.set_title(title)
            _epochs_axis(ax)
        axes[0, 0].legend(fontsize=7, frameon=False)
        ax = axes[0, 2]
        original = entry["original"]
        ax.plot(np.arange(1, len(original) + 1), original, color="black", lw=1.3)
        ax.set_title("single learning-speed number")
        _epochs_axis(ax)
        figures.append((label, fig))
    return figures


@drawer("chain_product")
def _chain(result: Result, options: Any) -> Figures:
    fig, axes = new_figure(1, 2, height=3.0)
    for i, (label, entry) in enumerate(result.items.items()):
        epochs = np.arange(1, len(entry["product"]) + 1)
        axes[0, 0].plot(epochs, entry["product"], color=line_color(i), label=label)
        axes[0, 1].plot(epochs, entry["derivative"], color=line_color(i), label=label)
        axes[0, 1].axhline(entry["bound"], color="grey", ls=":", lw=1)
    axes[0, 0].set_title("|σ'(z1)·w2·σ'(z2)·…·σ'(zk)|")
    axes[0, 1].set_title("|Π σ'(z)| and the bound (1/4)^k (dotted)")
    for ax, key in zip(axes[0], ("product", "derivative"), strict=True):
        _log_if_positive(ax, np.concatenate([e[key] for e in result.items.values()]))
        _epochs_axis(ax)
    axes[0, 0].legend(fontsize=7, frameon=False)
    return [("chain-rule factor per epoch", fig)]


# --- hidden units ---


@drawer("hidden_activations")
def _hidden(result: Result, options: Any) -> Figures:
    figures = []
    for label, entry in result.items.items():
        fig, axes = new_figure(1, 1, height=3.4, width=7.5)
        ax = axes[0, 0]
        if entry["kind"] == "box":
            groups = entry["per_digit"]
            parts = ax.boxplot(
                groups,
                patch_artist=True,
                tick_labels=[str(d) for d in range(len(groups))],
                flierprops={"markersize": 2},
            )
            for d, box in enumerate(parts["boxes"]):
                box.set_facecolor(digit_color(d))
                box.set_alpha(0.7)
            ax.set_xlabel("true digit")
            ax.set_ylabel("activation")
        else:
            points, digits = entry["points"], entry["digits"]
            for d in range(10):
                mask = digits == d
                ax.scatter(
                    points[mask, 0], points[mask, 1], s=3, color=digit_color(d), alpha=0.6, lw=0
                )
            ax.set_xlabel("unit 0")
            ax.set_ylabel("unit 1")
            digit_legend(ax, title=f"{entry['color_by']} digit")
        figures.append((label, fig))
    return figures


@drawer("tsne")
def _tsne(result: Result, options: Any) -> Figures:
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    figures = []
    for label, entry in result.items.items():
        fig, axes = new_figure(1, 1, height=7.0, width=8.5)
        ax = axes[0, 0]
        points, digits = entry["points"], entry["digits"]
        size = max(0.5, min(6.0, 6000 / len(points)))
        ax.scatter(
            points[:, 0], points[:, 1], c=[digit_color(d) for d in digits], s=size, lw=0, alpha=0.7
        )
        for index, image in zip(entry["thumbnails"], entry["images"], strict=True):
            box = AnnotationBbox(
                OffsetImage(image, cmap="gray_r", zoom=THUMBNAIL_PX / image.shape[-1]),
                points[index],
                frameon=False,
                pad=0,
            )
            ax.add_artist(box)
        image_axes(ax)
        digit_legend(ax)
        figures.append(
            (f"{label}: {len(points)} images, {len(entry['thumbnails'])} thumbnails", fig)
        )
    return figures


@drawer("activation_maximization")
def _maximization(result: Result, options: Any) -> Figures:
    items = list(result.items.items())
    fig, axes = _grid(len(items), cols=4, height=2.6)
    for ax, (label, entry) in zip(axes, items, strict=True):
        ax.imshow(entry["pattern"], cmap="gray")
        image_axes(ax)
        ax.set_title(
            f"{label}\nactivation {entry['activation']:.3g}, predicted {entry['predicted']}",
            fontsize=7,
        )
    return [(f"hidden layer {options.layer}, unit {options.unit}", fig)]


# --- data ---


@drawer("data_overview")
def _data(result: Result, options: Any) -> Figures:
    figures = []
    counts = result.items["counts"]
    fig, axes = _grid(len(counts), cols=3, height=2.4)
    for ax, (split, values) in zip(axes, counts.items(), strict=True):
        ax.bar(range(len(values)), values, color=[digit_color(d) for d in range(len(values))])
        ax.set_xticks(range(len(values)))
        ax.set_title(f"{split}: {values.sum()} images")
        ax.set_xlabel("digit")
    figures.append(("class counts", fig))
    samples = result.items["samples"]
    figures.append(
        (
            "sample training digits",
            image_grid(samples["images"], [str(d) for d in samples["labels"]], cols=10, size=0.75),
        )
    )
    histograms = result.items["histograms"]
    fig, axes = _grid(len(histograms), cols=3, height=2.4)
    for i, (ax, (split, (hist, edges))) in enumerate(zip(axes, histograms.items(), strict=True)):
        ax.stairs(hist, edges, fill=True, color=line_color(i))
        ax.set_yscale("log")
        ax.set_title(f"{split}: pixel intensities")
    figures.append(("pixel intensity histograms (as fed to the model)", fig))
    pixels = result.items["pixels"]
    a, b = pixels["indices"]
    fig, axes = new_figure(1, 3, height=2.8)
    for ax, pixel, counts_of in zip(axes[0][:2], (a, b), pixels["counts"], strict=True):
        ax.bar(list(counts_of), list(counts_of.values()), color=line_color(0), width=2)
        ax.set_yscale("log")
        ax.set_title(f"pixel {pixel}: value counts")
    ax = axes[0, 2]
    values, digits = pixels["values"], pixels["digits"]
    for d in range(10):
        mask = digits == d
        ax.scatter(values[mask, 0], values[mask, 1], s=3, color=digit_color(d), lw=0, alpha=0.6)
    ax.set_xlabel(f"pixel {a}")
    ax.set_ylabel(f"pixel {b}")
    digit_legend(ax)
    figures.append((f"pixels {a} and {b} (raw values)", fig))
    raw = result.items["raw"]
    fig, axes = new_figure(1, 1, height=3.0, width=3.2)
    axes[0, 0].imshow(raw["matrix"], cmap="gray_r")
    image_axes(axes[0, 0])
    figures.append((f"the raw matrix's image (digit {raw['label']})", fig))
    return figures


@drawer("pca")
def _pca(result: Result, options: Any) -> Figures:
    coords, digits = result.items["scatter"]["coords"], result.items["scatter"]["digits"]
    explained = result.items["explained"]
    fig = Figure(figsize=(9.0, 3.4), dpi=100, layout="constrained")
    flat = fig.add_subplot(1, 3, 1)
    space = fig.add_subplot(1, 3, 2, projection="3d")
    curve = fig.add_subplot(1, 3, 3)
    for d in range(10):
        mask = digits == d
        flat.scatter(coords[mask, 0], coords[mask, 1], s=2, color=digit_color(d), lw=0)
        if coords.shape[1] > 2:
            space.scatter(
                coords[mask, 0], coords[mask, 1], coords[mask, 2], s=1, color=digit_color(d), lw=0
            )
    ratio = explained["ratio"]
    flat.set_title(f"2-D: {ratio[:2].sum():.1%} of the variance")
    space.set_title(f"3-D: {ratio[:3].sum():.1%}")
    curve.plot(np.arange(1, len(ratio) + 1), explained["cumulative"], color=line_color(0))
    curve.set_xlabel("components")
    curve.set_title("cumulative explained variance")
    curve.grid(True, alpha=0.3)
    digit_legend(flat)
    return [("principal components", fig)]


__all__ = ["DIGIT_MAP", "digit_legend", "draw", "drawer", "image_grid"]


# --- CNNs ---


@drawer("feature_maps")
def _feature_maps(result: Result, options: Any) -> Figures:
    figures: Figures = []
    for label, entry in result.items.items():
        fig = image_grid(entry["input"][None], [f"input (digit {entry['label']})"], cols=1)
        figures.append((f"{label}: input", fig))
        for layer in entry["layers"]:
            maps = layer["maps"]
            titles = [str(c) for c in range(len(maps))]
            fig = image_grid(maps, titles, cols=min(8, len(maps)), cmap="viridis")
            shape = "x".join(map(str, maps.shape[1:]))
            figures.append((f"{label}: {layer['name']}, {len(maps)} maps of {shape}", fig))
    return figures


@drawer("accuracy_vs_time")
def _accuracy_vs_time(result: Result, options: Any) -> Figures:
    fig, axes = new_figure(1, 1, height=3.2)
    ax = axes[0, 0]
    for i, (label, entry) in enumerate(result.items.items()):
        ax.plot(entry["seconds"] / 60, entry["accuracy"], "o-", color=line_color(i), label=label)
    ax.axhline(options.target, color="gray", ls="--", lw=1, label=f"target {options.target}")
    ax.set_xlabel("training wall time (minutes)")
    ax.set_ylabel(options.key)
    ax.legend(loc="lower right", fontsize=7, frameon=False)
    return [(f"{options.key} against wall time", fig)]
