"""scikit-learn models as study runs: cross-validation through the runner equals GridSearchCV."""

import textwrap

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.svm import SVC

from mnistlab.studies.loading import parse_study
from mnistlab.studies.options import RunOptions
from mnistlab.studies.results_folder import open_store
from mnistlab.studies.runner import run_study
from mnistlab.studies.stats import cv_summary


def test_sklearn_cross_validation_equals_grid_search_cv(tmp_path):
    """Stratified folds as runs give GridSearchCV's per-setting means; the best is refitted
    on the data `refit_set` names (the coursework searched 500 images, refitted on 30,000)."""
    text = textwrap.dedent("""
        name: svm-cv
        data: {dataset: digits, scaling: divide-255, train_subset: {kind: head, n: 200}}
        model: {kind: sklearn, estimator: svm}
        cross_validation:
          folds: 3
          stratified: true
          grid: {model.C: [0.1, 10], model.gamma: [0.01, auto]}
          refit_set: {data.train_subset: {kind: head, n: 300}}
        """)
    spec = parse_study(text, "svm-cv.yaml")
    outcome = run_study(spec, text, RunOptions(tmp_path))
    assert outcome.counts == {"done": 1 + 12 + 1}  # the run, 4 settings x 3 folds, the refit
    digits = load_digits()
    x, y = digits.data[:200] / 255.0, digits.target[:200]
    search = GridSearchCV(SVC(), {"C": [0.1, 10], "gamma": [0.01, "auto"]}, cv=3).fit(x, y)
    with open_store(tmp_path) as store:
        runs = store.runs("svm-cv")
        rows = cv_summary(runs, "val_accuracy", params=["model.C", "model.gamma"])
        refit = next(r for r in runs if r.role == "cv-refit")
        scores = store.artifacts(refit.run_id)["scores"].path
    got = {(r.setting["model.C"], r.setting["model.gamma"]): r for r in rows}
    for params, mean, std in zip(
        search.cv_results_["params"],
        search.cv_results_["mean_test_score"],
        search.cv_results_["std_test_score"],
        strict=True,
    ):
        row = got[(params["C"], params["gamma"])]
        assert row.stats.mean == pytest.approx(mean, abs=1e-12)
        assert row.stats.std == pytest.approx(std, abs=1e-12)
    best = search.best_params_
    assert refit.labels["model.C"] == best["C"] and refit.labels["model.gamma"] == best["gamma"]
    assert refit.config["data"]["train_subset"] == {"kind": "head", "n": 300}  # refit_set
    assert next(r for r in rows if r.best).refit.run_id == refit.run_id
    assert 0 < refit.metrics["test_accuracy"] <= 1 and "test_auc_hard" in refit.metrics
    assert (tmp_path / scores).is_file()


def test_regression_study_stores_train_and_test_mse(tmp_path):
    xs = np.linspace(0, 1, 30)
    rows = "\n".join(f"{x},{x * x}" for x in xs)
    (tmp_path / "q.csv").write_text(f"x,y\n{rows}\n")
    text = textwrap.dedent(f"""
        name: quad
        data:
          dataset: quad
          path: {tmp_path / "q.csv"}
          regression: {{x: [x], y: [y], test_fraction: 0.3, split_seed: 1}}
        model: {{hidden: [16], activation: tanh, output: linear}}
        training: {{optimizer: {{name: sgd, learning_rate: 0.2}}, loss: mse, epochs: 60,
                    batch_size: 4}}
        repetitions: 2
        """)
    spec = parse_study(text, "quad.yaml")
    assert run_study(spec, text, RunOptions(tmp_path / "results")).counts == {"done": 2}
    with open_store(tmp_path / "results") as store:
        runs = store.runs("quad")
        history = store.history(runs[0].run_id)
    for run in runs:
        assert {"loss", "train_loss", "test_loss"} <= set(run.metrics)
        assert "accuracy" not in run.metrics
        assert run.metrics["test_loss"] < 0.05  # y = x² on [0, 1]; predicting the mean: ~0.09
    assert len(history["loss"]) == 60 and history["loss"][-1] < history["loss"][0]
