"""`build_model`: any torch model kind from its spec, one builder per kind."""

from __future__ import annotations

import math

import torch
from torch import nn

from mnistlab.models.cnn import build_cnn
from mnistlab.models.mlp import build_mlp
from mnistlab.models.spec import ModelSpec


def build_model(
    spec: ModelSpec,
    input_shape: tuple[int, ...],
    outputs: int | None,
    generator: torch.Generator,
) -> nn.Module:
    """Create and initialise the network `spec` describes, picking the builder by `kind`.

    Parameters
    ----------
    spec : a model spec of a torch kind.
    input_shape : the shape of one example, e.g. (784,) flattened or (28, 28).
    outputs : output units (the data's class count); None falls back to the spec's.
    generator : a CPU torch.Generator; every weight is drawn from it in layer order.

    Returns
    -------
    nn.Module mapping a batch of examples to logits (B, outputs).
    """
    if spec.kind == "mlp":
        return build_mlp(spec, math.prod(input_shape), outputs, generator)
    if spec.kind == "cnn":
        return build_cnn(spec, input_shape, outputs, generator)
    raise ValueError(f"model kind {spec.kind!r} is not a torch network")
