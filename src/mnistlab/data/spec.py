"""The data specification: which dataset, which subsets, which validation split, which scaling.

Subsets apply first (`train_subset` to the training source, `test_subset` to the test
source), then the validation split of the (subset) training rows, then scaling.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, NonNegativeInt, PositiveInt, model_validator

from mnistlab.data.features import FeatureStep
from mnistlab.data.registry import dataset_names, get_dataset
from mnistlab.data.regression import RegressionSpec
from mnistlab.spec import Spec

Fraction = Annotated[float, Field(gt=0, lt=1)]


def _off(value: object) -> bool:
    """A newer field at its default is left out of dumps, so run ids made before it hold."""
    return not value


# --- subsets ---


class SubsetBalanced(Spec):
    """The first `per_class` rows of each class, kept in their original order."""

    kind: Literal["balanced"] = "balanced"
    per_class: PositiveInt  # rows per class


class SubsetRandom(Spec):
    """`n` rows drawn with `seed`, kept in their original order.

    Without replacement unless `replace` (the coursework's draw: rows may repeat).
    """

    kind: Literal["random"] = "random"
    n: PositiveInt  # rows
    seed: NonNegativeInt = 0
    replace: bool = Field(  # left out of dumps when False, so earlier run ids stay the same
        False, exclude_if=_off, description="draw with replacement, as the coursework did"
    )


class SubsetHead(Spec):
    """The first `n` rows."""

    kind: Literal["head"] = "head"
    n: PositiveInt  # rows


def _subset_kind(value: object) -> object:
    """A subset written without `kind` takes the one its fields name: `{n: 2000}` the first
    2000 rows, `{n, seed}` a random draw, `{per_class: 100}` a balanced one (as `--set
    data.train_subset.n=2000` writes it)."""
    if not isinstance(value, dict) or "kind" in value:
        return value
    if "per_class" in value:
        return {"kind": "balanced", **value}
    random = any(key in value for key in ("seed", "replace"))
    return {"kind": "random" if random else "head", **value}


SubsetSpec = Annotated[
    SubsetBalanced | SubsetRandom | SubsetHead,
    Field(discriminator="kind"),
    BeforeValidator(_subset_kind),
]

# --- validation splits ---


class ValidationNone(Spec):
    """No validation data."""

    kind: Literal["none"] = "none"


class ValidationFraction(Spec):
    """Keras's `validation_split`: the last rows from split_at = int(n * (1 - fraction)) on."""

    kind: Literal["fraction"] = "fraction"
    fraction: Fraction  # of the training rows, in (0, 1)


class ValidationHead(Spec):
    """The first `n` training rows are the validation data."""

    kind: Literal["head"] = "head"
    n: PositiveInt  # rows


class ValidationTail(Spec):
    """The last `n` training rows are the validation data."""

    kind: Literal["tail"] = "tail"
    n: PositiveInt  # rows


class ValidationOnTest(Spec):
    """The test set doubles as validation data (as some coursework does); training keeps all."""

    kind: Literal["test"] = "test"


class ValidationRandom(Spec):
    """A seeded random validation split of `fraction` or `n` rows; both parts keep their order."""

    kind: Literal["random"] = "random"
    fraction: Fraction | None = None  # of the training rows; rounded as Keras does
    n: PositiveInt | None = None  # rows
    seed: NonNegativeInt = 0

    @model_validator(mode="after")
    def _one_size(self) -> ValidationRandom:
        if (self.fraction is None) == (self.n is None):
            raise ValueError("give exactly one of fraction or n")
        return self


class ValidationFold(Spec):
    """Fold `index` of `folds` contiguous, unshuffled folds is the validation data.

    As scikit-learn's KFold(shuffle=False), which GridSearchCV used on one-hot targets: the
    first n % folds folds hold one row more; training keeps the other rows, in order. With
    `stratified`, as StratifiedKFold(shuffle=False), which GridSearchCV uses for a classifier
    given class ids (scikit-learn's estimators).
    """

    kind: Literal["fold"] = "fold"
    folds: int = Field(ge=2)
    index: NonNegativeInt
    stratified: bool = Field(False, exclude_if=_off, description="StratifiedKFold's folds")

    @model_validator(mode="after")
    def _index_in_range(self) -> ValidationFold:
        if self.index >= self.folds:
            raise ValueError(f"index must be < folds ({self.folds}), got {self.index}")
        return self


ValidationSpec = Annotated[
    ValidationNone
    | ValidationFraction
    | ValidationHead
    | ValidationTail
    | ValidationOnTest
    | ValidationRandom
    | ValidationFold,
    Field(discriminator="kind"),
]

# --- the data spec ---


class DataSpec(Spec):
    """Which data, and how it becomes float32 train / val / test tensors.

    `dataset` is a registry name ("mnist", "fashion-mnist", "digits"); any other name is
    your own data and needs `path` (a folder of IDX files, an .npz or a .csv). For a
    registry name, `path` is the folder holding its files (checksums are still checked).
    """

    dataset: str = "mnist"
    path: Path | None = None  # folder (IDX) or file (.npz, .csv)
    format: Literal["auto", "idx", "npz", "csv"] = "auto"  # auto: folder -> idx, else suffix
    label_column: str | int = 0  # csv only: header name or 0-based column index
    train_subset: SubsetSpec | None = None
    test_subset: SubsetSpec | None = None
    validation: ValidationSpec = ValidationNone()
    scaling: Literal["none", "divide-255", "standardize", "minmax"] = "divide-255"
    scaler_fit: Literal["train", "per-split"] = "train"  # per-split leaks: coursework only
    flatten: bool = True  # x is (N, H*W) when True, (N, H, W) when False
    labels: Literal["sparse", "one-hot"] = "sparse"  # what Split.targets gives
    regression: RegressionSpec | None = Field(
        None,
        exclude_if=_off,
        description="a regression CSV at `path`: its x and y columns, scaling and split",
    )
    features: tuple[FeatureStep, ...] = Field(
        (),
        exclude_if=_off,
        description="steps fitted on the training split after scaling, e.g. "
        "[{kind: pca, n_components: 0.95}]; flattened data only",
    )

    @model_validator(mode="after")
    def _regression_needs_a_csv(self) -> DataSpec:
        if self.regression is None:
            return self
        if self.path is None:
            raise ValueError("regression: needs path, the CSV file holding its columns")
        if not isinstance(self.validation, ValidationNone | ValidationOnTest):
            raise ValueError(
                "validation: a regression dataset is split by regression.test_fraction; "
                "use validation kind none or test"
            )
        if self.features or self.train_subset or self.test_subset:
            raise ValueError("regression: features and subsets apply to image data only")
        return self

    @model_validator(mode="after")
    def _features_need_rows(self) -> DataSpec:
        if self.features and not self.flatten:
            raise ValueError("features: feature steps work on flattened rows; set flatten: true")
        return self

    @model_validator(mode="after")
    def _known_or_path(self) -> DataSpec:
        if self.dataset in dataset_names():
            kind = get_dataset(self.dataset).kind
            if kind == "idx" and self.format not in ("auto", "idx"):
                raise ValueError(
                    f"format: {self.dataset} is read from IDX files, got {self.format!r}; "
                    "name your own data differently to read it as npz or csv"
                )
            if kind == "digits" and self.format != "auto":
                raise ValueError(f"format: digits comes from scikit-learn, got {self.format!r}")
        elif self.path is None:
            known = ", ".join(dataset_names())
            raise ValueError(
                f"dataset: {self.dataset!r} is not a known dataset ({known}); "
                "give path for your own data"
            )
        return self

    @property
    def known(self) -> bool:
        """True when `dataset` is a registry name (its files are checksum-verified)."""
        return self.dataset in dataset_names()
