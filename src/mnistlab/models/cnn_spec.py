"""The CNN spec: a Keras-like list of layers (Conv2D, pooling, Flatten, Dense, ...), Keras defaults.

A layer is a mapping tagged by `layer` (``{layer: conv2d, filters: 32, kernel_size: 3}``);
Keras's class names are accepted as tags too (``Conv2D``, ``MaxPooling2D``), and a layer
without options may be a bare string (``flatten``). Shapes are inferred from the input
image, Keras-style (height, width, channels); `layer_shapes` reports them and names the
layer whose input does not fit.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PositiveFloat, PositiveInt, field_validator

from mnistlab.errors import SpecError
from mnistlab.models.components import (
    ActivationSpec,
    DropoutRate,
    GlorotUniform,
    InitializerSpec,
    Linear,
    RegularizerSpec,
    Zeros,
)
from mnistlab.spec import Spec

Pair = PositiveInt | tuple[PositiveInt, PositiveInt]
"""A size in pixels: one int for both axes, or (height, width)."""

Padding = Literal["valid", "same"]
"""Keras/TensorFlow padding: 'valid' none; 'same' output ceil(n / stride), extra at the end."""


def pair(value: int | tuple[int, int]) -> tuple[int, int]:
    """`3` -> (3, 3); a (height, width) pair is kept."""
    return (value, value) if isinstance(value, int) else value


# --- layers ---


class Conv2D(Spec):
    """Keras's Conv2D: `filters` kernels of `kernel_size`, then `activation` (linear by default)."""

    layer: Literal["conv2d"] = "conv2d"
    filters: PositiveInt
    kernel_size: Pair
    strides: Pair = 1
    padding: Padding = "valid"
    activation: ActivationSpec = Linear()
    use_bias: bool = True
    kernel_initializer: InitializerSpec = GlorotUniform()
    bias_initializer: InitializerSpec = Zeros()
    kernel_regularizer: RegularizerSpec | None = None
    bias_regularizer: RegularizerSpec | None = None


class Dense(Spec):
    """Keras's Dense on a flat input: `units` outputs, then `activation` (linear by default)."""

    layer: Literal["dense"] = "dense"
    units: PositiveInt
    activation: ActivationSpec = Linear()
    kernel_initializer: InitializerSpec = GlorotUniform()
    bias_initializer: InitializerSpec = Zeros()
    kernel_regularizer: RegularizerSpec | None = None
    bias_regularizer: RegularizerSpec | None = None


class MaxPool2D(Spec):
    """Keras's MaxPooling2D: stride = pool size unless given; 'same' pads the end, ignored."""

    layer: Literal["max_pool2d"] = "max_pool2d"
    pool_size: Pair = 2
    strides: Pair | None = Field(None, description="None = pool_size, as Keras")
    padding: Padding = "valid"


class AveragePool2D(Spec):
    """Keras's AveragePooling2D: with 'same', padded cells do not count in the mean."""

    layer: Literal["average_pool2d"] = "average_pool2d"
    pool_size: Pair = 2
    strides: Pair | None = Field(None, description="None = pool_size, as Keras")
    padding: Padding = "valid"


class Flatten(Spec):
    """Keras's Flatten: (height, width, channels) -> one vector, channels varying fastest."""

    layer: Literal["flatten"] = "flatten"


class Dropout(Spec):
    """Inverted dropout of `rate` in training (elementwise, also on feature maps)."""

    layer: Literal["dropout"] = "dropout"
    rate: DropoutRate


class BatchNormalization(Spec):
    """Keras's BatchNormalization over the channels (feature maps) or the units (flat)."""

    layer: Literal["batch_norm"] = "batch_norm"
    momentum: float = Field(0.99, ge=0.0, le=1.0, description="share of moving stats kept")
    epsilon: PositiveFloat = Field(1e-3, description="added to the variance")


class Activation(Spec):
    """Keras's Activation layer."""

    layer: Literal["activation"] = "activation"
    activation: ActivationSpec


class LeakyReLU(Spec):
    """Keras's LeakyReLU layer: negative slope 0.3 unless given (torch: 0.01)."""

    layer: Literal["leaky_relu"] = "leaky_relu"
    negative_slope: float = Field(0.3, ge=0.0)


_LAYERS = (
    Conv2D,
    Dense,
    MaxPool2D,
    AveragePool2D,
    Flatten,
    Dropout,
    BatchNormalization,
    Activation,
    LeakyReLU,
)

KERAS_NAMES: dict[str, str] = {
    "Conv2D": "conv2d",
    "Convolution2D": "conv2d",
    "Dense": "dense",
    "MaxPooling2D": "max_pool2d",
    "MaxPool2D": "max_pool2d",
    "AveragePooling2D": "average_pool2d",
    "AvgPool2D": "average_pool2d",
    "Flatten": "flatten",
    "Dropout": "dropout",
    "BatchNormalization": "batch_norm",
    "Activation": "activation",
    "LeakyReLU": "leaky_relu",
}
"""Keras class name -> mnistlab layer tag."""

_TAGS = tuple(layer.model_fields["layer"].default for layer in _LAYERS)


def _layer_before(value: Any) -> Any:
    """A bare tag becomes `{layer: tag}`; Keras class names become tags; unknown tags listed."""
    if isinstance(value, str):
        value = {"layer": value}
    if isinstance(value, dict) and "layer" in value:
        tag = KERAS_NAMES.get(value["layer"], value["layer"])
        if tag not in _TAGS:
            raise ValueError(
                f"unknown layer {value['layer']!r}, expected one of: {', '.join(_TAGS)}"
            )
        value = {**value, "layer": tag}
    elif isinstance(value, dict):
        raise ValueError(f"a layer needs a 'layer' key, one of: {', '.join(_TAGS)}")
    return value


