"""The from-scratch NumPy MLP: explicit forward and backward passes, mini-batch gradient descent.

A teaching engine, written so each line of the backward pass is one line of the chain rule.
Layers use the textbook orientation: a kernel `W` has shape (out, in) and a layer computes
`z = x @ W.T + b` for rows `x` (Keras stores the transpose, (in, out)). Hidden units are
sigmoid, ReLU or tanh; the output is softmax or linear; the loss is cross-entropy or a
squared error in one of three conventions (`mse` as Keras: the mean over outputs; `sse`:
Σ(ŷ−y)²; `half_sse`: ½·Σ(ŷ−y)², the textbook one); the batch's per-sample losses are
averaged (`reduction="mean"`, Keras) or summed (`"sum"`, the worked example's convention).

Training is Keras's SGD rule, v = μ·v − lr·g; w += v, on batches that are slices of a fresh
seeded permutation every epoch, the last partial batch included. (The coursework's loop
strode 51 rows per batch of 50 and never shuffled: this engine does neither.)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from mnistlab.models.classic import NumpySpec
from mnistlab.models.initializers import initialize

HiddenActivation = Literal["sigmoid", "relu", "tanh"]
OutputActivation = Literal["softmax", "linear"]
NumpyLoss = Literal["cross_entropy", "mse", "sse", "half_sse"]
Reduction = Literal["mean", "sum"]

# d loss / d output for the squared errors, as a factor of (ŷ − y): Σ(ŷ−y)² -> 2, ½Σ -> 1
_SQUARED_FACTOR = {"sse": 2.0, "half_sse": 1.0}


@dataclass
class Forward:
    """What the forward pass keeps for the backward pass.

    `pre[i]` is layer i's pre-activation z (B, out_i); `post[i]` its activation a; `post[-1]`
    is the network's output (softmax probabilities or the linear values).
    """

    inputs: np.ndarray
    pre: list[np.ndarray]
    post: list[np.ndarray]

    @property
    def output(self) -> np.ndarray:
        """The network's output, (B, K)."""
        return self.post[-1]


