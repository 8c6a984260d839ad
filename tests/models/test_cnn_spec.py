"""CNNSpec: layer tags and Keras names, shape inference, and one-line errors naming the layer."""

import pytest
from pydantic import TypeAdapter, ValidationError

from mnistlab.errors import SpecError
from mnistlab.models import CNNSpec, ModelSpec
from mnistlab.models.cnn_spec import (
    Conv2D,
    Flatten,
    LeakyReLU,
    MaxPool2D,
    conv_output,
    image_shape_of,
    layer_shapes,
    same_padding,
)

MODELS = TypeAdapter(ModelSpec)


def test_keras_names_and_bare_tags_parse_to_layers(small_data_cnn):
    spec = MODELS.validate_python({"kind": "cnn", "layers": small_data_cnn})
    assert isinstance(spec, CNNSpec)
    assert isinstance(spec.layers[0], Conv2D) and spec.layers[0].padding == "same"
    assert isinstance(spec.layers[1], LeakyReLU) and spec.layers[1].negative_slope == 0.1
    assert isinstance(spec.layers[2], MaxPool2D) and spec.layers[2].strides is None
    assert isinstance(spec.layers[12], Flatten)


def test_keras_defaults():
    conv = Conv2D(filters=8, kernel_size=3)
    assert (conv.strides, conv.padding, conv.activation.name) == (1, "valid", "linear")
    assert (conv.kernel_initializer.name, conv.bias_initializer.name) == ("glorot_uniform", "zeros")
    assert LeakyReLU().negative_slope == 0.3
    assert MaxPool2D().pool_size == 2


def test_shapes_follow_keras_same_padding(small_data_cnn):
    spec = MODELS.validate_python({"kind": "cnn", "layers": small_data_cnn})
    shapes = layer_shapes(spec, (28, 28))
    assert shapes[0] == (28, 28, 32)
    assert shapes[2] == (14, 14, 32)
    assert shapes[6] == (7, 7, 64)
    assert shapes[11] == (4, 4, 128)  # 'same' pooling of 7 gives ceil(7 / 2)
    assert shapes[12] == (2048,)
    assert shapes[-1] == (0,)  # the output layer, size given at build time


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "expected"),
    [(28, 3, 1, "valid", 26), (28, 3, 1, "same", 28), (28, 3, 2, "same", 14), (7, 2, 2, "same", 4)],
)
def test_conv_output(size, kernel, stride, padding, expected):
    assert conv_output(size, kernel, stride, padding) == expected


def test_same_padding_puts_the_odd_cell_at_the_end():
    assert same_padding(28, 3, 1) == (1, 1)
    assert same_padding(28, 3, 2) == (0, 1)
    assert same_padding(7, 2, 2) == (0, 1)
    assert same_padding(28, 4, 1) == (1, 2)


def test_a_dense_on_feature_maps_names_the_layer():
    spec = CNNSpec(
        layers=[{"layer": "conv2d", "filters": 4, "kernel_size": 3}, {"layer": "dense", "units": 5}]
    )
    with pytest.raises(SpecError, match=r"model.layers\[1\] \(dense\): needs a flat input"):
        layer_shapes(spec, (28, 28))


def test_a_window_larger_than_its_input_is_named():
    spec = CNNSpec(layers=[{"layer": "conv2d", "filters": 4, "kernel_size": 30}, "flatten"])
    with pytest.raises(SpecError, match=r"model.layers\[0\] \(conv2d\): a 30x30 window"):
        layer_shapes(spec, (28, 28))


def test_the_last_layer_must_be_flat():
    spec = CNNSpec(layers=[{"layer": "conv2d", "filters": 4, "kernel_size": 3}])
    with pytest.raises(SpecError, match="end with flatten"):
        layer_shapes(spec, (28, 28))


def test_an_unknown_layer_lists_the_known_ones():
    with pytest.raises(ValidationError, match="unknown layer 'Conv3D', expected one of: conv2d"):
        CNNSpec(layers=[{"layer": "Conv3D", "filters": 4}])


def test_image_shape_from_flat_square_data_or_given():
    spec = CNNSpec(layers=["flatten"])
    assert image_shape_of(spec, (784,)) == (28, 28)
    assert image_shape_of(spec, (28, 28)) == (28, 28)
    with pytest.raises(SpecError, match="not a square image"):
        image_shape_of(spec, (780,))
    assert image_shape_of(CNNSpec(layers=["flatten"], image_shape=(4, 195)), (780,)) == (4, 195)
