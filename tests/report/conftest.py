"""One tiny digits study, run once, reported once, shared by the report tests."""

from pathlib import Path

import pytest

from mnistlab.analysis import registered
from mnistlab.report import write_report
from mnistlab.studies.loading import parse_study
from mnistlab.studies.options import RunOptions
from mnistlab.studies.runner import run_study

STUDY = """
name: tiny-report
description: Two activations on scikit-learn's digits.
data: {dataset: digits, scaling: minmax, validation: {kind: tail, n: 200}}
model: {hidden: [2, 4]}
training: {optimizer: adam, epochs: 2, batch_size: 64}
grid: {model.activation: [sigmoid, relu]}
repetitions: 2
analyses:
"""
OPTIONS = {
    "tsne": "{layer: 2, subsample: 300, perplexity: 10, iterations: 250}",
    "activation_maximization": "{steps: 50}",
    "pca": "{components: 20, points: 500}",
    "data_overview": "{pixels: [27, 28]}",
    "decision_regions": "{points: 200, mesh: 40}",
    "svm_intuition": "{samples: 60, mesh: 40}",
}


@pytest.fixture(scope="session")
def tiny_report(tmp_path_factory) -> tuple[Path, str]:
    """(path, html) of the report of a tiny study that asks for every analysis."""
    results = tmp_path_factory.mktemp("results")
    lines = [
        f"  - {{name: {name}, options: {OPTIONS[name]}}}" if name in OPTIONS else f"  - {name}"
        for name in registered()
    ]
    text = STUDY + "\n".join(lines) + "\n"
    run_study(parse_study(text, "tiny.yaml"), text, RunOptions(results))
    path = write_report("tiny-report", results)
    return path, path.read_text()
