"""Hidden units: their activations per digit, a t-SNE map of them, and what input they like."""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
import torch
from pydantic import Field, PositiveFloat, PositiveInt
from torch import Tensor, nn

from mnistlab.analysis.context import StudyRuns, batched
from mnistlab.analysis.contract import NotApplicable, Options, Result, SimpleTable
from mnistlab.analysis.registry import analysis
from mnistlab.models.layers import Activation, BatchNorm, Dense
from mnistlab.studies.records import RunRecord

OPENTSNE_FROM = 5000  # points; openTSNE's per-iteration overhead only pays off above this
EARLY_EXAGGERATION_ITERATIONS = 250  # scikit-learn's fixed count, matched for openTSNE
RMS_EPSILON = 1e-5  # gradient ascent: the step is grad / (RMS(grad) + this)


def hidden_layer(net: nn.Module, layer: int) -> nn.Sequential:
    """The network up to hidden layer `layer` (1-based), after its activation and its BN.

    Dropout is left in place (it is the identity in eval mode).
    """
    layers = list(getattr(net, "layers", []))
    dense_seen, end = 0, None
    for i, module in enumerate(layers):
        if isinstance(module, Dense):
            dense_seen += 1
            if dense_seen > layer:
                break
        if dense_seen == layer and isinstance(module, Activation | BatchNorm):
            end = i + 1
    hidden_count = sum(isinstance(m, Dense) for m in layers) - 1
    if end is None or layer > hidden_count:
        raise NotApplicable(f"the model has no hidden layer {layer} ({hidden_count} hidden layers)")
    return nn.Sequential(*layers[:end]).eval()


def activations_of(net: nn.Module, x: Tensor, layer: int) -> np.ndarray:
    """Hidden layer `layer`'s outputs for inputs `x`, (N, units), in inference mode."""
    trunk = hidden_layer(net, layer)
    return batched(trunk, x).astype(np.float64)


def per_digit(values: np.ndarray, labels: np.ndarray, classes: int) -> list[np.ndarray]:
    """`values` (N,) split by label: the box-plot data, one array per digit 0..classes-1."""
    return [values[labels == d] for d in range(classes)]


class HiddenOptions(Options):
    """Which hidden layer and split; whose digit colours the two-unit scatter."""

    layer: PositiveInt = Field(default=1, description="hidden layer, 1-based")
    split: Literal["train", "test"] = "test"
    color_by: Literal["predicted", "true"] = "predicted"


def _split(ctx: StudyRuns, run: RunRecord, name: str) -> tuple[Tensor, np.ndarray]:
    data = ctx.data(run)
    split = data.train if name == "train" else (data.test if data.test is not None else data.val)
    if split is None:
        raise NotApplicable(f"the study has no {name} data")
    return split.x, split.y.cpu().numpy()


@analysis(
    "hidden_activations",
    "A one-unit layer's activation per true digit (box plots, min/max table); a two-unit "
    "layer's activations as a scatter coloured by digit.",
    HiddenOptions,
)
def hidden_activations(ctx: StudyRuns, options: HiddenOptions) -> Result:
    """Per run with 1 or 2 units in the chosen layer: box-plot data, or the 2-D scatter."""
    result = Result("hidden_activations")
    for run in ctx.pick(options):
        net = ctx.model(run)
        x, y = _split(ctx, run, options.split)
        acts = activations_of(net, x, options.layer)
        label = ctx.label(run)
        classes = ctx.data(run).n_classes
        if acts.shape[1] == 1:
            groups = per_digit(acts[:, 0], y, classes)
            result.items[label] = {"kind": "box", "per_digit": groups}
            rows = [
                [str(d), f"{g.min():.4f}", f"{g.max():.4f}", str(len(g))]
                for d, g in enumerate(groups)
                if len(g)
            ]
            result.tables.append(
                SimpleTable(
                    f"{label}: activation per digit ({options.split}); maximum {acts.max():.4f}",
                    ["digit", "min", "max", "images"],
                    rows,
                )
            )
        elif acts.shape[1] == 2:
            colour = (
                y
                if options.color_by == "true"
                else batched(lambda t, net=net: net(t).argmax(dim=1), x)
            )
            result.items[label] = {
                "kind": "scatter",
                "points": acts,
                "digits": colour,
                "color_by": options.color_by,
            }
        else:
            result.notes.append(f"{label}: {acts.shape[1]} units (see tsne for 3 or more)")
    if not result.items:
        raise NotApplicable("no chosen run has a hidden layer of one or two units")
    return result


