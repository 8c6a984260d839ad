"""The lean engine: a hand-written forward/backward for dense MLPs, without autograd.

For a 784-30-10 network at batch 10 the time of a step is almost all per-operation
overhead, and autograd's graph, its Parameter dispatch and the optimiser's bookkeeping are
most of it. `train_epoch_lean` does what `autograd.train_epoch_autograd` does, step for step:

- the same batches (the same `randperm`), the same learning rate from the schedule, the
  same dropout masks (the same `torch.rand` draws from the model's generator, in the same
  order), the same Keras update: plain SGD through `sgd_update` on the optimiser's own
  state, any other optimiser (or clipping) through the optimiser's own `step`;
- the gradients by hand: dlogits = (softmax − onehot)/B, dW = aᵀ·δ, db = Σ δ, δ ← δ·Wᵀ ⊙ f′
  (no gradient for the input), written into buffers that are the parameters' `.grad`, so a
  callback sees what it would see under autograd;
- the same History: batch losses (penalties included) weighted by batch size, accuracy,
  and the same periodic divergence check.

Autograd stays the reference: `tests/training/test_lean.py` checks weights and History
against it. `lean_supported` says which runs the engine takes (`training.engines.choose_engine`).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mnistlab.models.layers import Activation, BatchNorm, Dense, Dropout, dropout_mask
from mnistlab.models.mlp import MLPNet
from mnistlab.models.spec import ActivationSpec
from mnistlab.training.batches import pass_order
from mnistlab.training.optimizers import KerasOptimizer, sgd_update
from mnistlab.training.spec import TrainSpec
from mnistlab.training.state import (
    DIVERGENCE_CHECK_STEPS,
    RunState,
    Split,
    epoch_logs,
    first_bad,
)

if TYPE_CHECKING:
    from mnistlab.training.callbacks import Events
    from mnistlab.training.schedules import Schedule

LEAN_ACTIVATIONS = frozenset({"linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu"})

# --- which runs ---


def dense_mlp_unsupported(
    model: nn.Module, activations: Collection[str], batch_norm: bool = False
) -> str | None:
    """Why `model` is not a plain dense `MLPNet` with these activations, or None when it is.

    What every hand-written engine needs: Dense, activation and dropout layers only (and
    BatchNorm where `batch_norm`), every parameter trainable.
    """
    if type(model) is not MLPNet:  # a subclass may change forward
        return f"model is a {type(model).__name__}, not an MLPNet"
    if model.spec.batch_norm != "none" and not batch_norm:
        return "batch normalisation"
    allowed = (Dense, Activation, Dropout, *((BatchNorm,) if batch_norm else ()))
    for layer in model.layers:
        if not isinstance(layer, allowed):
            return f"layer {type(layer).__name__}"
        if isinstance(layer, Activation) and layer.spec.name not in activations:
            return f"activation {layer.spec.name!r}"
    if any(not p.requires_grad for p in model.parameters()):
        return "frozen parameters"
    return None


def lean_unsupported(model: nn.Module, spec: TrainSpec, train: Split | None = None) -> str | None:
    """Why the lean engine cannot train this run, or None when it can.

    Parameters
    ----------
    model : the model `fit` was given.
    spec : the training spec.
    train : the training split, when known (its labels must be int64 class ids).

    Returns
    -------
    str naming the first unsupported feature, or None.
    """
    problem = dense_mlp_unsupported(model, LEAN_ACTIVATIONS)
    if problem is not None:
        return problem
    if not spec.is_classification:
        return f"loss {spec.loss!r} (cross-entropy only)"
    if spec.augment is not None or spec.steps_per_epoch is not None:
        return "augmentation or steps_per_epoch"
    if spec.clip_probabilities and model.spec.output == "softmax":
        return "clip_probabilities (Keras 2.2.4 clipping)"
    if train is not None:
        if train.y.dtype != torch.int64 or train.y.ndim != 1:
            return "labels that are not int64 class ids of shape (N,)"
        if train.x.ndim != 2:
            return f"inputs of shape {tuple(train.x.shape)}, not (N, D)"
    return None


def lean_supported(model: nn.Module, spec: TrainSpec, train: Split | None = None) -> bool:
    """Whether the lean step can train this run (`choose_engine` decides whether it does).

    Supported: an `MLPNet` without batch normalisation, hidden activations linear, sigmoid,
    tanh, relu, leaky_relu or elu, any dropout, softmax or linear output, cross-entropy
    from the logits (mean over the batch), L1/L2 penalties, every Keras optimiser and
    clipping option, any schedule.
    """
    return lean_unsupported(model, spec, train) is None


# --- the network, unrolled ---


@dataclass
class _Layer:
    """One Dense layer with what follows it, on plain tensors sharing the parameters' storage."""

    kernel: Tensor  # (in, out)
    bias: Tensor  # (out,)
    grad_kernel: Tensor  # (in, out), also the Parameter's .grad
    grad_bias: Tensor  # (out,)
    activation: ActivationSpec | None  # None: the output layer (logits)
    dropout: Dropout | None


