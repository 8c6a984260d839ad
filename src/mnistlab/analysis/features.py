"""CNN analyses: feature maps of chosen layers for one digit, accuracy versus wall time."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field, NonNegativeInt

from mnistlab.analysis.context import StudyRuns
from mnistlab.analysis.contract import NotApplicable, Options, Result, SimpleTable
from mnistlab.analysis.registry import analysis
from mnistlab.models.cnn import CNNNet
from mnistlab.models.summary import layer_rows


class FeatureMapOptions(Options):
    """Which layers, and which image of which split, to show."""

    layers: list[NonNegativeInt] = Field(
        default=[0, 1, 2, 3], description="indices into the model's layers (0 = the first)"
    )
    split: Literal["train", "val", "test"] = "train"
    index: NonNegativeInt = Field(default=2, description="the image's row in that split")


@analysis(
    "feature_maps",
    "Every channel's output of the chosen layers for one input digit, in inference mode.",
    FeatureMapOptions,
)
def feature_maps(ctx: StudyRuns, options: FeatureMapOptions) -> Result:
    """Per run: the input image and, per chosen layer, its maps (C, H, W) or units (1, 1, U)."""
    result = Result("feature_maps")
    skipped = []
    for run in ctx.pick(options):
        net = ctx.model(run)
        if not isinstance(net, CNNNet):
            skipped.append(ctx.label(run))
            continue
        split = getattr(ctx.data(run), options.split)
        if split is None or options.index >= len(split.x):
            raise NotApplicable(f"the {options.split} split has no image {options.index}")
        x = split.x[options.index : options.index + 1]
        rows = layer_rows(net)
        layers = []
        with torch.no_grad():
            for i in options.layers:
                if i >= len(net.spec.layers):
                    raise NotApplicable(f"layer {i}: the model has {len(net.spec.layers)} layers")
                out = net.eval().features(x, i)[0].cpu().numpy()
                maps = out if out.ndim == 3 else out.reshape(1, 1, -1)
                layers.append({"name": f"{rows[i].name} ({rows[i].type})", "maps": maps})
        result.items[ctx.label(run)] = {
            "input": x.reshape(net.image_shape).cpu().numpy(),
            "label": int(split.y[options.index]),
            "layers": layers,
        }
    if skipped:
        result.notes.append(f"not CNNs (no feature maps): {', '.join(skipped)}")
    if not result.items:
        raise NotApplicable("no CNN run to show feature maps of")
    return result


class TimeOptions(Options):
    """Which accuracy to follow, and the target it should reach."""

    runs: Literal["first", "best", "all", "selected"] = "all"
    key: str = Field(default="val_accuracy", description="a History key")
    target: float = Field(default=0.993, description="the accuracy to reach, e.g. 0.993")


@analysis(
    "accuracy_vs_time",
    "Accuracy after each epoch against the wall time of training so far (the History's time).",
    TimeOptions,
)
def accuracy_vs_time(ctx: StudyRuns, options: TimeOptions) -> Result:
    """Per run: cumulative seconds and the accuracy after each epoch; a table of the totals."""
    result = Result("accuracy_vs_time")
    rows = []
    for run in ctx.pick(options):
        history = ctx.history(run)
        accuracy, seconds = history.get(options.key), history.get("time")
        if not accuracy or not seconds:
            continue
        elapsed = np.cumsum(seconds)
        label = ctx.label(run)
        result.items[label] = {"seconds": elapsed, "accuracy": np.asarray(accuracy)}
        reached = np.flatnonzero(np.asarray(accuracy) >= options.target)
        rows.append(
            [
                label,
                f"{accuracy[-1]:.4f}",
                f"{elapsed[-1] / 60:.1f}",
                f"{np.mean(seconds):.1f}",
                f"{elapsed[reached[0]] / 60:.1f} (epoch {reached[0] + 1})" if len(reached) else "—",
            ]
        )
    if not result.items:
        raise NotApplicable(f"no run has both {options.key} and time in its History")
    result.tables.append(
        SimpleTable(
            f"{options.key} and training wall time",
            ["run", f"final {options.key}", "minutes", "s / epoch", f"≥ {options.target} at min"],
            rows,
        )
    )
    return result