class TsneOptions(Options):
    """t-SNE settings; the defaults are the hidden-width study's."""

    layer: PositiveInt = 1
    split: Literal["train", "test"] = "train"
    subsample: PositiveInt | None = Field(default=None, description="seeded rows; null: all")
    perplexity: PositiveFloat = 40.0
    iterations: PositiveInt = 300
    initialization: Literal["pca", "random"] = "pca"
    seed: int = 0
    method: Literal["auto", "opentsne", "sklearn"] = Field(
        default="auto",
        description="auto: openTSNE from 5,000 points when installed (much faster there), "
        "else scikit-learn",
    )
    thumbnails: bool = True
    thumbnail_distance: PositiveFloat = Field(
        default=0.02, description="min squared distance between thumbnails in the [0, 1] map"
    )
    min_units: PositiveInt = 3


def tsne_embedding(
    features: np.ndarray,
    perplexity: float,
    iterations: int,
    initialization: str,
    seed: int,
    method: str = "auto",
) -> np.ndarray:
    """A 2-D t-SNE embedding (N, 2) of `features` (N, F), deterministic for a seed.

    `iterations` counts every gradient step as scikit-learn's `max_iter` does: the first
    250 (at most) with early exaggeration, the rest without; openTSNE is given the same split.
    scikit-learn needs at least 250.
    """
    features = np.ascontiguousarray(features, dtype=np.float64)
    if method == "opentsne" or (method == "auto" and len(features) >= OPENTSNE_FROM):
        try:
            from openTSNE import TSNE as OpenTSNE
        except ImportError:
            if method == "opentsne":
                raise NotApplicable("openTSNE is not installed") from None
        else:
            early = min(EARLY_EXAGGERATION_ITERATIONS, iterations - 1)
            model = OpenTSNE(
                perplexity=perplexity,
                early_exaggeration_iter=early,
                n_iter=iterations - early,
                initialization=initialization,
                random_state=seed,
                n_jobs=len(os.sched_getaffinity(0)),
                verbose=False,
            )
            return np.asarray(model.fit(features))
    from sklearn.manifold import TSNE

    model = TSNE(
        perplexity=perplexity, max_iter=max(iterations, 250), init=initialization, random_state=seed
    )
    return model.fit_transform(features)


def thumbnail_positions(points: np.ndarray, min_distance: float) -> list[int]:
    """Greedy: indices of points (in the [0, 1]-normalised map) at least `min_distance`
    squared distance from every thumbnail already placed."""
    low, high = points.min(axis=0), points.max(axis=0)
    normal = (points - low) / np.where(high > low, high - low, 1.0)
    chosen: list[int] = []
    placed = np.empty((0, 2))
    for i, point in enumerate(normal):
        if len(placed) == 0 or np.min(((placed - point) ** 2).sum(axis=1)) >= min_distance:
            chosen.append(i)
            placed = np.vstack([placed, point])
    return chosen


@analysis(
    "tsne",
    "A t-SNE map of a hidden layer's activations (three or more units), coloured by digit, "
    "with digit thumbnails where the map has room.",
    TsneOptions,
)
def tsne(ctx: StudyRuns, options: TsneOptions) -> Result:
    """Per run with at least `min_units` units: the 2-D map, digits and thumbnails."""
    result = Result("tsne")
    for run in ctx.pick(options):
        net = ctx.model(run)
        x, y = _split(ctx, run, options.split)
        if options.subsample is not None and options.subsample < len(y):
            rows = np.sort(
                np.random.default_rng(options.seed).choice(len(y), options.subsample, replace=False)
            )
            x, y = x[torch.as_tensor(rows, device=x.device)], y[rows]
        acts = activations_of(net, x, options.layer)
        label = ctx.label(run)
        if acts.shape[1] < options.min_units:
            result.notes.append(f"{label}: {acts.shape[1]} units, below {options.min_units}")
            continue
        points = tsne_embedding(
            acts,
            options.perplexity,
            options.iterations,
            options.initialization,
            options.seed,
            options.method,
        )
        thumbs = (
            thumbnail_positions(points, options.thumbnail_distance) if options.thumbnails else []
        )
        images = x[torch.as_tensor(thumbs, dtype=torch.long, device=x.device)].cpu().numpy()
        result.items[label] = {
            "points": points,
            "digits": y,
            "thumbnails": np.asarray(thumbs, dtype=np.int64),
            "images": images.reshape(len(thumbs), *ctx.image_shape(run)),
        }
    if not result.items:
        raise NotApplicable(f"no chosen run has {options.min_units} or more hidden units")
    return result


