"""Specs of the models that are not torch networks: scikit-learn estimators and the NumPy MLP.

`kind: sklearn` models are told apart by `estimator` (logistic, svm, random_forest, knn);
each takes only the options its scikit-learn class has, under scikit-learn's own names and
defaults, so an option the chosen estimator does not have is a one-line error naming it.
`kind: numpy` is the from-scratch engine of `models.numpy_mlp`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PositiveFloat,
    PositiveInt,
)

from mnistlab.models.components import GlorotUniform, InitializerSpec, Zeros
from mnistlab.spec import Spec

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

# --- scikit-learn estimators ---

ScoreSource = Literal["auto", "probability", "decision"]


class _SklearnBase(Spec):
    kind: Literal["sklearn"] = "sklearn"
    scores: ScoreSource = Field(
        "auto",
        description="ROC scores: auto = probabilities when the estimator has them, "
        "else the decision function",
    )


class LogisticSpec(_SklearnBase):
    """Softmax (multinomial logistic) regression: scikit-learn's LogisticRegression."""

    estimator: Literal["logistic"] = "logistic"
    C: PositiveFloat = Field(1.0, description="inverse L2 strength")
    max_iter: PositiveInt = 100
    tol: PositiveFloat = 1e-4


class SVMSpec(_SklearnBase):
    """A support-vector classifier: scikit-learn's SVC (one-vs-one inside, no probabilities)."""

    estimator: Literal["svm"] = "svm"
    kernel: Literal["linear", "poly", "rbf", "sigmoid"] = "rbf"
    C: PositiveFloat = 1.0
    gamma: Literal["scale", "auto"] | PositiveFloat = Field(
        "scale", description="scale = 1/(features·Var x); auto = 1/features"
    )
    degree: PositiveInt = Field(3, description="poly kernel only")
    coef0: float = Field(0.0, description="poly and sigmoid kernels")
    tol: PositiveFloat = 1e-3
    max_iter: int = Field(-1, ge=-1, description="-1: no limit")


class RandomForestSpec(_SklearnBase):
    """scikit-learn's RandomForestClassifier, seeded by the run's seed."""

    estimator: Literal["random_forest"] = "random_forest"
    n_estimators: PositiveInt = 100
    max_depth: PositiveInt | None = None
    max_features: Literal["sqrt", "log2"] | PositiveInt | None = "sqrt"
    min_samples_leaf: PositiveInt = 1
    bootstrap: bool = True


class KNNSpec(_SklearnBase):
    """scikit-learn's KNeighborsClassifier."""

    estimator: Literal["knn"] = "knn"
    n_neighbors: PositiveInt = 5
    weights: Literal["uniform", "distance"] = "uniform"
    p: PositiveFloat = Field(2.0, description="Minkowski power: 2 Euclidean, 1 Manhattan")


SklearnModel = LogisticSpec | SVMSpec | RandomForestSpec | KNNSpec
"""Any scikit-learn model spec (the plain union; `SklearnSpec` is the validating type)."""

_ESTIMATORS = (LogisticSpec, SVMSpec, RandomForestSpec, KNNSpec)
ESTIMATOR_NAMES = tuple(c.model_fields["estimator"].default for c in _ESTIMATORS)


def _options_of(value: Any) -> Any:
    """An estimator's unknown option is named with the valid ones, before the union says less."""
    if isinstance(value, dict):
        name = value.get("estimator")
        if name is None:
            raise ValueError(
                f"a sklearn model needs an estimator, one of: {', '.join(ESTIMATOR_NAMES)}"
            )
        if name not in ESTIMATOR_NAMES:
            raise ValueError(
                f"unknown estimator {name!r}, expected one of: {', '.join(ESTIMATOR_NAMES)}"
            )
        spec = _ESTIMATORS[ESTIMATOR_NAMES.index(name)]
        unknown = [k for k in value if k not in spec.model_fields]
        if unknown:
            valid = ", ".join(k for k in spec.model_fields if k not in ("kind", "estimator"))
            raise ValueError(f"{name} has no option {unknown[0]!r}; its options: {valid}")
    return value


SklearnSpec = Annotated[
    Annotated[
        LogisticSpec | SVMSpec | RandomForestSpec | KNNSpec, Field(discriminator="estimator")
    ],
    BeforeValidator(_options_of),
]
"""A scikit-learn classifier, told apart by `estimator`."""


def build_estimator(spec: SklearnModel, seed: int) -> BaseEstimator:
    """The scikit-learn estimator a spec describes, seeded with `seed` where it draws.

    Parameters
    ----------
    spec : LogisticSpec, SVMSpec, RandomForestSpec or KNNSpec
    seed : the run's seed (random forest's random_state; SVC and k-NN draw nothing).

    Returns
    -------
    An unfitted scikit-learn classifier.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    options = spec.model_dump(exclude={"kind", "estimator", "scores"})
    if spec.estimator == "logistic":
        return LogisticRegression(**options)
    if spec.estimator == "svm":
        return SVC(**options)
    if spec.estimator == "random_forest":
        return RandomForestClassifier(**options, random_state=seed)
    return KNeighborsClassifier(**options)


# --- the NumPy engine ---


class NumpySpec(Spec):
    """A study model trained by the from-scratch NumPy engine (`kind: numpy`).

    Trains with the study's `training` spec: SGD (learning rate, momentum; no Nesterov),
    `epochs`, `batch_size`, `shuffle`; loss categorical / sparse cross-entropy or mse.
    """

    kind: Literal["numpy"] = "numpy"
    hidden: tuple[PositiveInt, ...] = Field(
        (100,), description="units of each hidden layer; empty = softmax regression"
    )
    activation: Literal["sigmoid", "relu", "tanh"] = "sigmoid"
    output: Literal["softmax", "linear"] = "softmax"
    kernel_initializer: InitializerSpec = Field(
        GlorotUniform(), description="every kernel, output included (coursework: N(0, 1))"
    )
    bias_initializer: InitializerSpec = Zeros()
    dtype: Literal["float32", "float64"] = Field(
        "float64", description="the engine's arithmetic; float64 for gradient checks"
    )


__all__ = [
    "ESTIMATOR_NAMES",
    "KNNSpec",
    "LogisticSpec",
    "NumpySpec",
    "RandomForestSpec",
    "SVMSpec",
    "SklearnModel",
    "SklearnSpec",
    "build_estimator",
]
