"""Shared test helpers: the Keras fixtures recorded by tests/fixtures/keras/record.py."""

import json
from pathlib import Path

import pytest

KERAS_FIXTURES = Path(__file__).parent / "fixtures" / "keras"


@pytest.fixture(scope="session")
def keras_fixture():
    """Load one recorded Keras fixture by stem, e.g. keras_fixture('training')."""

    def load(stem: str) -> dict:
        return json.loads((KERAS_FIXTURES / f"{stem}.json").read_text())

    return load


@pytest.fixture
def small_data_cnn():
    """small-data-regularization's CNN layers, as a study writes them (Keras names mixed in)."""
    return [
        {"layer": "Conv2D", "filters": 32, "kernel_size": 3, "padding": "same"},
        {"layer": "LeakyReLU", "negative_slope": 0.1},
        {"layer": "MaxPooling2D", "padding": "same"},
        {"layer": "Dropout", "rate": 0.2},
        {"layer": "conv2d", "filters": 64, "kernel_size": 3, "padding": "same"},
        {"layer": "leaky_relu", "negative_slope": 0.1},
        {"layer": "max_pool2d", "padding": "same"},
        {"layer": "dropout", "rate": 0.2},
        {"layer": "conv2d", "filters": 128, "kernel_size": 3, "padding": "same"},
        {"layer": "leaky_relu", "negative_slope": 0.1},
        {"layer": "dropout", "rate": 0.2},
        {"layer": "max_pool2d", "padding": "same"},
        "flatten",
        {"layer": "dense", "units": 256},
        {"layer": "leaky_relu", "negative_slope": 0.1},
    ]
