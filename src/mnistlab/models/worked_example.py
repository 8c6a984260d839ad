"""The backpropagation worked example (reference study 8): one step of a 2-4-1 network by hand.

A 2-4-1 network, ReLU hidden units and a linear output, takes one plain gradient-descent
step on a two-sample mini-batch, the gradient summed over the samples. The NumPy engine
computes it; PyTorch autograd computes it again as a check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from mnistlab.errors import SpecError
from mnistlab.models.numpy_mlp import NumpyMLP

SSEConvention = Literal["half", "sum"]

INPUTS = np.array([[-1.0, 1.0], [2.0, -1.0]])  # x1, x2
TARGETS = np.array([[1.0], [-1.0]])
W1 = np.array([[1.0, 2.0], [0.0, -1.0], [-1.0, -3.0], [-2.0, 2.0]])  # (4, 2): (out, in)
B1 = np.array([-2.0, 2.0, 0.0, -2.0])
W2 = np.array([[1.0, 0.0, -1.0, 2.0]])  # (1, 4)
B2 = np.array([-2.0])
PARAMETER_NAMES = ("W1", "b1", "W2", "b2")
_LOSS = {"half": "half_sse", "sum": "sse"}
_FORMULA = {"half": "½·Σ(ŷ−y)²", "sum": "Σ(ŷ−y)²"}


@dataclass(frozen=True)
class WorkedExample:
    """The forward table, the loss, the gradients and the updated parameters of one step.

    `z1`, `a1` are (2, 4): one row per sample; `outputs` (2,) is ŷ (= z2, linear output).
    `gradients` and `updated` map W1, b1, W2, b2 to arrays; `autograd_max_error` is the
    largest absolute difference between the engine's updated parameters and autograd's.
    """

    eta: float
    sse: SSEConvention
    formula: str
    inputs: np.ndarray
    targets: np.ndarray
    z1: np.ndarray
    a1: np.ndarray
    outputs: np.ndarray
    loss: float
    gradients: dict[str, np.ndarray]
    updated: dict[str, np.ndarray]
    autograd_max_error: float


def backprop_example(eta: float, sse: SSEConvention = "half") -> WorkedExample:
    """Run the worked example's one step with learning rate `eta`.

    Parameters
    ----------
    eta : float
        The learning rate, > 0.
    sse : "half" or "sum"
        The loss: ½·Σ(ŷ−y)² (the textbook convention, default) or Σ(ŷ−y)², summed over the
        two samples.

    Returns
    -------
    WorkedExample
    """
    if not eta > 0:
        raise SpecError(f"eta: must be > 0, got {eta}")
    if sse not in _LOSS:
        raise SpecError(f"sse: expected one of half, sum, got {sse!r}")
    net = NumpyMLP([W1, W2], [B1, B2], "relu", "linear", _LOSS[sse], "sum")  # type: ignore[arg-type]
    fwd = net.forward(INPUTS)
    loss, d_w, d_b = net.gradients(INPUTS, TARGETS)
    net.step(INPUTS, TARGETS, learning_rate=eta)
    updated = dict(zip(PARAMETER_NAMES, _params(net), strict=True))
    reference = _autograd_step(eta, sse)
    error = max(float(np.abs(updated[k] - reference[k]).max()) for k in PARAMETER_NAMES)
    return WorkedExample(
        eta=eta,
        sse=sse,
        formula=_FORMULA[sse],
        inputs=INPUTS,
        targets=TARGETS[:, 0],
        z1=fwd.pre[0],
        a1=fwd.post[0],
        outputs=fwd.output[:, 0],
        loss=loss,
        gradients=dict(zip(PARAMETER_NAMES, (d_w[0], d_b[0], d_w[1], d_b[1]), strict=True)),
        updated=updated,
        autograd_max_error=error,
    )


def _params(net: NumpyMLP) -> tuple[np.ndarray, ...]:
    return net.coefs_[0], net.intercepts_[0], net.coefs_[1], net.intercepts_[1]


def _autograd_step(eta: float, sse: SSEConvention) -> dict[str, np.ndarray]:
    """The same step computed by PyTorch autograd, in float64."""
    params = [torch.tensor(p, requires_grad=True) for p in (W1, B1, W2, B2)]
    w1, b1, w2, b2 = params
    hidden = torch.relu(torch.tensor(INPUTS) @ w1.T + b1)
    squared = (hidden @ w2.T + b2 - torch.tensor(TARGETS)).square().sum()
    (0.5 * squared if sse == "half" else squared).backward()
    return {
        name: (p - eta * p.grad).detach().numpy()
        for name, p in zip(PARAMETER_NAMES, params, strict=True)
    }
