"""One look for every figure: Agg backend, colour-blind-safe palettes, PNG encoding."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

LINES = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
"""Okabe–Ito: eight colours told apart under every common colour-vision deficiency."""

DIGITS = (
    "#332288", "#88CCEE", "#44AA99", "#117733", "#999933",
    "#DDCC77", "#CC6677", "#882255", "#AA4499", "#777777",
)  # fmt: skip
"""Paul Tol's muted palette plus grey: one colour-blind-safe colour per digit 0–9."""

RIGHT, WRONG = "#009E73", "#D55E00"  # Okabe–Ito green and vermillion
DPI = 100
WIDTH = 9.0  # inches: the report's column is 900 px wide at DPI
DIGIT_MAP = ListedColormap(DIGITS, name="digits")

RC = {
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.prop_cycle": matplotlib.cycler(color=LINES),
    "image.cmap": "viridis",
    "figure.constrained_layout.use": True,
}


def digit_color(digit: int) -> str:
    """The colour of a digit (classes beyond 9 wrap around)."""
    return DIGITS[int(digit) % len(DIGITS)]


def line_color(i: int) -> str:
    """The i-th line colour (wraps around)."""
    return LINES[i % len(LINES)]


def new_figure(
    rows: int = 1, cols: int = 1, height: float = 3.2, width: float = WIDTH, **kwargs: object
) -> tuple[Figure, object]:
    """A figure of `rows` × `cols` panels at report width, `height` inches per row."""
    fig = Figure(figsize=(width, height * rows), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, **kwargs)
    return fig, axes


def styled() -> object:
    """A context in which figures are drawn and saved with the report's style."""
    return plt.rc_context(RC)


def image_axes(ax: object) -> None:
    """An axis for an image: no ticks, no grid, no frame."""
    ax.set_xticks([])  # type: ignore[attr-defined]
    ax.set_yticks([])  # type: ignore[attr-defined]
    ax.grid(False)  # type: ignore[attr-defined]
    for spine in ax.spines.values():  # type: ignore[attr-defined]
        spine.set_visible(False)


def to_png_data(fig: Figure) -> str:
    """The figure as a `data:image/png;base64,...` URI (self-contained HTML)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
