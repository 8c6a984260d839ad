"""Drawers of the classical analyses: feature selection, SVM regions and intuition, regression."""

from __future__ import annotations

from typing import Any

import numpy as np

from mnistlab.analysis import Result
from mnistlab.report.figures import Figures, digit_legend, drawer
from mnistlab.report.style import DIGIT_MAP, image_axes, line_color, new_figure

MARGINS = (-1.0, 0.0, 1.0)  # decision-function levels drawn for the linear SVC


@drawer("feature_selection")
def _feature_selection(result: Result, options: Any) -> Figures:
    figures = []
    for label, entry in result.items.items():
        if entry["kind"] == "forest_select":
            fig, axes = new_figure(1, 2, height=3.6, width=7.5)
            heat, over = axes[0]
            shown = heat.imshow(entry["importances"], cmap="hot", interpolation="nearest")
            fig.colorbar(shown, ax=heat, shrink=0.8)
            heat.set_title("pixel importances")
            over.imshow(entry["digit"], cmap="gray_r", interpolation="nearest")
            rows, cols = np.nonzero(entry["mask"])
            over.scatter(cols, rows, s=12, marker="s", facecolors="none", edgecolors="red", lw=0.8)
            over.set_title(f"{int(entry['mask'].sum())} chosen pixels over a {entry['label']}")
            for ax in (heat, over):
                image_axes(ax)
        else:
            fig, axes = new_figure(1, 1, height=3.0, width=6.0)
            ax = axes[0, 0]
            cumulative = entry["cumulative"]
            ax.plot(np.arange(1, len(cumulative) + 1), cumulative, color=line_color(0))
            ax.set_xlabel("components kept")
            ax.set_ylabel("cumulative explained variance")
        figures.append((label, fig))
    return figures


@drawer("decision_regions")
def _decision_regions(result: Result, options: Any) -> Figures:
    points = result.items["points"]
    kernels = [k for k in result.items if k != "points"]
    fig, axes = new_figure(1, len(kernels), height=3.0)
    for ax, kernel in zip(axes[0], kernels, strict=True):
        grid = result.items[kernel]
        ax.contourf(
            grid["xx"],
            grid["yy"],
            grid["zz"],
            levels=np.arange(-0.5, 10),
            cmap=DIGIT_MAP,
            alpha=0.35,
        )
        ax.scatter(
            *points["coords"].T, c=points["digits"], cmap=DIGIT_MAP, vmin=-0.5, vmax=9.5, s=4, lw=0
        )
        ax.set_title(f"{kernel} (accuracy {grid['accuracy']:.2f})")
        ax.set_xlabel("PC 1")
    axes[0][0].set_ylabel("PC 2")
    digit_legend(axes[0][-1])
    return [("SVC decision regions on the first two principal components", fig)]


@drawer("svm_intuition")
def _svm_intuition(result: Result, options: Any) -> Figures:
    sets = [k for k in ("separable", "noisy", "circles") if k in result.items]
    fig, axes = new_figure(1, len(sets), height=3.0)
    for ax, name in zip(axes[0], sets, strict=True):
        entry = result.items[name]
        ax.contour(
            entry["xx"],
            entry["yy"],
            entry["decision"],
            levels=MARGINS,
            colors="k",
            linestyles=["--", "-", "--"],
            linewidths=1,
        )
        for cls in (0, 1):
            mask = entry["y"] == cls
            ax.scatter(*entry["x"][mask].T, s=8, color=line_color(cls), lw=0)
        ax.scatter(*entry["support"].T, s=40, facecolors="none", edgecolors="k", lw=0.7)
        ax.set_title(f"{name}: accuracy {entry['accuracy']:.2f}")
    mapped = result.items["mapped"]
    space_fig = new_figure(1, 1, height=4.0, width=5.0)[0]
    space_fig.clear()
    space = space_fig.add_subplot(1, 1, 1, projection="3d")
    for cls in (0, 1):
        mask = mapped["y"] == cls
        space.scatter(*mapped["phi"][mask].T, s=6, color=line_color(cls))
    space.set_xlabel("x1²")
    space.set_ylabel("x2²")
    space.set_zlabel("√2·x1·x2")
    return [
        ("linear SVC, margins at −1, 0 and 1 (support vectors circled)", fig),
        ("the circles after φ(x1, x2) = (x1², x2², √2·x1·x2): a plane separates them", space_fig),
    ]


@drawer("regression_fit")
def _regression_fit(result: Result, options: Any) -> Figures:
    figures = []
    for label, entry in result.items.items():
        fig, axes = new_figure(1, 2, height=3.4)
        data, fit = axes[0]
        train, test = entry["train_rows"], entry["test_rows"]
        data.scatter(entry["x"][train], entry["y"][train], s=14, color=line_color(0), label="train")
        data.scatter(entry["x"][test], entry["y"][test], s=14, color=line_color(1), label="test")
        if len(entry["curve_y"]):
            data.plot(entry["curve_x"], entry["curve_y"], color="k", lw=1, label="model")
        data.set_xlabel(entry["x_name"])
        data.set_ylabel(entry["y_name"])
        data.legend(frameon=False)
        fit.scatter(entry["test_y"], entry["test_pred"], s=14, color=line_color(1))
        low = min(entry["test_y"].min(initial=0), entry["test_pred"].min(initial=0))
        high = max(entry["test_y"].max(initial=0), entry["test_pred"].max(initial=0))
        fit.plot([low, high], [low, high], ":", color="grey")
        fit.set_xlabel(f"target {entry['y_name']}")
        fit.set_ylabel(f"predicted {entry['y_name']}")
        fit.set_title(f"test points, MSE {entry['test_mse']:.3g} (original units)")
        figures.append((label, fig))
    return figures
