"""How a study's numbers and configuration values read in a table: one formatting for all.

Accuracies display as percentages with 2 decimals (differences in percentage points),
other metrics with 4 significant digits; configuration values compactly ("512-128",
"l2(0.01)", "random_normal(mean=0, stddev=0.062)").
"""

from __future__ import annotations

import math
from typing import Any

from mnistlab.studies.stats import Stats

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


def format_delta(metric: str, delta: float) -> str:
    """A signed difference: accuracies in percentage points, else 4 significant digits."""
    if not math.isfinite(delta):
        return "-"
    return f"{delta * 100:+.2f}" if is_accuracy(metric) else f"{delta:+.4g}"


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