class MaximizationOptions(Options):
    """Gradient ascent on the input, as the hidden-width coursework did it."""

    layer: PositiveInt = 1
    unit: int = Field(default=0, ge=0, description="the unit of that layer, 0-based")
    steps: PositiveInt = 1000
    step_size: PositiveFloat = 1.0
    noise: PositiveFloat = Field(default=0.1, description="std of the starting noise, around 0.5")
    seed: int = 0


def maximize_unit(
    net: nn.Module,
    layer: int,
    unit: int,
    shape: tuple[int, ...],
    steps: int,
    step_size: float,
    noise: float,
    seed: int,
) -> tuple[np.ndarray, float, float]:
    """Gradient ascent on an input for one hidden unit's mean activation.

    From 0.5 + noise·N(0, 1), each step adds step_size · g / (RMS(g) + 1e-5), g the
    gradient of the unit's activation. Returns the input (shape), the unit's activation
    for it, and its activation for the starting noise.
    """
    trunk = hidden_layer(net, layer)
    for p in trunk.parameters():
        p.requires_grad_(False)
    device = next(trunk.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    x = (0.5 + noise * torch.randn(1, *shape, generator=gen)).to(device).requires_grad_(True)
    with torch.no_grad():
        start = float(trunk(x)[:, unit].mean())
    for _ in range(steps):
        objective = trunk(x)[:, unit].mean()
        (grad,) = torch.autograd.grad(objective, x)
        with torch.no_grad():
            x += step_size * grad / (grad.square().mean().sqrt() + RMS_EPSILON)
    for p in trunk.parameters():
        p.requires_grad_(True)
    with torch.no_grad():
        final = float(trunk(x)[:, unit].mean())
    return x.detach().cpu().numpy()[0], final, start


@analysis(
    "activation_maximization",
    "The input pattern that maximises a hidden unit (gradient ascent from noise), with the "
    "unit's activation for it and the digit the model predicts for it.",
    MaximizationOptions,
)
def activation_maximization(ctx: StudyRuns, options: MaximizationOptions) -> Result:
    """Per run: the pattern, the unit's activation before and after, the predicted digit."""
    result = Result("activation_maximization")
    rows = []
    for run in ctx.pick(options):
        net = ctx.model(run)
        units = hidden_layer(net, options.layer)
        width = [m for m in units if isinstance(m, Dense)][-1].out_features
        if options.unit >= width:
            result.notes.append(f"{ctx.label(run)}: layer {options.layer} has {width} units")
            continue
        shape = tuple(ctx.data(run).input_shape)
        pattern, final, start = maximize_unit(
            net,
            options.layer,
            options.unit,
            shape,
            options.steps,
            options.step_size,
            options.noise,
            options.seed,
        )
        with torch.no_grad():
            device = next(net.parameters()).device
            logits = net(torch.as_tensor(pattern[None], device=device))
            probabilities = torch.softmax(logits, dim=1)[0].cpu().numpy()
        predicted = int(probabilities.argmax())
        label = ctx.label(run)
        result.items[label] = {
            "pattern": pattern.reshape(ctx.image_shape(run)),
            "activation": final,
            "start": start,
            "predicted": predicted,
        }
        rows.append(
            [
                label,
                f"{start:.4f}",
                f"{final:.4f}",
                str(predicted),
                f"{probabilities[predicted]:.3f}",
            ]
        )
    if not result.items:
        raise NotApplicable("no chosen run has that unit")
    result.tables.append(
        SimpleTable(
            f"hidden layer {options.layer}, unit {options.unit}",
            ["run", "activation (noise)", "activation (pattern)", "predicted", "probability"],
            rows,
        )
    )
    return result
