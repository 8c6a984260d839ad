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


TINY_RESULTS_STUDY = """\
name: tiny-results
description: two small MLPs on the 8x8 digits
data: {dataset: digits, scaling: minmax, validation: {kind: tail, n: 300}}
model: {hidden: [8]}
training: {optimizer: {name: adam, learning_rate: 0.02}, epochs: 2, batch_size: 64}
variants:
  - {name: narrow, set: {model.hidden: [8]}}
  - {name: wide, set: {model.hidden: [16]}}
grid: {training.optimizer.learning_rate: [0.02]}
repetitions: 2
select: {metric: val_accuracy, over: training.optimizer.learning_rate}
"""


@pytest.fixture(scope="session")
def tiny_results(tmp_path_factory) -> Path:
    """A results folder holding the finished study `tiny-results`: 2 variants × 2
    repetitions × 2 epochs of an MLP on the 8x8 digits, initial weights captured."""
    from mnistlab.studies import parse_study
    from mnistlab.studies.options import RunOptions
    from mnistlab.studies.runner import run_study

    folder = tmp_path_factory.mktemp("tiny-results")
    spec = parse_study(TINY_RESULTS_STUDY, "tiny-results.yaml")
    options = RunOptions(folder, captures=("initial_weights",))
    run_study(spec, TINY_RESULTS_STUDY, options)
    return folder
