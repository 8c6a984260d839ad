"""Losses and metrics with Keras semantics, always computed from the output layer's logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mnistlab.training.spec import TrainSpec

KERAS_2_2_4_EPSILON = 1e-7  # Keras 2.2.4 clipped probabilities to [eps, 1 - eps]


def batch_loss(
    logits: Tensor, y: Tensor, spec: TrainSpec, softmax_output: bool, reduction: str = "mean"
) -> Tensor:
    """Loss of one batch, before penalties.

    Parameters
    ----------
    logits : Tensor of shape (B, K)
        The output layer's pre-activation values.
    y : Tensor of shape (B,) int64 class ids, or (B, K) float targets for regression.
    spec : the training spec (loss name, Keras 2.2.4 clipping).
    softmax_output : whether the model's output activation is softmax.
    reduction : "mean" (a scalar) or "sum".

    Returns
    -------
    Tensor, 0-dim.
    """
    if spec.is_classification:
        if spec.clip_probabilities and softmax_output:
            probs = logits.softmax(dim=1).clamp(KERAS_2_2_4_EPSILON, 1 - KERAS_2_2_4_EPSILON)
            return F.nll_loss(probs.log(), y, reduction=reduction)
        # tf.keras recognises a softmax output and uses its logits: no clipping
        return F.cross_entropy(logits, y, reduction=reduction)
    outputs = logits
    targets = _regression_targets(y, outputs)
    if spec.loss == "mse":
        per_sample = (outputs - targets).square().mean(dim=1)
    else:
        per_sample = (outputs - targets).abs().mean(dim=1)
    return per_sample.mean() if reduction == "mean" else per_sample.sum()


def correct_count(logits: Tensor, y: Tensor) -> Tensor:
    """Number of samples whose arg-max matches the class id (Keras 'accuracy'), as a tensor."""
    return (logits.argmax(dim=1) == y).sum()


def _regression_targets(y: Tensor, outputs: Tensor) -> Tensor:
    if y.dtype == torch.int64:  # MSE on class ids means MSE on their one-hot codes, as Keras
        return F.one_hot(y, outputs.shape[1]).to(outputs.dtype)
    return y.reshape(outputs.shape).to(outputs.dtype)


def softmax_output(model: torch.nn.Module) -> bool:
    """Whether the model ends in a softmax (an `MLPNet` says so; other modules are assumed to)."""
    return getattr(getattr(model, "spec", None), "output", "softmax") == "softmax"