class _LeanNet:
    """An `MLPNet` and its Keras optimiser as one no-autograd training step."""

    def __init__(self, model: MLPNet, optimizer: KerasOptimizer, batch: int) -> None:
        self.input_dropout: Dropout | None = None
        self.layers: list[_Layer] = []
        for layer in model.layers:
            if isinstance(layer, Dense):
                grads = []
                for p in (layer.kernel, layer.bias):
                    p.grad = torch.zeros_like(p, memory_format=torch.contiguous_format)
                    grads.append(p.grad)
                k, b = layer.kernel.detach(), layer.bias.detach()
                self.layers.append(_Layer(k, b, grads[0], grads[1], None, None))
            elif isinstance(layer, Activation):
                self.layers[-1].activation = layer.spec
            elif isinstance(layer, Dropout) and layer.rate > 0:
                if self.layers:
                    self.layers[-1].dropout = layer
                else:
                    self.input_dropout = layer
        self.optimizer = optimizer
        self.groups = optimizer.param_groups  # KerasOptimizer builds one group
        group = self.groups[0]
        # plain SGD without clipping updates right here, on the fewest kernels; any other
        # Keras optimiser reads the gradients from .grad in its own `step`
        self.sgd = optimizer.rule.name == "sgd" and not any(optimizer.clip.values())
        self.updates: list[tuple[Tensor, Tensor, Tensor | None]] = []
        if self.sgd:
            self.momentum, self.nesterov = group["momentum"], group["nesterov"]
            for p in group["params"]:
                state = optimizer.state_of(p)
                self.updates.append((p.detach(), p.grad, state.get("momentum")))
        # (weight, its gradient, regulariser) in MLPNet.penalty's order
        self.penalties = [
            (getattr(model.layers[i], name).detach(), getattr(model.layers[i], name).grad, reg)
            for i, name, reg in model.regularized
        ]
        self.minus_one = torch.full((batch, 1), -1.0, device=self.layers[0].kernel.device)

    def step(self, x: Tensor, y: Tensor, lr: float, predicted: Tensor) -> Tensor:
        """One training step on the batch (x, y); writes the arg-max classes, returns the loss.

        Parameters
        ----------
        x : Tensor of shape (B, D); y : int64 Tensor of shape (B,).
        lr : the learning rate of this step.
        predicted : int64 Tensor of shape (B,) receiving the logits' arg-max.

        Returns
        -------
        Tensor of shape (): the mean cross-entropy plus the penalties, before the update.
        """
        layers = self.layers
        h = x if self.input_dropout is None else x * _mask(self.input_dropout, x)
        inputs, saved = [], []  # each Dense layer's input; (z, a, mask) per layer
        for layer in layers:
            inputs.append(h)
            z = torch.addmm(layer.bias, h, layer.kernel)
            a = z if layer.activation is None else _forward(layer.activation, z)
            mask = None if layer.dropout is None else _mask(layer.dropout, a)
            h = a if mask is None else a * mask
            saved.append((z, a, mask))
        log_probs = torch.log_softmax(h, dim=1)
        loss = F.nll_loss(log_probs, y)
        if self.penalties:
            loss = loss + self._penalty()
        torch.argmax(h, dim=1, out=predicted)
        # dlogits = (softmax − onehot) / B, Keras's mean over the batch
        delta = log_probs.exp_().scatter_add_(1, y.unsqueeze(1), self.minus_one)
        delta.mul_(1.0 / len(y))
        for k in range(len(layers) - 1, -1, -1):
            layer = layers[k]
            mask = saved[k][2]
            if mask is not None:
                delta.mul_(mask)
            if layer.activation is not None:
                _backward(layer.activation, delta, saved[k][0], saved[k][1])
            torch.mm(inputs[k].t(), delta, out=layer.grad_kernel)
            torch.sum(delta, dim=0, out=layer.grad_bias)
            if k > 0:  # no gradient for the input
                delta = torch.mm(delta, layer.kernel.t())
        for w, g, reg in self.penalties:
            if reg.l1 > 0:
                g.add_(w.sign(), alpha=reg.l1)
            if reg.l2 > 0:
                g.add_(w, alpha=2.0 * reg.l2)
        if self.sgd:
            for w, g, velocity in self.updates:
                sgd_update(w, g, velocity, lr=lr, momentum=self.momentum, nesterov=self.nesterov)
            for group in self.groups:
                group["step"] += 1  # as KerasOptimizer.step counts
        else:
            self.optimizer.step()
        return loss

    def _penalty(self) -> Tensor:
        """`MLPNet.penalty`, term for term, on the plain tensors."""
        total: Tensor | None = None
        for w, _, reg in self.penalties:
            if reg.l1 > 0:
                term = reg.l1 * w.abs().sum()
                total = term if total is None else total + term
            if reg.l2 > 0:
                term = reg.l2 * w.square().sum()
                total = term if total is None else total + term
        assert total is not None  # only active regularisers are listed
        return total


