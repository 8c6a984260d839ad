"""CNN layers against goldens recorded from Keras 3: paddings, pooling, Flatten, a CNN's table."""

import pytest
import torch

from mnistlab.models import CNNSpec, build_cnn
from mnistlab.models.cnn import Conv2D, Flatten, Pool2D
from mnistlab.models.summary import layer_rows


@pytest.fixture(scope="module")
def golden(keras_fixture):
    return keras_fixture("convolutions")


def _nchw(channels_last):
    return torch.tensor(channels_last, dtype=torch.float32).permute(0, 3, 1, 2)


def test_conv2d_outputs_equal_keras_for_every_padding_and_stride(golden):
    x = _nchw(golden["x"])
    for case in golden["conv2d"]:
        size, strides = case["kernel_size"], case["strides"]
        conv = Conv2D(2, 3, (size, size), (strides, strides), case["padding"], (7, 7))
        with torch.no_grad():
            conv.kernel.copy_(torch.tensor(case["kernel"]).permute(3, 2, 0, 1))
            conv.bias.copy_(torch.tensor(case["bias"]))
        expected = _nchw(case["output"])
        torch.testing.assert_close(
            conv(x), expected, atol=1e-5, rtol=1e-5, msg=str(case["padding"])
        )


def test_pooling_outputs_equal_keras(golden):
    x = _nchw(golden["x"])
    for case in golden["pooling"]:
        size = case["pool_size"]
        strides = case["strides"] or size
        pool = Pool2D(case["kind"], (size, size), (strides, strides), case["padding"], (7, 7))
        label = f"{case['kind']} {size}/{strides} {case['padding']}"
        torch.testing.assert_close(pool(x), _nchw(case["output"]), atol=1e-6, rtol=1e-6, msg=label)


def test_flatten_order_equals_keras(golden):
    flat = Flatten()(_nchw(golden["flatten_input"]))
    assert flat.tolist() == golden["flatten_output"]


def test_small_data_cnn_names_shapes_and_counts_equal_keras(golden, small_data_cnn):
    net = build_cnn(CNNSpec(layers=small_data_cnn), (28, 28), 10, torch.Generator())
    rows = layer_rows(net)
    keras = golden["small_data_cnn"]
    assert [r.name for r in rows] == keras["names"]
    assert [list(r.shape) for r in rows] == keras["output_shapes"]
    assert [r.params for r in rows] == keras["params"]
    assert sum(p.numel() for p in net.parameters()) == keras["total_params"]
