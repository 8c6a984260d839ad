"""The weights themselves: histograms, violins, and hidden units' incoming weights as images."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, PositiveInt

from mnistlab.analysis.context import StudyRuns
from mnistlab.analysis.contract import NotApplicable, Options, Result, SimpleTable
from mnistlab.analysis.registry import analysis
from mnistlab.models.cnn import CNNNet
from mnistlab.models.mlp import MLPNet
from mnistlab.models.summary import layer_rows
from mnistlab.studies.records import RunRecord


def dense_tensors(state: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(layer name, kernel (in, out), bias (out,)) of every Dense layer, in layer order."""
    layers = []
    for name, kernel in state.items():
        if name.endswith(".kernel") and kernel.ndim == 2:
            prefix = name[: -len(".kernel")]
            layers.append((prefix, kernel, state.get(f"{prefix}.bias", np.zeros(kernel.shape[1]))))
    return layers


def dense_names(count: int) -> list[str]:
    """Display names of `count` Dense layers: hidden 1 … hidden k, then output."""
    return [f"hidden {i + 1}" for i in range(count - 1)] + ["output"]


def final_state(ctx: StudyRuns, run: RunRecord) -> dict[str, np.ndarray]:
    """The run's final weights as NumPy arrays."""
    return {k: v.detach().cpu().numpy() for k, v in ctx.model(run).state_dict().items()}


def initial_state(ctx: StudyRuns, run: RunRecord) -> dict[str, np.ndarray] | None:
    """The run's weights at initialisation, when it recorded them (capture initial_weights)."""
    captured = ctx.captures(run)
    state = {k[len("initial/") :]: v for k, v in captured.items() if k.startswith("initial/")}
    return state or None


class HistogramOptions(Options):
    """Which layers, and how many bins."""

    layers: Literal["first", "all"] = "first"
    bins: PositiveInt = 100


def histogram(values: np.ndarray, bins: int) -> dict[str, np.ndarray]:
    """Counts and bin edges of the finite values."""
    finite = values[np.isfinite(values)]
    counts, edges = np.histogram(finite, bins=bins)
    return {"counts": counts, "edges": edges}


@analysis(
    "weight_histograms",
    "Histograms of the weights and biases of each layer, after initialisation and after training.",
    HistogramOptions,
    captures=("initial_weights",),
)
def weight_histograms(ctx: StudyRuns, options: HistogramOptions) -> Result:
    """Per run, layer and moment (initial, final): histograms of kernel and bias values."""
    result = Result("weight_histograms")
    for run in ctx.pick(options):
        moments = {"after training": final_state(ctx, run)}
        initial = initial_state(ctx, run)
        if initial is not None:
            moments = {"after initialisation": initial, **moments}
        else:
            result.notes.append(f"{ctx.label(run)}: no initial weights were recorded")
        entry: dict[str, dict[str, dict[str, dict[str, np.ndarray]]]] = {}
        for moment, state in moments.items():
            layers = dense_tensors(state)
            names = dense_names(len(layers))
            chosen = range(1) if options.layers == "first" else range(len(layers))
            for i in chosen:
                _, kernel, bias = layers[i]
                entry.setdefault(names[i], {})[moment] = {
                    "weights": histogram(kernel.ravel(), options.bins),
                    "biases": histogram(bias.ravel(), options.bins),
                }
        result.items[ctx.label(run)] = entry
    return result


@analysis(
    "weight_violins",
    "The distribution of every Dense kernel's weights after training, one violin per layer.",
)
def weight_violins(ctx: StudyRuns, options: Options) -> Result:
    """Per run: each Dense kernel's values (the output layer's included)."""
    result = Result("weight_violins")
    rows = []
    for run in ctx.pick(options):
        layers = dense_tensors(final_state(ctx, run))
        names = dense_names(len(layers))
        values = {name: kernel.ravel() for name, (_, kernel, _) in zip(names, layers, strict=True)}
        result.items[ctx.label(run)] = values
        rows += [
            [
                ctx.label(run),
                name,
                str(v.size),
                f"{v.mean():.4f}",
                f"{v.std():.4f}",
                f"{v.min():.4f}",
                f"{v.max():.4f}",
            ]
            for name, v in values.items()
        ]
    result.tables.append(
        SimpleTable(
            "kernel statistics", ["run", "layer", "weights", "mean", "std", "min", "max"], rows
        )
    )
    return result


