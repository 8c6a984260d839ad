"""The MLP: an `MLPSpec` built as a Keras-ordered sequence of layers, seeded from one generator."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mnistlab.errors import SpecError
from mnistlab.models.layers import Activation, BatchNorm, Dense, Dropout, KerasOutputs
from mnistlab.models.spec import InitializerSpec, MLPSpec, RegularizerSpec


class MLPNet(KerasOutputs):
    """A multilayer perceptron laid out as Keras's Sequential would be.

    `layers` is a flat ModuleList in Keras order: [Dropout(input_dropout)], then per
    hidden layer Dense, its activation and BatchNorm in the order `batch_norm` asks,
    [Dropout]; then the output Dense and [Dropout(output_dropout)]. The output activation
    is not in `layers`: `forward` returns logits and `predict` applies it.

    Build it with `build_mlp`, which also initialises the weights; the constructor leaves
    every kernel and bias at zero.

    Parameters
    ----------
    spec : the architecture.
    input_dim : input features D.
    outputs : output units.
    generator : generator for the dropout masks (None: torch's global one until
        `set_generator` is called).

    Attributes
    ----------
    spec : MLPSpec
    input_dim, outputs : int
    layers : nn.ModuleList of Dense, Activation, BatchNorm and Dropout modules.
    generator : torch.Generator or None, shared by every Dropout layer.
    """

    def __init__(
        self,
        spec: MLPSpec,
        input_dim: int,
        outputs: int,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if input_dim < 1 or outputs < 1:
            raise ValueError(f"input_dim and outputs must be >= 1, got {input_dim}, {outputs}")
        self.spec = spec
        self.input_dim = input_dim
        self.outputs = outputs
        self.generator = generator
        self.layers = nn.ModuleList(_keras_layers(spec, input_dim, outputs))
        # (index in layers, parameter name, regulariser), in layer order; the engines read it
        self.regularized: list[tuple[int, str, RegularizerSpec]] = []
        regularizers = [(h.kernel_regularizer, h.bias_regularizer) for h in spec.hidden_layers()]
        regularizers.append((spec.output_kernel_regularizer, spec.output_bias_regularizer))
        dense_indices = [i for i, layer in enumerate(self.layers) if isinstance(layer, Dense)]
        for index, (kernel_reg, bias_reg) in zip(dense_indices, regularizers, strict=True):
            for name, reg in (("kernel", kernel_reg), ("bias", bias_reg)):
                if reg is not None and reg.active:
                    self.regularized.append((index, name, reg))
        self.set_generator(generator)

    @property
    def dense_layers(self) -> list[Dense]:
        """The Dense layers: hidden layers in order, then the output layer."""
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    def forward(self, x: Tensor) -> Tensor:
        """The output layer's pre-activation values (after output dropout in training).

        Parameters
        ----------
        x : Tensor of shape (B, input_dim), float32.

        Returns
        -------
        Tensor of shape (B, outputs): logits, from which every loss is computed.
        """
        for layer in self.layers:
            x = layer(x)
        return x

    def penalty(self) -> Tensor:
        """Sum of every L1/L2 penalty with Keras semantics: l1·Σ|w| + l2·Σw² per tensor.

        Returns
        -------
        Tensor of shape (): differentiable; 0.0 on the weights' device when no
        regulariser is set.
        """
        total: Tensor | None = None
        for index, name, reg in self.regularized:
            weight = getattr(self.layers[index], name)
            if reg.l1 > 0:
                term = reg.l1 * weight.abs().sum()
                total = term if total is None else total + term
            if reg.l2 > 0:
                term = reg.l2 * weight.square().sum()
                total = term if total is None else total + term
        if total is None:
            kernel = self.dense_layers[0].kernel
            return torch.zeros((), dtype=kernel.dtype, device=kernel.device)
        return total

    def set_generator(self, generator: torch.Generator | None) -> None:
        """Use `generator` for every dropout mask from now on (e.g. one on the CUDA device).

        Parameters
        ----------
        generator : a torch.Generator on the device the inputs will be on, or None for
            torch's global generator.
        """
        self.generator = generator
        for layer in self.layers:
            if isinstance(layer, Dropout):
                layer.generator = generator

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator) -> None:
        """Initialise every kernel and bias from `generator`, in layer order, kernel then bias.

        BatchNorm layers return to Keras's start: gamma 1, beta 0, moving mean 0, moving
        variance 1.

        Parameters
        ----------
        generator : the initialisation stream; the same seed gives the same weights.
        """
        initializers: list[tuple[InitializerSpec, InitializerSpec]] = [
            (h.kernel_initializer, h.bias_initializer) for h in self.spec.hidden_layers()
        ]
        initializers.append(
            (self.spec.output_kernel_initializer, self.spec.output_bias_initializer)
        )
        for dense, (kernel_init, bias_init) in zip(self.dense_layers, initializers, strict=True):
            dense.initialize(kernel_init, bias_init, generator)
        for layer in self.layers:
            if isinstance(layer, BatchNorm):
                layer.reset()


def build_mlp(
    spec: MLPSpec,
    input_dim: int,
    outputs: int | None,
    generator: torch.Generator,
) -> MLPNet:
    """Create an `MLPNet` on the CPU and initialise it from `generator`.

    Parameters
    ----------
    spec : the architecture.
    input_dim : input features D (784 for flattened MNIST).
    outputs : output units; None falls back to `spec.outputs`.
    generator : a CPU torch.Generator; every kernel and bias is drawn from it in layer
        order (kernel then bias), so its seed fixes the initialisation. It also serves
        the dropout masks until `set_generator` replaces it.

    Returns
    -------
    MLPNet mapping (B, input_dim) to logits (B, outputs).

    Raises
    ------
    SpecError
        When neither `outputs` nor `spec.outputs` is given.
    """
    units = outputs if outputs is not None else spec.outputs
    if units is None:
        raise SpecError(
            "outputs: the output layer's size is unknown; set the model's outputs "
            "or build it with the data's class count"
        )
    net = MLPNet(spec, input_dim, units, generator)
    net.reset_parameters(generator)
    return net


def _keras_layers(spec: MLPSpec, input_dim: int, outputs: int) -> list[nn.Module]:
    """The layers of `spec` in Keras order (see `MLPNet`)."""
    layers: list[nn.Module] = []
    if spec.input_dropout > 0:
        layers.append(Dropout(spec.input_dropout))
    width = input_dim
    for hidden in spec.hidden_layers():
        layers.append(Dense(width, hidden.units))
        activation = Activation(hidden.activation)
        if spec.batch_norm == "none":
            layers.append(activation)
        else:
            norm = BatchNorm(hidden.units, spec.batch_norm_momentum, spec.batch_norm_epsilon)
            layers.extend([norm, activation] if spec.batch_norm == "before" else [activation, norm])
        if hidden.dropout > 0:
            layers.append(Dropout(hidden.dropout))
        width = hidden.units
    layers.append(Dense(width, outputs))
    if spec.output_dropout > 0:
        layers.append(Dropout(spec.output_dropout))
    return layers
