import pytest

from mnistlab.errors import SpecError
from mnistlab.models.classic import SVMSpec, build_estimator
from mnistlab.spec import parse_spec
from mnistlab.studies.records import RunConfig


def _model_error(model: dict) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(RunConfig, {"model": model})
    return str(info.value)


def test_an_option_the_estimator_lacks_is_named_with_the_valid_ones():
    message = _model_error({"kind": "sklearn", "estimator": "svm", "n_estimators": 10})
    assert message == (
        "model: svm has no option 'n_estimators'; "
        "its options: scores, kernel, C, gamma, degree, coef0, tol, max_iter"
    )


def test_unknown_estimator_and_bad_kernel():
    assert _model_error({"kind": "sklearn", "estimator": "tree"}) == (
        "model: unknown estimator 'tree', expected one of: logistic, svm, random_forest, knn"
    )
    assert _model_error({"kind": "sklearn", "estimator": "svm", "kernel": "cubic"}) == (
        "model.kernel: Input should be 'linear', 'poly', 'rbf' or 'sigmoid', got 'cubic'"
    )


def test_numpy_kind_needs_sgd():
    message = _model_error({"kind": "numpy"})  # RunConfig's default optimizer is rmsprop
    assert message == "training: the numpy engine trains with plain or momentum sgd, not rmsprop"


def test_estimators_get_their_options_and_seed():
    svc = build_estimator(SVMSpec(kernel="poly", degree=2, gamma="auto", C=10), seed=3)
    assert (svc.kernel, svc.degree, svc.gamma, svc.C) == ("poly", 2, "auto", 10.0)
    config = RunConfig.model_validate(
        {"model": {"kind": "sklearn", "estimator": "random_forest", "n_estimators": 7}}
    )
    forest = build_estimator(config.model, seed=42)
    assert (forest.n_estimators, forest.random_state, forest.max_features) == (7, 42, "sqrt")
    knn = build_estimator(
        RunConfig.model_validate({"model": {"kind": "sklearn", "estimator": "knn"}}).model, 0
    )
    assert knn.n_neighbors == 5


def test_numpy_kind_does_not_clip_gradients():
    message = _model_error_with(
        {"kind": "numpy"}, {"optimizer": {"name": "sgd", "learning_rate": 0.1, "clipnorm": 1.0}}
    )
    assert message == "training: the numpy engine does not clip gradients (clipnorm)"


def _model_error_with(model: dict, training: dict) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(RunConfig, {"model": model, "training": training})
    return str(info.value)
