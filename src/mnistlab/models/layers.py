"""Layers with Keras semantics: Dense (kernel stored (in, out)), BatchNorm, Dropout, activations.

Every layer works on the last axis, so the same code serves a stack of K models whose
inputs are (K, B, D) once their weights gain a leading K axis.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mnistlab.models.initializers import initialize
from mnistlab.models.spec import ActivationSpec, InitializerSpec

# --- Dense ---


class Dense(nn.Module):
    """Keras's Dense without its activation: `x @ kernel + bias`.

    Parameters
    ----------
    in_features, out_features : sizes of the input and output.

    Attributes
    ----------
    kernel : Parameter of shape (in_features, out_features), Keras's layout (torch's
        Linear stores (out, in)).
    bias : Parameter of shape (out_features,).
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        # zeros until an initialiser fills them: build_mlp draws from the run's generator
        self.kernel = nn.Parameter(torch.zeros(in_features, out_features, device="cpu"))
        self.bias = nn.Parameter(torch.zeros(out_features, device="cpu"))

    def forward(self, x: Tensor) -> Tensor:
        """Affine map.

        Parameters
        ----------
        x : Tensor of shape (B, in_features).

        Returns
        -------
        Tensor of shape (B, out_features).
        """
        return torch.addmm(self.bias, x, self.kernel)

    @torch.no_grad()
    def initialize(
        self, kernel: InitializerSpec, bias: InitializerSpec, generator: torch.Generator
    ) -> None:
        """Fill the kernel (fans in, out) and the bias (Keras's fans of a 1-D shape (units,)
        are (units, units)) from `generator`, in that order."""
        initialize(self.kernel, kernel, self.in_features, self.out_features, generator)
        initialize(self.bias, bias, self.out_features, self.out_features, generator)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


# --- BatchNorm ---


class BatchNorm(nn.Module):
    """Keras's BatchNormalization over the last axis (features), with Keras's conventions.

    Training mode normalises with the batch mean and the BIASED batch variance and updates
    `moving = momentum·moving + (1 − momentum)·batch` (also biased; torch uses the unbiased
    one and the opposite momentum convention). Inference mode uses the moving statistics.
    `y = gamma · (x − mean) / sqrt(var + epsilon) + beta`.

    Parameters
    ----------
    features : size of the normalised (last) axis.
    momentum : share of the moving statistics kept at each training batch (Keras 0.99).
    epsilon : added to the variance inside the square root (Keras 1e-3).

    Attributes
    ----------
    gamma, beta : trainable Parameters of shape (features,), ones and zeros.
    moving_mean, moving_variance : buffers of shape (features,), zeros and ones.
    """

    def __init__(self, features: int, momentum: float = 0.99, epsilon: float = 1e-3) -> None:
        super().__init__()
        self.features = features
        self.momentum = momentum
        self.epsilon = epsilon
        self.gamma = nn.Parameter(torch.ones(features, device="cpu"))
        self.beta = nn.Parameter(torch.zeros(features, device="cpu"))
        self.register_buffer("moving_mean", torch.zeros(features, device="cpu"))
        self.register_buffer("moving_variance", torch.ones(features, device="cpu"))

    @torch.no_grad()
    def reset(self) -> None:
        """Back to Keras's start: gamma 1, beta 0, moving mean 0, moving variance 1."""
        self.gamma.fill_(1.0)
        self.beta.zero_()
        self.moving_mean.zero_()
        self.moving_variance.fill_(1.0)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise `x`; in training mode also update the moving statistics.

        Parameters
        ----------
        x : Tensor of shape (B, features).

        Returns
        -------
        Tensor of shape (B, features).
        """
        if self.training:
            variance, mean = torch.var_mean(x, dim=-2, correction=0)  # over the batch axis
            with torch.no_grad():
                keep = self.momentum
                self.moving_mean.mul_(keep).add_(mean.detach(), alpha=1.0 - keep)
                self.moving_variance.mul_(keep).add_(variance.detach(), alpha=1.0 - keep)
        else:
            mean, variance = self.moving_mean, self.moving_variance
        scale = torch.rsqrt(variance + self.epsilon) * self.gamma
        return x * scale + (self.beta - mean * scale)  # tf.nn.batch_normalization's order

    def extra_repr(self) -> str:
        return f"{self.features}, momentum={self.momentum}, epsilon={self.epsilon}"


# --- Dropout ---


def dropout_mask(like: Tensor, rate: float, generator: torch.Generator | None) -> Tensor:
    """Keras's inverted-dropout mask shaped like `like`: 1/keep where a uniform draw from
    `generator` is below keep = 1 − rate, else 0. Every engine and the stack draw it here,
    so one run's masks are the same draws on each."""
    keep = 1.0 - rate
    draws = torch.rand(like.shape, generator=generator, device=like.device, dtype=like.dtype)
    return (draws < keep).to(like.dtype).mul_(1.0 / keep)


