"""How fast each layer learns: gradient norms and relative weight changes per epoch."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from mnistlab.analysis.context import StudyRuns
from mnistlab.analysis.contract import NotApplicable, Options, Result, SimpleTable
from mnistlab.analysis.registry import analysis
from mnistlab.analysis.weights import dense_names

SIGMOID_SLOPE_BOUND = 0.25  # max of σ'(z)


class SpeedOptions(Options):
    """Kernels only (default), or biases too."""

    biases: bool = Field(default=False, description="also draw each layer's bias")


def layer_speed(arrays: dict[str, np.ndarray], biases: bool = False) -> dict[str, object]:
    """Per-layer learning speed from a run's `learning_speed` capture.

    Returns
    -------
    dict with `layers` (display names), `grad_norm` and `relative_change` (epochs, layers)
    and `original` (epochs,): the coursework's single number.
    """
    names = [str(n) for n in arrays["speed/names"]]
    kernels = [i for i, n in enumerate(names) if n.endswith(".kernel")]
    display = dense_names(len(kernels))
    keep, labels = list(kernels), list(display)
    if biases:
        for i, n in enumerate(names):
            if n.endswith(".bias"):
                keep.append(i)
                labels.append(display[kernels.index(names.index(n[:-5] + ".kernel"))] + " bias")
    return {
        "layers": labels,
        "grad_norm": arrays["speed/grad_norm"][:, keep],
        "relative_change": arrays["speed/relative_change"][:, keep],
        "original": arrays["speed/original"],
    }


@analysis(
    "learning_speed",
    "Per layer and epoch: the mean gradient norm and the relative weight change "
    "mean|ΔW|/mean|W|; shrinking values towards the input are the vanishing gradient.",
    SpeedOptions,
    captures=("learning_speed",),
)
def learning_speed(ctx: StudyRuns, options: SpeedOptions) -> Result:
    """Each chosen run's per-layer speed, and the coursework's single number per epoch."""
    result = Result("learning_speed")
    rows = []
    for run in ctx.pick(options):
        arrays = ctx.captures(run)
        if "speed/names" not in arrays:
            result.notes.append(f"{ctx.label(run)}: not recorded (run it again with --fresh)")
            continue
        entry = layer_speed(arrays, options.biases)
        result.items[ctx.label(run)] = entry
        first = entry["grad_norm"][-1]  # type: ignore[index]
        rows.append([ctx.label(run), *(f"{v:.3g}" for v in first)])
    if not result.items:
        raise NotApplicable("no run recorded its learning speed")
    width = max(len(e["layers"]) for e in result.items.values())  # type: ignore[arg-type]
    result.tables.append(
        SimpleTable(
            "gradient norm per layer, last epoch",
            ["run", *(f"layer {i + 1}" for i in range(width))],
            [r + [""] * (width + 1 - len(r)) for r in rows],
        )
    )
    result.notes.append(
        "the single learning-speed number is Σ|(W_before − W_after)/W_after| over every "
        "kernel and bias, divided by the parameter count, per epoch"
    )
    return result


@analysis(
    "chain_product",
    "For chains of one-unit hidden layers: the chain-rule factor σ'(z1)·w2·σ'(z2)·…·σ'(zk) "
    "per epoch, and the product of the σ' terms against its sigmoid bound (1/4)^k.",
    captures=("chain_product",),
)
def chain_product(ctx: StudyRuns, options: Options) -> Result:
    """Per run with one-unit hidden layers: the mean |chain factor| per epoch."""
    result = Result("chain_product")
    rows = []
    for run in ctx.pick(options):
        arrays = ctx.captures(run)
        product = arrays.get("chain/product")
        if product is None:
            result.notes.append(f"{ctx.label(run)}: not recorded (run it again with --fresh)")
            continue
        if product.size == 0:
            continue
        depth = len(ctx.config(run).model.hidden)
        bound = SIGMOID_SLOPE_BOUND**depth
        result.items[ctx.label(run)] = {
            "product": product,
            "derivative": arrays["chain/derivative"],
            "bound": bound,
        }
        derivative = arrays["chain/derivative"]
        rows.append(
            [
                ctx.label(run),
                *(f"{v:.3g}" for v in (product[0], product[-1], derivative[-1], bound)),
            ]
        )
    if not result.items:
        raise NotApplicable(
            "no run recorded a chain of one-unit hidden layers"
            + "".join(f"; {n}" for n in result.notes)
        )
    result.tables.append(
        SimpleTable(
            "chain-rule factor (mean absolute value over 1,000 training images)",
            [
                "run",
                "product, first epoch",
                "product, last epoch",
                "Π σ', last epoch",
                "(1/4)^k: bound of Π σ' for sigmoid",
            ],
            rows,
        )
    )
    return result
