"""Training-time probes: callbacks that record compact arrays for analyses during a run.

A probe is named by a capture (`CAPTURES`); `make_probes` builds the ones a run needs and
`probe_arrays` gathers what they recorded as flat ``name -> ndarray`` (saved as one .npz
artifact per run). Arrays are small: per-epoch numbers per layer, and the weights at
initialisation.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from mnistlab.training.callbacks import Callback

if TYPE_CHECKING:
    from mnistlab.training.state import RunState

CAPTURES: tuple[str, ...] = ("initial_weights", "learning_speed", "chain_product")
"""What a run can record while it trains, for analyses that cannot work from final weights."""

GRADIENT_EVERY_N_STEPS = 1  # gradient norms are averaged over every step of an epoch
CHAIN_SAMPLE = 1000  # training images the chain-rule product is averaged over


def _dense_params(model: torch.nn.Module) -> list[tuple[str, Tensor]]:
    """Kernels and biases (2-D and 1-D weights of Dense layers), in layer order."""
    return [
        (name, p)
        for name, p in model.named_parameters()
        if name.endswith(".kernel") or name.endswith(".bias")
    ]


class InitialWeights(Callback):
    """Every tensor of the model's state at initialisation (before the first step)."""

    def __init__(self) -> None:
        self.initial: dict[str, np.ndarray] = {}

    def on_run_begin(self, run: RunState) -> None:
        self.initial = {
            k: v.detach().cpu().numpy().copy() for k, v in run.model.state_dict().items()
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """``initial/<tensor name>`` -> its values at initialisation."""
        return {f"initial/{k}": v for k, v in self.initial.items()}


class LearningSpeed(Callback):
    """Per layer and epoch: mean gradient norm, relative weight change, and study 4's number.

    For every kernel and bias tensor: the L2 norm of its gradient averaged over the epoch's
    steps; mean|ΔW| / mean|W| over the epoch (W at the epoch's end against its start); and
    the original's single number per epoch: Σ over every tensor of |(W_before − W_after) /
    W_after| elementwise, divided by the parameter count (0/0 terms count as 0).
    """

    def __init__(self, every_n_steps: int = GRADIENT_EVERY_N_STEPS) -> None:
        self.every_n_steps = every_n_steps
        self.names: list[str] = []
        self.grad_norm: list[list[float]] = []
        self.relative_change: list[list[float]] = []
        self.original: list[float] = []

    def on_run_begin(self, run: RunState) -> None:
        self.names = [name for name, _ in _dense_params(run.model)]
        self._before = self._snapshot(run)

    def _snapshot(self, run: RunState) -> list[Tensor]:
        return [p.detach().clone() for _, p in _dense_params(run.model)]

    def on_epoch_begin(self, run: RunState, epoch: int) -> None:
        self._sums = [torch.zeros((), dtype=torch.float64) for _ in self.names]
        self._count = 0

    def on_step_end(self, run: RunState) -> None:
        for i, (_, p) in enumerate(_dense_params(run.model)):
            if p.grad is not None:
                self._sums[i] += p.grad.detach().norm().double().cpu()
        self._count += 1

    def add_gradient_norms(self, sums: dict[str, float], steps: int) -> None:
        """The compiled engine's epoch: norm sums over `steps` sampled steps, by parameter name.

        Only the kernels and biases are kept (a batch-normalised net also sends gamma, beta).
        """
        for i, name in enumerate(self.names):
            self._sums[i] += sums[name]
        self._count += steps

    def on_epoch_end(self, run: RunState, epoch: int, logs: dict[str, float]) -> None:
        after = self._snapshot(run)
        count = max(self._count, 1)
        self.grad_norm.append([float(s) / count for s in self._sums])
        changes, total, params = [], 0.0, 0
        for old, new in zip(self._before, after, strict=True):
            delta = (new - old).abs()
            scale = float(new.abs().mean())
            changes.append(float(delta.mean()) / scale if scale > 0 else 0.0)
            ratio = torch.where(new != 0, delta / new.abs(), torch.zeros_like(delta))
            total += float(ratio.double().sum())
            params += new.numel()
        self.relative_change.append(changes)
        self.original.append(total / max(params, 1))
        self._before = after

    def arrays(self) -> dict[str, np.ndarray]:
        """``speed/*``: grad_norm and relative_change (epochs, tensors), original (epochs,)."""
        return {
            "speed/names": np.array(self.names),
            "speed/grad_norm": np.array(self.grad_norm, dtype=np.float64).reshape(
                -1, len(self.names)
            ),
            "speed/relative_change": np.array(self.relative_change, dtype=np.float64).reshape(
                -1, len(self.names)
            ),
            "speed/original": np.array(self.original, dtype=np.float64),
        }


class ChainProduct(Callback):
    """The chain-rule factor through a chain of one-unit hidden layers, per epoch.

    For hidden layers of one unit each (e.g. [1, 1, 1]) and a sample of inputs, at each
    epoch's end: Π σ'(z_k) over the hidden units (bounded by (1/4)^k for sigmoid) and the
    full product σ'(z1)·w2·σ'(z2)·…·w_k·σ'(z_k), both averaged in absolute value over the
    sample. Networks whose hidden layers are wider record nothing.
    """

    def __init__(self, sample: Tensor) -> None:
        self.sample = sample  # (S, D) inputs on the training device
        self.derivative: list[float] = []
        self.product: list[float] = []

    def on_epoch_end(self, run: RunState, epoch: int, logs: dict[str, float]) -> None:
        from mnistlab.models.layers import Activation, Dense

        model = run.model
        layers = list(getattr(model, "layers", []))
        dense = [layer for layer in layers if isinstance(layer, Dense)][:-1]
        if not dense or any(d.out_features != 1 for d in dense):
            return
        was_training = model.training
        model.eval()
        x = self.sample
        derivative = torch.ones(len(x), device=x.device)
        product = torch.ones(len(x), device=x.device)
        seen = 0
        with torch.no_grad():
            for layer in layers[:-1]:
                if isinstance(layer, Dense):
                    if seen > 0:
                        product = product * layer.kernel.reshape(())
                    seen += 1
                    x = layer(x)
                elif isinstance(layer, Activation):
                    z_req = x.detach().clone().requires_grad_(True)
                    with torch.enable_grad():
                        (slope,) = torch.autograd.grad(layer(z_req).sum(), z_req)
                    derivative = derivative * slope.reshape(-1)
                    product = product * slope.reshape(-1)
                    x = layer(x)
                else:
                    x = layer(x)
        model.train(was_training)
        self.derivative.append(float(derivative.abs().mean()))
        self.product.append(float(product.abs().mean()))

    def arrays(self) -> dict[str, np.ndarray]:
        """``chain/derivative`` and ``chain/product``: one value per epoch (empty if n/a)."""
        return {
            "chain/derivative": np.array(self.derivative, dtype=np.float64),
            "chain/product": np.array(self.product, dtype=np.float64),
        }


Probe = InitialWeights | LearningSpeed | ChainProduct


def make_probes(captures: Iterable[str], train_x: Tensor) -> list[Probe]:
    """The probes for `captures` (names from `CAPTURES`), in that order.

    Parameters
    ----------
    captures : capture names; unknown names raise ValueError.
    train_x : Tensor of shape (N, D): the training inputs (the chain product samples them).
    """
    probes: list[Probe] = []
    for name in captures:
        if name == "initial_weights":
            probes.append(InitialWeights())
        elif name == "learning_speed":
            probes.append(LearningSpeed())
        elif name == "chain_product":
            sample = train_x[:CHAIN_SAMPLE]
            probes.append(ChainProduct(sample.reshape(len(sample), -1)))
        else:
            raise ValueError(f"unknown capture {name!r}, expected one of {', '.join(CAPTURES)}")
    return probes


def probe_arrays(probes: Iterable[Probe]) -> dict[str, np.ndarray]:
    """Everything the probes recorded, as one flat name -> array mapping."""
    arrays: dict[str, np.ndarray] = {}
    for probe in probes:
        arrays.update(probe.arrays())
    return arrays
