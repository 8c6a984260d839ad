"""summary(): Keras 3's model.summary() table, names and parameter totals."""

import pytest
import torch

from mnistlab.models import MLPSpec, build_mlp, summary
from mnistlab.models.summary import layer_rows, readable_size


def _net(**fields):
    return build_mlp(MLPSpec(**fields), 784, 10, torch.Generator().manual_seed(0))


def test_784_512_128_10_matches_keras():
    text = summary(_net(hidden=(512, 128)))
    lines = text.splitlines()
    assert lines[0] == 'Model: "sequential"'
    assert lines[-3:] == [
        " Total params: 468,874 (1.79 MB)",
        " Trainable params: 468,874 (1.79 MB)",
        " Non-trainable params: 0 (0.00 B)",
    ]
    cells = [[c.strip() for c in line.split("│")[1:4]] for line in lines if "(Dense)" in line]
    assert cells == [
        ["dense (Dense)", "(None, 512)", "401,920"],
        ["dense_1 (Dense)", "(None, 128)", "65,664"],
        ["dense_2 (Dense)", "(None, 10)", "1,290"],
    ]
    assert "┃ Layer (type)" in text and "Output Shape" in text and "Param #" in text
    assert "\x1b" not in text  # plain text, no terminal colours


def test_batchnorm_before_gets_its_own_activation_layer_and_frozen_params():
    rows = layer_rows(_net(hidden=(512, 128), batch_norm="before", dropout=0.5, input_dropout=0.2))
    assert [(r.name, r.type, r.units, r.params) for r in rows] == [
        ("dropout", "Dropout", 784, 0),
        ("dense", "Dense", 512, 401_920),
        ("batch_normalization", "BatchNormalization", 512, 2_048),
        ("activation", "Activation", 512, 0),
        ("dropout_1", "Dropout", 512, 0),
        ("dense_1", "Dense", 128, 65_664),
        ("batch_normalization_1", "BatchNormalization", 128, 512),
        ("activation_1", "Activation", 128, 0),
        ("dropout_2", "Dropout", 128, 0),
        ("dense_2", "Dense", 10, 1_290),
    ]
    assert [r.non_trainable for r in rows if r.type == "BatchNormalization"] == [1_024, 256]


def test_batchnorm_totals_count_moving_statistics_as_non_trainable():
    text = summary(_net(hidden=(512, 128), activation="sigmoid", batch_norm="after"))
    assert text.splitlines()[-3:] == [
        " Total params: 471,434 (1.80 MB)",
        " Trainable params: 470,154 (1.79 MB)",
        " Non-trainable params: 1,280 (5.00 KB)",
    ]
    assert "activation (Activation)" not in text  # Dense(activation="sigmoid") → BN


def test_output_dropout_and_softmax_regression():
    rows = layer_rows(_net(hidden=(), output="linear", output_dropout=0.21))
    assert [(r.name, r.units, r.params) for r in rows] == [("dense", 10, 7_850), ("dropout", 10, 0)]


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0.00 B"),
        (1023, "1023.00 B"),
        (1024, "1.00 KB"),
        (5120, "5.00 KB"),
        (1_875_496, "1.79 MB"),
    ],
)
def test_readable_size_is_keras(size, text):
    assert readable_size(size) == text
