import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier

from mnistlab.data import Arrays, DataSpec, make_dataset, make_splits
from mnistlab.data.features import ForestSelectStep, PCAStep, check_steps, fit_steps
from mnistlab.errors import SpecError
from mnistlab.spec import parse_spec


def _dataset():
    rng = np.random.default_rng(0)
    y = np.arange(120) % 3
    base = rng.integers(0, 60, (120, 6, 6))
    base[:, 1, :] += (y * 60)[:, None]  # row 1 of the image carries the class
    x = base.astype(np.uint8)
    return make_dataset("toy", Arrays(x, y.astype(np.int64), x[:30], y[:30].astype(np.int64)))


def _split(features, **extra):
    spec = DataSpec(dataset="mnist", features=features, **extra)
    return make_splits(_dataset(), spec)


def test_pca_variance_fraction_is_fitted_on_the_training_split_only():
    data = _split([{"kind": "pca", "n_components": 0.9}], validation={"kind": "tail", "n": 20})
    train_rows = _dataset().x_train[:100].reshape(100, -1) / 255.0
    pca = PCA(0.9).fit(train_rows)
    k = int(np.searchsorted(np.cumsum(pca.explained_variance_ratio_), 0.9) + 1)
    assert data.input_shape == (k,) == (pca.n_components_,)
    assert data.features[0].info["n_components"] == k
    val_rows = _dataset().x_train[100:].reshape(20, -1) / 255.0
    np.testing.assert_allclose(data.val.x.numpy(), pca.transform(val_rows), atol=1e-5)
    assert data.test.x.shape == (30, k)


def test_forest_keeps_the_k_most_important_pixels_in_order():
    data = _split([{"kind": "forest_select", "k": 5, "n_estimators": 10, "seed": 1}])
    rows = _dataset().x_train.reshape(120, -1) / 255.0
    forest = RandomForestClassifier(n_estimators=10, random_state=1).fit(rows, _dataset().y_train)
    expected = np.sort(np.argsort(-forest.feature_importances_, kind="stable")[:5])
    info = data.features[0].info
    np.testing.assert_array_equal(info["selected"], expected)
    np.testing.assert_allclose(info["importances"], forest.feature_importances_)
    assert set(expected) & set(range(6, 12))  # the pixels of row 1 carry the class
    np.testing.assert_allclose(data.train.x.numpy(), rows[:, expected], atol=1e-6)


def test_standardize_after_pca():
    data = _split([{"kind": "pca", "n_components": 4}, {"kind": "standardize"}])
    x = data.train.x.numpy().astype(np.float64)
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=0), 1, atol=1e-5)
    assert data.input_shape == (4,)


def test_steps_too_large_for_their_input_are_named():
    with pytest.raises(SpecError, match=r"^data.features\[1\].k: 9 pixels asked of 8 features$"):
        check_steps((PCAStep(n_components=8), ForestSelectStep(k=9)), 36)
    with pytest.raises(SpecError, match=r"data.features\[0\].n_components: 40 components asked"):
        check_steps((PCAStep(n_components=40),), 36)
    with pytest.raises(SpecError, match=r"of 3 rows x 36 features \(at most 3\)"):
        fit_steps((PCAStep(n_components=5),), np.zeros((3, 36)), np.zeros(3, dtype=int))


def test_feature_steps_need_flat_rows():
    with pytest.raises(SpecError, match="features: feature steps work on flattened rows"):
        parse_spec(DataSpec, {"features": [{"kind": "standardize"}], "flatten": False})


def test_no_steps_leave_the_dump_unchanged():
    dumped = DataSpec().model_dump(mode="json")
    assert "features" not in dumped
    assert DataSpec(features=[{"kind": "standardize"}]).model_dump(mode="json")["features"] == [
        {"kind": "standardize"}
    ]
