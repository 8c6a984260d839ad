import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.svm import SVC

from mnistlab.data import Arrays, DataSpec, make_dataset, make_splits
from mnistlab.models.classic import NumpySpec, SVMSpec
from mnistlab.spec import parse_spec
from mnistlab.studies.records import RunConfig
from mnistlab.training.classic import auc_metrics, fit_numpy, fit_sklearn
from mnistlab.training.spec import TrainSpec


def _blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three classes of 16-pixel uint8 images around distinct centres."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centres = np.array([[40] * 8 + [200] * 8, [200] * 8 + [40] * 8, [120] * 16])
    x = np.clip(centres[y] + rng.normal(0, 40, (n, 16)), 0, 255).astype(np.uint8)
    return x, y.astype(np.int64)


def _data(validation=None):
    x, y = _blobs(150, 0)
    xt, yt = _blobs(60, 1)
    spec = DataSpec(dataset="mnist", validation=validation or {"kind": "tail", "n": 30})
    return make_splits(make_dataset("blobs", Arrays(x, y, xt, yt)), spec)


def test_auc_metrics_three_ways():
    y = np.array([0, 0, 1, 1, 2, 2])
    scores = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.3, 0.4, 0.3],
            [0.2, 0.7, 0.1],
            [0.1, 0.6, 0.3],
            [0.1, 0.2, 0.7],
            [0.5, 0.1, 0.4],
        ]
    )
    onehot = np.eye(3)[y]
    got = auc_metrics(y, scores, 3)
    assert got["auc"] == pytest.approx(roc_auc_score(onehot, scores, average="macro"))
    assert got["auc_micro"] == pytest.approx(roc_auc_score(onehot.ravel(), scores.ravel()))
    hard = np.eye(3)[scores.argmax(axis=1)]
    assert got["auc_hard"] == pytest.approx(roc_auc_score(onehot, hard, average="macro"))
    assert got["auc_hard"] < got["auc"]


def test_svm_is_scored_from_its_decision_function():
    data = _data()
    spec = SVMSpec(kernel="linear", C=1.0)
    outcome = fit_sklearn(spec, data, seed=0)
    reference = SVC(kernel="linear").fit(data.train.x.numpy(), data.train.y.numpy())
    xt, yt = data.test.x.numpy(), data.test.y.numpy()
    assert outcome.score_source == "decision"
    np.testing.assert_allclose(outcome.scores["test"], reference.decision_function(xt))
    assert outcome.metrics["test_accuracy"] == pytest.approx(reference.score(xt, yt))
    assert outcome.metrics["test_accuracy"] > 0.9
    assert outcome.metrics["test_auc"] == pytest.approx(
        roc_auc_score(np.eye(3)[yt], reference.decision_function(xt))
    )
    assert {"accuracy", "val_accuracy", "auc_hard", "val_auc", "fit_seconds"} <= set(
        outcome.metrics
    )


def test_forest_gives_probabilities_and_is_seeded():
    data = _data()
    model = parse_spec(
        RunConfig, {"model": {"kind": "sklearn", "estimator": "random_forest", "n_estimators": 5}}
    ).model
    a, b = fit_sklearn(model, data, seed=4), fit_sklearn(model, data, seed=4)
    assert a.score_source == "probability"
    np.testing.assert_allclose(a.scores["test"].sum(axis=1), 1.0)
    np.testing.assert_array_equal(a.scores["test"], b.scores["test"])


def test_folds_skip_the_test_split():
    outcome = fit_sklearn(SVMSpec(), _data(), seed=0, evaluate_test=False)
    assert "test" not in outcome.scores
    assert not any(k.startswith("test_") for k in outcome.metrics)


def test_numpy_engine_trains_with_history_and_scores():
    data = _data()
    training = TrainSpec(optimizer={"name": "sgd", "learning_rate": 0.5}, epochs=5, batch_size=10)
    spec = NumpySpec(hidden=(8,), kernel_initializer={"name": "random_normal", "stddev": 1.0})
    outcome = fit_numpy(spec, training, data, seed=0)
    assert set(outcome.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 5 for v in outcome.history.values())
    assert outcome.history["loss"][-1] < outcome.history["loss"][0]
    assert outcome.metrics["test_accuracy"] > 0.9
    assert outcome.metrics["test_auc"] > 0.95
    assert outcome.scores["test_before"].shape == (60, 3)
    assert outcome.weights is not None
    assert outcome.weights["W1"].shape == (8, 16)
    again = fit_numpy(spec, training, data, seed=0)
    assert again.history == outcome.history
