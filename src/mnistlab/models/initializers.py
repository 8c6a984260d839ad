"""Keras's weight initialisers, filled in place from an explicit torch generator.

The variance-scaling family follows Keras: glorot_* average the fans, he_* and lecun_*
use fan_in; the *_normal variants draw a normal truncated at 2 standard deviations whose
std is divided by 0.87962566 (the std of a unit normal cut at ±2), so the truncated values
have the intended std. PyTorch's own defaults differ (kaiming_uniform kernels, uniform
biases); they are never used here.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mnistlab.models.spec import InitializerSpec

TRUNCATED_STD = 0.87962566103423978
"""Std of a unit normal truncated to [-2, 2]: Keras divides by it so the cut keeps the std."""

# name -> (scale, fan mode, distribution) of Keras's VarianceScaling
_VARIANCE_SCALING: dict[str, tuple[float, str, str]] = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
}


def variance_scaling_bound(name: str, fan_in: int, fan_out: int) -> float:
    """The uniform limit, or the pre-truncation std, of a variance-scaling initialiser.

    Parameters
    ----------
    name : one of glorot_uniform, glorot_normal, he_uniform, he_normal, lecun_uniform,
        lecun_normal.
    fan_in, fan_out : the fans (a Dense kernel (in, out): fan_in = in, fan_out = out).

    Returns
    -------
    float
        `l` of U(-l, l) for *_uniform; the std passed to the truncated normal (cut at
        ±2 of it) for *_normal.
    """
    scale, mode, distribution = _VARIANCE_SCALING[name]
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    variance = scale / max(1.0, fan)
    if distribution == "uniform":
        return math.sqrt(3.0 * variance)
    return math.sqrt(variance) / TRUNCATED_STD


@torch.no_grad()
def initialize(
    tensor: Tensor,
    spec: InitializerSpec,
    fan_in: int,
    fan_out: int,
    generator: torch.Generator,
) -> None:
    """Fill `tensor` in place as Keras's initialiser `spec` would, drawing only from `generator`.

    Parameters
    ----------
    tensor : Tensor of any shape, e.g. a Dense kernel (in, out) or bias (out,).
    spec : the initialiser (see `mnistlab.models.spec.InitializerSpec`).
    fan_in, fan_out : Keras's fans: (in, out) for a kernel (in, out); Keras uses
        (out, out) for a bias of shape (out,).
    generator : the only source of randomness; constant initialisers draw nothing.
    """
    name = spec.name
    if name in _VARIANCE_SCALING:
        bound = variance_scaling_bound(name, fan_in, fan_out)
        if _VARIANCE_SCALING[name][2] == "uniform":
            tensor.uniform_(-bound, bound, generator=generator)
        else:
            _truncated_normal(tensor, 0.0, bound, generator)
    elif name == "random_normal":
        tensor.normal_(spec.mean, spec.stddev, generator=generator)
    elif name == "random_uniform":
        tensor.uniform_(spec.minval, spec.maxval, generator=generator)
    elif name == "truncated_normal":
        _truncated_normal(tensor, spec.mean, spec.stddev, generator)
    elif name == "zeros":
        tensor.zero_()
    elif name == "ones":
        tensor.fill_(1.0)
    elif name == "constant":
        tensor.fill_(spec.value)
    else:  # the spec union and this function must list the same names
        raise ValueError(f"no initializer named {name!r}")


def _truncated_normal(tensor: Tensor, mean: float, std: float, generator: torch.Generator) -> None:
    """N(mean, std²) restricted to mean ± 2·std (inverse-CDF sampling, like a redraw)."""
    if std == 0:
        tensor.fill_(mean)
        return
    torch.nn.init.trunc_normal_(
        tensor, mean=mean, std=std, a=mean - 2 * std, b=mean + 2 * std, generator=generator
    )