def _mask(dropout: Dropout, x: Tensor) -> Tensor:
    """`Dropout.forward`'s mask: the same draw from the same generator."""
    return dropout_mask(x, dropout.rate, dropout.generator)


def _forward(spec: ActivationSpec, z: Tensor) -> Tensor:
    """The activation of z (a new tensor; "linear" returns z itself)."""
    name = spec.name
    if name == "sigmoid":
        return torch.sigmoid(z)
    if name == "tanh":
        return torch.tanh(z)
    if name == "relu":
        return torch.relu(z)
    if name == "leaky_relu":
        return F.leaky_relu(z, spec.negative_slope)
    if name == "elu":
        return F.elu(z, spec.alpha)
    return z


def _backward(spec: ActivationSpec, delta: Tensor, z: Tensor, a: Tensor) -> None:
    """delta ⊙= f′(z) in place, with autograd's conventions at 0 and for NaN."""
    name = spec.name
    if name == "sigmoid":  # δ·a·(1 − a) = δa − δa·a
        delta.mul_(a).addcmul_(delta, a, value=-1.0)
    elif name == "tanh":  # δ·(1 − a²)
        delta.addcmul_(delta, a * a, value=-1.0)
    elif name == "relu":  # threshold_backward: zero where z <= 0
        delta.masked_fill_(z <= 0, 0.0)
    elif name == "leaky_relu":
        delta.mul_(torch.where(z > 0, 1.0, spec.negative_slope))
    elif name == "elu":  # elu_backward on the input: α·exp(z) where z <= 0
        delta.mul_(torch.where(z <= 0, z.exp().mul_(spec.alpha), 1.0))


# --- the epoch ---


def train_epoch_lean(
    run: RunState, schedule: Schedule, train: Split, events: Events
) -> tuple[dict[str, float], int | None]:
    """`train_epoch_autograd` with the lean step: same batches, updates, logs and divergence.

    Parameters
    ----------
    run : the run's state; `run.model` must pass `lean_supported`.
    schedule : gives the learning rate of every step.
    train : `x` float32 of shape (N, D), `y` int64 of shape (N,).
    events : `on_step_end` is called after every update, as in the autograd loop.

    Returns
    -------
    Keras's epoch logs (`loss`, `accuracy`) and the index of the first bad batch, or None.
    """
    model, optimizer, spec = run.model, run.optimizer, run.spec
    assert isinstance(model, MLPNet)
    x, y = train.x, train.y
    n, batch = len(x), spec.batch_size
    steps = math.ceil(n / batch)
    order = pass_order(n, run.shuffle_generator).to(x.device) if spec.shuffle else None
    losses = torch.empty(steps, device=x.device)
    predicted = torch.empty(n, dtype=torch.int64, device=x.device).split(batch)
    model.train()
    net = _LeanNet(model, optimizer, batch)
    groups = optimizer.param_groups
    rows = order.split(batch) if order is not None else None
    xs, ys = (x.split(batch), y.split(batch)) if rows is None else ((), ())
    checked = 0
    for i in range(steps):
        lr = schedule.learning_rate(run.step)
        for group in groups:
            group["lr"] = lr
        if rows is None:
            xb, yb = xs[i], ys[i]
        else:
            xb, yb = x.index_select(0, rows[i]), y.index_select(0, rows[i])
        losses[i] = net.step(xb, yb, lr, predicted[i])
        run.step += 1
        events.on_step_end(run)
        if i + 1 - checked == DIVERGENCE_CHECK_STEPS:
            bad = first_bad(losses[checked : i + 1], spec.divergence_threshold)
            if bad is not None:
                correct = _correct(predicted, y, order, i + 1)
                return epoch_logs(losses, correct, i + 1, batch, n, spec), checked + bad
            checked = i + 1
    bad = first_bad(losses[checked:steps], spec.divergence_threshold)
    logs = epoch_logs(losses, _correct(predicted, y, order, steps), steps, batch, n, spec)
    return logs, None if bad is None else checked + bad


def _correct(predicted: tuple[Tensor, ...], y: Tensor, order: Tensor | None, done: int) -> Tensor:
    """How many of the first `done` batches' samples were classified right, as a tensor."""
    guesses = torch.cat(predicted[:done])
    seen = len(guesses)
    labels = y[:seen] if order is None else y[order[:seen]]
    return (guesses == labels).sum()
