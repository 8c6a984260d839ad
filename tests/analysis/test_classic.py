"""The classical analyses: feature selection, SVM regions and intuition, regression fits."""

import textwrap

import numpy as np
import pytest

from mnistlab.analysis import compute
from mnistlab.analysis.classic import (
    RegionOptions,
    decision_grid,
    kernel_identity_error,
    quadratic_map,
    synthetic_sets,
)
from mnistlab.analysis.run import open_study
from mnistlab.studies.loading import parse_study
from mnistlab.studies.options import RunOptions
from mnistlab.studies.runner import run_study

CLASSIC = """
name: classic
data:
  dataset: digits
  scaling: minmax
  validation: {kind: tail, n: 200}
  features: [{kind: forest_select, k: 20, n_estimators: 10}]
model: {kind: sklearn, estimator: svm, kernel: linear}
training: {optimizer: {name: sgd, learning_rate: 0.5}, epochs: 2, batch_size: 50}
variants:
  - {name: svm, set: {}}
  - {name: numpy, set: {model: {kind: numpy, hidden: [16]}}}
"""


def test_quadratic_map_realises_the_squared_inner_product():
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    np.testing.assert_allclose(
        quadratic_map(x), [[1, 4, 2 * np.sqrt(2)], [9, 1, -3 * np.sqrt(2)]], atol=1e-12
    )
    assert kernel_identity_error() < 1e-12


def test_synthetic_sets_and_a_linear_svc_on_them():
    sets = synthetic_sets(100, 0)
    assert set(sets) == {"separable", "noisy", "circles"}
    x, y = sets["separable"]
    grid = decision_grid(x, y, "linear", RegionOptions(mesh=20))
    assert grid["accuracy"] == 1.0
    assert grid["zz"].shape == (20, 20) and set(np.unique(grid["zz"])) == {0, 1}
    circles = decision_grid(*sets["circles"], "linear", RegionOptions(mesh=20))
    assert circles["accuracy"] < 0.8  # no line separates the circles; φ does (see svm_intuition)


@pytest.fixture(scope="module")
def classic_study(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    run_study(parse_study(CLASSIC, "classic.yaml"), CLASSIC, RunOptions(results))
    with open_study("classic", results) as ctx:
        yield ctx


def test_feature_selection_shows_the_forest_pixels(classic_study):
    outcome = compute(classic_study, "feature_selection")
    (entry,) = outcome.result.items.values()
    assert entry["importances"].shape == (8, 8)
    assert entry["mask"].sum() == 20
    assert entry["importances"][entry["mask"]].min() >= entry["importances"][~entry["mask"]].max()


def test_prediction_galleries_show_images_not_chosen_pixels(classic_study):
    outcome = compute(classic_study, "predictions", {"images": 6})
    entry = next(iter(outcome.result.items.values()))
    assert entry["images"].shape == (6, 8, 8)  # the digits, though the model saw 20 pixels


def test_roc_ranks_svm_by_decision_values_and_adds_the_hard_auc(classic_study):
    outcome = compute(classic_study, "roc", {"hard": True})
    table = outcome.result.tables[0]
    assert table.header[:5] == [
        "run",
        "scores from",
        "macro",
        "micro",
        "macro, hard one-hot (coursework)",
    ]
    sources = {row[0].split(",")[0].split(" ")[0]: row[1] for row in table.rows}
    assert sources == {"svm": "decision", "numpy": "output"}
    for row in table.rows:
        assert float(row[4]) < float(row[2])  # hard labels rank worse than scores


def test_svm_intuition_and_regions(classic_study):
    intuition = compute(classic_study, "svm_intuition", {"samples": 80, "mesh": 30})
    assert intuition.result.items["separable"]["accuracy"] == 1.0
    assert intuition.result.items["identity"]["max_error"] < 1e-12
    regions = compute(classic_study, "decision_regions", {"points": 150, "mesh": 20})
    assert set(regions.result.items) == {"points", "linear", "poly", "sigmoid", "rbf"}
    assert regions.result.items["points"]["coords"].shape == (150, 2)


def test_numpy_predictions_before_training(classic_study):
    outcome = compute(classic_study, "initial_predictions", {"rows": 10})
    (entry,) = outcome.result.items.values()
    assert len(entry["labels"]) == len(entry["before"]) == 10
    assert (entry["after"] == entry["labels"]).sum() >= (entry["before"] == entry["labels"]).sum()


def test_regression_fit_is_in_original_units(tmp_path):
    xs = np.linspace(400, 500, 30)
    ys = np.exp(-(((xs - 450) / 10) ** 2))
    rows = "\n".join(f"{a},{b}" for a, b in zip(xs, ys, strict=True))
    (tmp_path / "g.csv").write_text(f"x,y\n{rows}\n")
    text = textwrap.dedent(f"""
        name: gauss
        data: {{dataset: g, path: {tmp_path / "g.csv"}, regression: {{x: [x], y: [y]}}}}
        model: {{hidden: [8], activation: tanh, output: linear}}
        training: {{optimizer: {{name: sgd, learning_rate: 0.1}}, loss: mse, epochs: 5,
                    batch_size: 4}}
        """)
    run_study(parse_study(text, "g.yaml"), text, RunOptions(tmp_path / "results"))
    with open_study("gauss", tmp_path / "results") as ctx:
        outcome = compute(ctx, "regression_fit")
        (run,) = ctx.runs
        scaled_test_mse = run.metrics["test_loss"]
    (entry,) = outcome.result.items.values()
    assert entry["x"].min() == 400 and entry["x"].max() == 500
    assert len(entry["test_x"]) == 12
    span = ys.max() - ys.min()  # MSE in units = scaled MSE × span² (y scaled by min-max)
    assert entry["test_mse"] == pytest.approx(scaled_test_mse * span**2, rel=1e-4)