class Dropout(nn.Module):
    """Inverted dropout in training mode only, masks drawn from an explicit generator.

    A unit is kept when a uniform draw is below `1 − rate`; kept values are scaled by
    `1 / (1 − rate)`, so inference mode is the identity.

    Parameters
    ----------
    rate : fraction of units zeroed, in [0, 1).
    generator : source of the masks; None uses torch's global generator. `MLPNet`
        shares its own generator with every Dropout (see `MLPNet.set_generator`).
    """

    def __init__(self, rate: float, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        """Zero each entry with probability `rate` and rescale the rest (training only).

        Parameters
        ----------
        x : Tensor of any shape, e.g. (B, units).

        Returns
        -------
        Tensor of the same shape.
        """
        if not self.training or self.rate == 0.0:
            return x
        return x * dropout_mask(x, self.rate, self.generator)

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


# --- activations ---


def activation_function(spec: ActivationSpec) -> Callable[[Tensor], Tensor]:
    """The elementwise function of a hidden-layer activation.

    Parameters
    ----------
    spec : the activation (see `mnistlab.models.spec.ActivationSpec`).

    Returns
    -------
    callable mapping a Tensor of any shape to one of the same shape.
    """
    name = spec.name
    if name == "linear":
        return _identity
    if name == "sigmoid":
        return torch.sigmoid
    if name == "tanh":
        return torch.tanh
    if name == "relu":
        return F.relu
    if name == "leaky_relu":
        return functools.partial(F.leaky_relu, negative_slope=spec.negative_slope)
    if name == "elu":
        return functools.partial(F.elu, alpha=spec.alpha)
    raise ValueError(f"no activation named {name!r}")  # spec union and this list must agree


def _identity(x: Tensor) -> Tensor:
    """Keras's "linear" activation."""
    return x


class Activation(nn.Module):
    """An activation as a layer (Keras's Activation layer, or a Dense layer's activation).

    Parameters
    ----------
    spec : the activation.
    """

    def __init__(self, spec: ActivationSpec) -> None:
        super().__init__()
        self.spec = spec
        self.function = activation_function(spec)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the activation elementwise.

        Parameters
        ----------
        x : Tensor of any shape, e.g. (B, units).

        Returns
        -------
        Tensor of the same shape.
        """
        return self.function(x)

    def extra_repr(self) -> str:
        return self.spec.name


# --- outputs of a whole model ---


class KerasOutputs(nn.Module):
    """What every Keras-style model here shares: its output activation and `predict`.

    Subclasses have a `spec` whose `output` is "softmax" or "linear" and a `forward` that
    returns logits.
    """

    def output_activation(self, logits: Tensor) -> Tensor:
        """Softmax over the last axis, or the identity for a linear output."""
        return torch.softmax(logits, dim=-1) if self.spec.output == "softmax" else logits

    def predict(self, x: Tensor) -> Tensor:
        """Outputs (B, outputs) in inference mode (moving BN statistics, no dropout), without
        gradients; the module's train/eval flag is restored afterwards."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                return self.output_activation(self(x))
        finally:
            self.train(was_training)
