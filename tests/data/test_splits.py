"""Tests of data/splits.py: subsets and validation splits as row indices, Keras's arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from mnistlab.data.spec import (
    SubsetBalanced,
    SubsetHead,
    SubsetRandom,
    ValidationFold,
    ValidationFraction,
    ValidationHead,
    ValidationNone,
    ValidationOnTest,
    ValidationRandom,
    ValidationTail,
)
from mnistlab.data.splits import subset_rows, validation_rows
from mnistlab.errors import SpecError

LABELS = np.array([2, 0, 0, 1, 2, 0, 1, 1, 2, 0])  # class sizes: 0 -> 4, 1 -> 3, 2 -> 3


def test_keras_validation_split_is_the_last_rows() -> None:
    train, val = validation_rows(ValidationFraction(fraction=0.3), 10)
    assert train.tolist() == list(range(7))
    assert val is not None and val.tolist() == [7, 8, 9]


def test_keras_validation_split_rounds_as_keras_does() -> None:
    # 10 * (1 - 0.8) = 1.9999999999999996: Keras splits at row 1, leaving 9 validation rows
    train, val = validation_rows(ValidationFraction(fraction=0.8), 10)
    assert train.tolist() == [0]
    assert val is not None and len(val) == 9
    train, val = validation_rows(ValidationFraction(fraction=0.1), 60000)
    assert (len(train), val[0] if val is not None else None) == (54000, 54000)


def test_fraction_leaving_nothing_is_an_error() -> None:
    with pytest.raises(
        SpecError,
        match=r"^validation.fraction: 0.8 of 5 training rows puts the "
        r"split at row 0, leaving no training or no validation rows$",
    ):
        validation_rows(ValidationFraction(fraction=0.8), 5)


def test_head_tail_none_test() -> None:
    train, val = validation_rows(ValidationHead(n=3), 10)
    assert (train.tolist(), val.tolist() if val is not None else None) == (
        list(range(3, 10)),
        [0, 1, 2],
    )
    train, val = validation_rows(ValidationTail(n=3), 10)
    assert (train.tolist(), val.tolist() if val is not None else None) == (
        list(range(7)),
        [7, 8, 9],
    )
    for kind in (ValidationNone(), ValidationOnTest()):
        train, val = validation_rows(kind, 4)
        assert train.tolist() == [0, 1, 2, 3] and val is None
    with pytest.raises(
        SpecError, match=r"^validation.n: 10 validation rows must be < 10 training rows$"
    ):
        validation_rows(ValidationTail(n=10), 10)


def test_random_validation_is_seeded_disjoint_and_ordered() -> None:
    train, val = validation_rows(ValidationRandom(fraction=0.3, seed=1), 10)
    assert val is not None and len(val) == 3 and len(train) == 7
    assert sorted([*train, *val]) == list(range(10))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    again = validation_rows(ValidationRandom(fraction=0.3, seed=1), 10)[1]
    other = validation_rows(ValidationRandom(n=3, seed=2), 10)[1]
    assert again is not None and val.tolist() == again.tolist()
    assert other is not None and val.tolist() != other.tolist()
    with pytest.raises(
        SpecError, match=r"^validation.n: 10 validation rows; need between 1 and 9$"
    ):
        validation_rows(ValidationRandom(n=10), 10)


def test_balanced_takes_the_first_per_class_in_order() -> None:
    rows = subset_rows(SubsetBalanced(per_class=2), LABELS)
    assert rows.tolist() == [0, 1, 2, 3, 4, 6]
    assert np.bincount(LABELS[rows]).tolist() == [2, 2, 2]


def test_balanced_too_many_names_the_class() -> None:
    with pytest.raises(
        SpecError, match=r"^test_subset.per_class: 4 rows asked of class 1, which has 3$"
    ):
        subset_rows(SubsetBalanced(per_class=4), LABELS, "test_subset")


def test_random_subset_is_reproducible_and_ordered() -> None:
    rows = subset_rows(SubsetRandom(n=5, seed=7), LABELS)
    assert rows.tolist() == subset_rows(SubsetRandom(n=5, seed=7), LABELS).tolist()
    assert rows.tolist() != subset_rows(SubsetRandom(n=5, seed=8), LABELS).tolist()
    assert len(set(rows.tolist())) == 5 and np.all(np.diff(rows) > 0)


def test_head_subset_and_sizes() -> None:
    assert subset_rows(SubsetHead(n=3), LABELS).tolist() == [0, 1, 2]
    assert subset_rows(None, LABELS).tolist() == list(range(10))
    with pytest.raises(SpecError, match=r"^train_subset.n: 11 rows asked of a source of 10$"):
        subset_rows(SubsetRandom(n=11), LABELS)


def test_folds_are_contiguous_like_sklearn_kfold() -> None:
    from sklearn.model_selection import KFold

    from mnistlab.data.spec import ValidationFold

    for n, k in [(10, 3), (60000, 3), (7, 2)]:
        expected = list(KFold(n_splits=k, shuffle=False).split(np.zeros(n)))
        for index, (train, val) in enumerate(expected):
            got_train, got_val = validation_rows(ValidationFold(folds=k, index=index), n)
            np.testing.assert_array_equal(got_train, train)
            np.testing.assert_array_equal(got_val, val)


def test_fold_index_out_of_range_names_the_field() -> None:
    from mnistlab.data.spec import ValidationFold
    from mnistlab.spec import parse_spec

    with pytest.raises(SpecError, match="index must be < folds"):
        parse_spec(ValidationFold, {"folds": 3, "index": 3})


def test_stratified_folds_are_sklearn_stratified_kfold() -> None:
    from sklearn.model_selection import StratifiedKFold

    y = np.random.default_rng(0).integers(0, 3, 40)
    expected = list(StratifiedKFold(4).split(np.zeros(40), y))
    for index, (train, val) in enumerate(expected):
        fold = ValidationFold(folds=4, index=index, stratified=True)
        got_train, got_val = validation_rows(fold, 40, y)
        np.testing.assert_array_equal(got_train, train)
        np.testing.assert_array_equal(got_val, val)


def test_stratified_folds_need_enough_rows_of_every_class() -> None:
    y = np.array([0, 0, 0, 1, 1, 1, 2])
    with pytest.raises(SpecError, match="the smallest class has 1"):
        validation_rows(ValidationFold(folds=2, index=0, stratified=True), 7, y)


def test_random_subset_with_replacement_repeats_rows() -> None:
    y = np.zeros(50, dtype=np.int64)
    rows = subset_rows(SubsetRandom(n=50, seed=1, replace=True), y)
    assert len(rows) == 50
    assert len(np.unique(rows)) < 50  # 50 draws of 50 rows: repeats are all but certain
    assert np.all(np.diff(rows) >= 0)
    np.testing.assert_array_equal(rows, subset_rows(SubsetRandom(n=50, seed=1, replace=True), y))