LayerSpec = Annotated[
    Annotated[
        Conv2D
        | Dense
        | MaxPool2D
        | AveragePool2D
        | Flatten
        | Dropout
        | BatchNormalization
        | Activation
        | LeakyReLU,
        Field(discriminator="layer"),
    ],
    BeforeValidator(_layer_before),
]
"""One layer of a CNN, by `layer`."""


# --- the CNN ---


class CNNSpec(Spec):
    """A Keras Sequential of image layers, then one output Dense (the class count) added.

    `layers` are everything before the output layer, in order; the output layer is
    Dense(outputs) with `output` as its activation, as `MLPSpec`'s. The input is a
    one-channel image: `image_shape`, or the data's (H, W), or a flat square (784 -> 28×28).
    """

    kind: Literal["cnn"] = "cnn"
    layers: tuple[LayerSpec, ...] = Field(description="the layers before the output Dense")
    image_shape: tuple[PositiveInt, PositiveInt] | None = Field(
        None, description="(height, width) of the input; None = from the data"
    )
    output: Literal["softmax", "linear"] = Field(
        "softmax", description="output activation; the loss always uses the pre-activation"
    )
    outputs: PositiveInt | None = Field(
        None, description="output units; None = the data's class count, given at build time"
    )
    output_kernel_initializer: InitializerSpec = GlorotUniform()
    output_bias_initializer: InitializerSpec = Zeros()
    output_kernel_regularizer: RegularizerSpec | None = None
    output_bias_regularizer: RegularizerSpec | None = None

    @field_validator("layers")
    @classmethod
    def _not_empty(cls, layers: tuple[Any, ...]) -> tuple[Any, ...]:
        if not layers:
            raise ValueError("needs at least one layer (e.g. conv2d, then flatten)")
        return layers


# --- shapes ---

Shape = tuple[int, ...]
"""Keras's per-example shape: (height, width, channels) for maps, (units,) when flat."""


def image_shape_of(spec: CNNSpec, input_shape: Shape) -> tuple[int, int]:
    """The (height, width) the CNN reads: the spec's, the data's 2-D shape, or a flat square.

    Raises
    ------
    SpecError
        When the data is flat and not a square number of features.
    """
    if spec.image_shape is not None:
        if math.prod(spec.image_shape) != math.prod(input_shape):
            raise SpecError(
                f"model.image_shape: {list(spec.image_shape)} does not hold the data's "
                f"{math.prod(input_shape)} features"
            )
        return spec.image_shape
    if len(input_shape) == 2:
        return (input_shape[0], input_shape[1])
    side = math.isqrt(math.prod(input_shape))
    if side * side != math.prod(input_shape):
        raise SpecError(
            f"model.image_shape: the data has {math.prod(input_shape)} features, not a "
            "square image; set image_shape: [height, width]"
        )
    return (side, side)


def conv_output(size: int, kernel: int, stride: int, padding: Padding) -> int:
    """Output length along one axis, as TensorFlow computes it."""
    if padding == "same":
        return -(-size // stride)
    return (size - kernel) // stride + 1


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding (before, after) along one axis: any odd cell goes after."""
    total = max((conv_output(size, kernel, stride, "same") - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def layer_shapes(spec: CNNSpec, image: tuple[int, int]) -> list[Shape]:
    """Each layer's output shape for one example, Keras-style, the output Dense's last.

    Parameters
    ----------
    spec : the CNN.
    image : (height, width) of the one-channel input.

    Returns
    -------
    list of shapes, one per entry of `spec.layers`, then the output layer's (outputs,) with
    outputs 0 when not yet known.

    Raises
    ------
    SpecError
        Naming the layer (`model.layers[3]`) whose input does not fit: a Dense on feature
        maps, a convolution on a flat vector, a window larger than its input.
    """
    shape: Shape = (*image, 1)
    shapes: list[Shape] = []
    for i, layer in enumerate(spec.layers):
        where = f"model.layers[{i}] ({layer.layer})"
        if isinstance(layer, Conv2D | MaxPool2D | AveragePool2D):
            if len(shape) != 3:
                raise SpecError(f"{where}: needs feature maps, but its input is flat {shape}")
            if isinstance(layer, Conv2D):
                window, strides = pair(layer.kernel_size), pair(layer.strides)
                channels = layer.filters
            else:
                window = pair(layer.pool_size)
                strides = pair(layer.strides) if layer.strides is not None else window
                channels = shape[2]
            sizes = tuple(
                conv_output(n, k, s, layer.padding)
                for n, k, s in zip(shape[:2], window, strides, strict=True)
            )
            if min(sizes) < 1:
                raise SpecError(
                    f"{where}: a {window[0]}x{window[1]} window does not fit its "
                    f"{shape[0]}x{shape[1]} input with padding 'valid'"
                )
            shape = (*sizes, channels)
        elif isinstance(layer, Flatten):
            shape = (math.prod(shape),)
        elif isinstance(layer, Dense):
            if len(shape) != 1:
                raise SpecError(f"{where}: needs a flat input; put a flatten layer before it")
            shape = (layer.units,)
        shapes.append(shape)
    if len(shape) != 1:
        raise SpecError(
            f"model.layers: the last layer gives feature maps {shape}; end with flatten "
            "(the output Dense needs a flat input)"
        )
    shapes.append((spec.outputs or 0,))
    return shapes
