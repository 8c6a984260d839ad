"""The UI tests' results folder: a tiny real study (4 MLP runs on 300 MNIST digits, 2 epochs)."""

from pathlib import Path

import pytest

from mnistlab.studies import parse_study
from mnistlab.studies.options import RunOptions
from mnistlab.studies.runner import run_study

MNIST_DIR = Path(__file__).resolve().parents[2] / "data" / "mnist"
STUDY = """
name: tiny-ui
description: two small MLPs for the UI tests
data:
  dataset: mnist
  train_subset: {kind: head, n: 300}
  validation: {kind: tail, n: 100}
  scaling: standardize
model: {hidden: [16]}
training: {optimizer: {name: adam, learning_rate: 0.01}, epochs: 2, batch_size: 64}
grid: {training.optimizer.learning_rate: [0.01, 0.003]}
repetitions: 2
select: {metric: val_accuracy, over: training.optimizer.learning_rate}
"""


@pytest.fixture(scope="session")
def results(tmp_path_factory) -> Path:
    """A results folder holding the finished study `tiny-ui`."""
    if not MNIST_DIR.is_dir():
        pytest.skip("data/mnist is not in this checkout")
    folder = tmp_path_factory.mktemp("ui-results")
    run_study(parse_study(STUDY, "tiny-ui.yaml"), STUDY, RunOptions(folder, data_dir=MNIST_DIR))
    return folder