class ImageOptions(Options):
    """How many hidden units, and the grey scale they share."""

    units: PositiveInt = 16
    scale: Literal["symmetric", "original"] = Field(
        default="symmetric",
        description="symmetric: ±max|W| over the units shown; original: 0.5·min(W) to "
        "0.5·max(W), as the coursework drew them",
    )


def shared_scale(weights: np.ndarray, scale: str) -> tuple[float, float]:
    """(vmin, vmax) of one grey scale for every image drawn from `weights`."""
    if scale == "original":
        return 0.5 * float(weights.min()), 0.5 * float(weights.max())
    bound = float(np.abs(weights).max()) or 1.0
    return -bound, bound


@analysis(
    "hidden_weights_images",
    "The first hidden units' incoming weights drawn as images on one shared grey scale, "
    "before and after training.",
    ImageOptions,
    captures=("initial_weights",),
)
def hidden_weights_images(ctx: StudyRuns, options: ImageOptions) -> Result:
    """Per run and moment: the first layer's first `units` columns as (units, H, W) images."""
    result = Result("hidden_weights_images")
    for run in ctx.pick(options):
        shape = ctx.image_shape(run)
        if len(shape) != 2:
            raise NotApplicable("the inputs are not images")
        moments = {"after training": final_state(ctx, run)}
        initial = initial_state(ctx, run)
        if initial is not None:
            moments = {"after initialisation": initial, **moments}
        entry = {}
        for moment, state in moments.items():
            _, kernel, _ = dense_tensors(state)[0]
            if kernel.shape[0] != shape[0] * shape[1]:
                raise NotApplicable("the first layer does not take raw pixels")
            units = kernel[:, : options.units].T.reshape(-1, *shape)
            entry[moment] = {"images": units, "range": shared_scale(units, options.scale)}
        result.items[ctx.label(run)] = entry
    return result


def parameter_count(state: dict[str, np.ndarray]) -> int:
    """Every number in the model's state, as Keras's "Total params" counts them."""
    return int(sum(v.size for v in state.values()))


@analysis(
    "model_table",
    "Each run's parameter count with its final train (last-epoch History), validation and "
    "test loss and accuracy.",
)
def model_table(ctx: StudyRuns, options: Options) -> Result:
    """One row per chosen run: parameters and the final metrics."""
    result = Result("model_table")
    metrics = ("loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")
    rows = []
    for run in ctx.pick(options):
        count = parameter_count(final_state(ctx, run))
        result.items[ctx.label(run)] = {"parameters": count}
        cells = [run.metrics.get(m) for m in metrics]
        rows.append(
            [
                ctx.label(run),
                f"{count:,}",
                run.status,
                *("-" if v is None else f"{v:.4f}" for v in cells),
            ]
        )
    result.tables.append(
        SimpleTable("final numbers", ["run", "parameters", "status", *metrics], rows)
    )
    return result


SUMMARY_HEADER = ["Layer (type)", "Output Shape", "Param #", "Trainable", "Non-trainable"]


@analysis(
    "model_summary",
    "Keras's model.summary() of each distinct model: layers, output shapes and parameter "
    "counts, trainable and non-trainable.",
)
def model_summary(ctx: StudyRuns, options: Options) -> Result:
    """One summary table per distinct model configuration among the chosen runs."""
    result = Result("model_summary")
    seen: set[str] = set()
    for run in ctx.pick(options):
        model_key = ctx.config(run).model.model_dump_json()
        if model_key in seen:
            continue
        seen.add(model_key)
        model = ctx.model(run)
        if not isinstance(model, MLPNet | CNNNet):
            result.notes.append(f"{ctx.label(run)}: not a Keras-style network, no summary")
            continue
        rows = layer_rows(model)
        trainable = sum(row.trainable for row in rows)
        frozen = sum(row.non_trainable for row in rows)
        result.items[ctx.group_label(run)] = {"trainable": trainable, "non_trainable": frozen}
        cells = [
            [
                f"{row.name} ({row.type})",
                f"(None, {', '.join(map(str, row.shape))})",
                f"{row.params:,}",
                f"{row.trainable:,}",
                f"{row.non_trainable:,}",
            ]
            for row in rows
        ]
        cells.append(["Total", "", f"{trainable + frozen:,}", f"{trainable:,}", f"{frozen:,}"])
        result.tables.append(SimpleTable(ctx.group_label(run), SUMMARY_HEADER, cells))
    if not result.tables:
        raise NotApplicable("no chosen run is a Keras-style network")
    return result
