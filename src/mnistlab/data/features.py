"""Feature pipelines: PCA, random-forest pixel selection and standardisation before any model.

Each step is fitted on the training split only (after scaling, on the rows the model will
see) and then applied to every split, in the order the study lists them. A step that cannot
fit the data (more PCA components than features or rows, more pixels than there are) is a
one-line `SpecError` naming the step's field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, NonNegativeInt, PositiveInt

from mnistlab.errors import SpecError
from mnistlab.spec import Spec

# --- specs ---


class PCAStep(Spec):
    """scikit-learn's PCA: `n_components` as a count, or as the variance fraction to keep.

    A fraction f keeps the smallest k whose cumulative explained variance ratio is >= f
    (154 components for 0.95 on MNIST / 255).
    """

    kind: Literal["pca"] = "pca"
    n_components: PositiveInt | Annotated[float, Field(gt=0, lt=1)] = Field(
        description="components to keep (an integer), or the fraction of variance (0 < f < 1)"
    )
    whiten: bool = False
    seed: NonNegativeInt = Field(0, description="random_state of the randomized solvers")


class ForestSelectStep(Spec):
    """Keep the `k` pixels a random forest finds most important (impurity importances).

    The forest (scikit-learn's RandomForestClassifier, `n_estimators` trees, `seed`) is fitted
    on the training split's rows and labels; the kept pixels stay in their original order.
    """

    kind: Literal["forest_select"] = "forest_select"
    k: PositiveInt = Field(description="pixels kept")
    n_estimators: PositiveInt = 100
    seed: NonNegativeInt = 42
    n_jobs: PositiveInt | None = Field(None, description="trees fitted at once (None: one)")


class StandardizeStep(Spec):
    """scikit-learn's StandardScaler: per feature, population std; zero variance gets scale 1."""

    kind: Literal["standardize"] = "standardize"


FeatureStep = Annotated[PCAStep | ForestSelectStep | StandardizeStep, Field(discriminator="kind")]
"""One feature step, told apart by `kind`."""

# --- fitted steps ---


@dataclass
class FittedStep:
    """A step fitted on the training split: how it maps rows, and what it learnt.

    `info` holds what the figures need: for pca `explained_variance_ratio` (k,) and
    `n_components`; for forest_select `importances` (D,) and `selected` (k,) pixel indices.
    """

    kind: str
    transform: object  # callable (N, D) float64 -> (N, D') float64
    info: dict[str, np.ndarray | int | float] = field(default_factory=dict)


def fit_steps(
    steps: tuple[FeatureStep, ...] | list[FeatureStep], x: np.ndarray, y: np.ndarray
) -> list[FittedStep]:
    """Fit each step in turn on the training rows (each on the output of the ones before).

    Parameters
    ----------
    steps : the study's `data.features`.
    x : (N, D) training rows, as the model would see them.
    y : (N,) their class ids (the forest needs them).

    Returns
    -------
    list of FittedStep, one per step.

    Raises
    ------
    SpecError
        A step cannot fit: `data.features[i].n_components` or `.k` too large.
    """
    fitted = []
    rows = np.asarray(x, dtype=np.float64)
    for i, step in enumerate(steps):
        one = _fit(step, rows, y, f"data.features[{i}]")
        rows = one.transform(rows)  # type: ignore[operator]
        fitted.append(one)
    return fitted


def check_steps(steps: tuple[FeatureStep, ...] | list[FeatureStep], n_features: int) -> None:
    """Before reading any rows: each step's size must fit the features it will receive.

    Raises
    ------
    SpecError
        `data.features[i].n_components` or `.k` larger than the features reaching step i.
    """
    d = n_features
    for i, step in enumerate(steps):
        where = f"data.features[{i}]"
        if isinstance(step, PCAStep) and isinstance(step.n_components, int):
            if step.n_components > d:
                raise SpecError(
                    f"{where}.n_components: {step.n_components} components asked of {d} features"
                )
            d = step.n_components
        elif isinstance(step, ForestSelectStep):
            if step.k > d:
                raise SpecError(f"{where}.k: {step.k} pixels asked of {d} features")
            d = step.k


def apply_steps(fitted: list[FittedStep], x: np.ndarray) -> np.ndarray:
    """Map rows (N, D) through the fitted steps; float64 (N, D')."""
    rows = np.asarray(x, dtype=np.float64)
    for step in fitted:
        rows = step.transform(rows)  # type: ignore[operator]
    return rows


def _fit(step: FeatureStep, x: np.ndarray, y: np.ndarray, where: str) -> FittedStep:
    n, d = x.shape
    if isinstance(step, PCAStep):
        from sklearn.decomposition import PCA

        count = step.n_components
        if isinstance(count, int) and count > min(n, d):
            raise SpecError(
                f"{where}.n_components: {count} components asked of {n} rows x {d} features "
                f"(at most {min(n, d)})"
            )
        pca = PCA(n_components=count, whiten=step.whiten, random_state=step.seed).fit(x)
        info = {
            "explained_variance_ratio": pca.explained_variance_ratio_,
            "n_components": int(pca.n_components_),
        }
        return FittedStep("pca", pca.transform, info)
    if isinstance(step, ForestSelectStep):
        from sklearn.ensemble import RandomForestClassifier

        if step.k > d:
            raise SpecError(f"{where}.k: {step.k} pixels asked of {d} features")
        forest = RandomForestClassifier(
            n_estimators=step.n_estimators, random_state=step.seed, n_jobs=step.n_jobs
        ).fit(x, y)
        importances = forest.feature_importances_
        # the k largest, ties to the lower index; kept in pixel order
        selected = np.sort(np.argsort(-importances, kind="stable")[: step.k])
        return FittedStep(
            "forest_select",
            lambda rows: rows[:, selected],
            {"importances": importances, "selected": selected},
        )
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    scale = np.where(std == 0.0, 1.0, std)
    return FittedStep("standardize", lambda rows: (rows - mean) / scale, {})