def _activate(name: str, z: np.ndarray) -> np.ndarray:
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh(z)
    if name == "softmax":
        shifted = np.exp(z - z.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
    return z  # linear


def _derivative(name: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """da/dz elementwise, from the pre-activation z and the activation a."""
    if name == "sigmoid":
        return a * (1.0 - a)
    if name == "relu":
        return (z > 0).astype(z.dtype)
    return 1.0 - a * a  # tanh


class NumpyMLP:
    """A dense network on NumPy arrays with hand-written backpropagation.

    Parameters
    ----------
    weights : sequence of arrays (out_i, in_i), input layer first.
    biases : sequence of arrays (out_i,).
    activation : hidden units' activation.
    output : "softmax" or "linear".
    loss : "cross_entropy" (from the output's pre-activation), "mse", "sse" or "half_sse".
    reduction : "mean" or "sum" of the per-sample losses over a batch.

    Attributes
    ----------
    coefs_, intercepts_ : the kernels (out, in) and biases, updated by `fit` and `step`.
    loss_curve_, accuracy_curve_ : per epoch, the batch-size-weighted mean of the batch
        losses (and accuracies) during the epoch, as Keras's History.
    """

    def __init__(
        self,
        weights: Sequence[np.ndarray],
        biases: Sequence[np.ndarray],
        activation: HiddenActivation = "sigmoid",
        output: OutputActivation = "softmax",
        loss: NumpyLoss = "cross_entropy",
        reduction: Reduction = "mean",
    ) -> None:
        if len(weights) != len(biases) or not weights:
            raise ValueError("need one bias per kernel and at least one layer")
        self.coefs_ = [np.array(w) for w in weights]
        self.intercepts_ = [np.array(b) for b in biases]
        self.activation, self.output, self.loss, self.reduction = (
            activation,
            output,
            loss,
            reduction,
        )
        self._velocity = [np.zeros_like(p) for p in self.coefs_ + self.intercepts_]
        self.loss_curve_: list[float] = []
        self.accuracy_curve_: list[float] = []

    # --- forward ---

    def forward(self, x: np.ndarray) -> Forward:
        """Every layer's pre-activation and activation for rows `x` (B, in)."""
        x = np.asarray(x, dtype=self.coefs_[0].dtype)
        pre, post, a = [], [], x
        last = len(self.coefs_) - 1
        for i, (w, b) in enumerate(zip(self.coefs_, self.intercepts_, strict=True)):
            z = a @ w.T + b  # (B, out_i)
            a = _activate(self.output if i == last else self.activation, z)
            pre.append(z)
            post.append(a)
        return Forward(x, pre, post)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """The output layer's values (B, K): probabilities for a softmax output."""
        return self.forward(x).output

    @property
    def classifies(self) -> bool:
        """A softmax output or a cross-entropy loss (on linear logits) makes a classifier."""
        return self.output == "softmax" or self.loss == "cross_entropy"

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class ids (B,) for a classifier; the output values (B, K) for a regressor."""
        out = self.predict_proba(x)
        return out.argmax(axis=1) if self.classifies else out

    # --- loss and backward ---

    def _targets(self, y: np.ndarray, k: int) -> np.ndarray:
        """Class ids become one-hot rows; float targets are shaped (B, K)."""
        y = np.asarray(y)
        dtype = self.coefs_[0].dtype
        if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
            return np.eye(k, dtype=dtype)[y]
        return y.reshape(len(y), k).astype(dtype)

    def _loss_and_delta(self, fwd: Forward, t: np.ndarray) -> tuple[float, np.ndarray]:
        """The batch loss and d loss / d z of the output layer, (B, K)."""
        out, z = fwd.output, fwd.pre[-1]
        n, k = out.shape
        scale = 1.0 / n if self.reduction == "mean" else 1.0
        if self.loss == "cross_entropy":
            # from the logits, as Keras: log-softmax of z, never log of a rounded probability
            shifted = z - z.max(axis=1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            probs = np.exp(log_p)
            return float(-(t * log_p).sum() * scale), (probs - t) * scale
        err = out - t
        if self.loss == "mse":
            total, d_out = (err**2).mean(axis=1).sum(), 2.0 * err / k
        else:
            factor = _SQUARED_FACTOR[self.loss]
            total, d_out = (err**2).sum() * factor / 2.0, factor * err
        d_out = d_out * scale
        if self.output == "softmax":  # Jacobian of softmax: p ⊙ (g − Σ p·g)
            d_z = out * (d_out - (out * d_out).sum(axis=1, keepdims=True))
        else:
            d_z = d_out
        return float(total * scale), d_z

    def gradients(
        self, x: np.ndarray, y: np.ndarray
    ) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
        """The batch loss and its gradient with respect to every kernel and bias.

        Parameters
        ----------
        x : array (B, in).
        y : class ids (B,) or float targets (B, K).

        Returns
        -------
        loss : float
        d_weights : list of arrays shaped like `coefs_` (out, in)
        d_biases : list of arrays shaped like `intercepts_`
        """
        loss, _, d_w, d_b = self._backward(x, y)
        return loss, d_w, d_b

    def _backward(
        self, x: np.ndarray, y: np.ndarray
    ) -> tuple[float, Forward, list[np.ndarray], list[np.ndarray]]:
        """Forward, then backpropagation: loss, the forward pass and the gradients."""
        fwd = self.forward(x)
        loss, delta = self._loss_and_delta(fwd, self._targets(y, fwd.output.shape[1]))
        d_w: list[np.ndarray] = []
        d_b: list[np.ndarray] = []
        for i in range(len(self.coefs_) - 1, -1, -1):
            below = fwd.post[i - 1] if i > 0 else fwd.inputs  # (B, in_i)
            d_w.append(delta.T @ below)  # (out_i, in_i): Σ over the batch of δ·aᵀ
            d_b.append(delta.sum(axis=0))  # (out_i,)
            if i > 0:  # δ of the layer below: (δ W) ⊙ σ'(z)
                delta = (delta @ self.coefs_[i]) * _derivative(
                    self.activation, fwd.pre[i - 1], fwd.post[i - 1]
                )
        return loss, fwd, d_w[::-1], d_b[::-1]

    # --- training ---

    def step(
        self, x: np.ndarray, y: np.ndarray, learning_rate: float, momentum: float = 0.0
    ) -> float:
        """One gradient-descent step on a batch (Keras SGD: v = μ·v − lr·g; w += v).

        Returns
        -------
        float : the batch loss before the step.
        """
        return self._step(x, y, learning_rate, momentum)[0]

    def _step(
        self, x: np.ndarray, y: np.ndarray, learning_rate: float, momentum: float
    ) -> tuple[float, Forward]:
        loss, fwd, d_w, d_b = self._backward(x, y)
        params = self.coefs_ + self.intercepts_
        for param, grad, velocity in zip(params, d_w + d_b, self._velocity, strict=True):
            velocity *= momentum
            velocity -= learning_rate * grad
            param += velocity
        return loss, fwd

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        epochs: int = 1,
        batch_size: int = 32,
        learning_rate: float = 0.01,
        momentum: float = 0.0,
        shuffle: bool = True,
        seed: int | np.random.Generator = 0,
    ) -> NumpyMLP:
        """Mini-batch gradient descent over `epochs` passes of (x, y); returns self.

        Batches are consecutive slices of a permutation drawn afresh each epoch from
        `np.random.default_rng(seed)` (pass a Generator to continue its stream across calls;
        in order when `shuffle` is False); the last batch may be smaller. `loss_curve_` and
        `accuracy_curve_` get one value per epoch.
        """
        rng = np.random.default_rng(seed)
        n = len(x)
        for _ in range(epochs):
            order = rng.permutation(n) if shuffle else np.arange(n)
            total = correct = 0.0
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                batch_loss, fwd = self._step(x[idx], y[idx], learning_rate, momentum)
                total += batch_loss * (len(idx) if self.reduction == "mean" else 1.0)
                if self.classifies:  # on the batch's forward pass, before its update (Keras)
                    correct += float((fwd.output.argmax(axis=1) == y[idx]).sum())
            self.loss_curve_.append(total / n)
            if self.classifies:
                self.accuracy_curve_.append(correct / n)
        return self


def init_numpy_mlp(
    spec: NumpySpec,
    n_inputs: int,
    n_outputs: int,
    generator: torch.Generator,
    loss: NumpyLoss = "cross_entropy",
    reduction: Reduction = "mean",
) -> NumpyMLP:
    """A `NumpyMLP` with the spec's layers, initialised by Keras's initialisers.

    Kernels are drawn as Keras's (in, out) arrays from `generator` (fans as Keras counts
    them) and transposed to the engine's (out, in).
    """
    sizes = (n_inputs, *spec.hidden, n_outputs)
    dtype = np.float64 if spec.dtype == "float64" else np.float32
    weights, biases = [], []
    for fan_in, fan_out in itertools.pairwise(sizes):
        kernel = torch.empty(fan_in, fan_out, dtype=torch.float64)
        initialize(kernel, spec.kernel_initializer, fan_in, fan_out, generator)
        bias = torch.empty(fan_out, dtype=torch.float64)
        initialize(bias, spec.bias_initializer, fan_out, fan_out, generator)
        weights.append(kernel.numpy().T.astype(dtype))
        biases.append(bias.numpy().astype(dtype))
    return NumpyMLP(weights, biases, spec.activation, spec.output, loss, reduction)
