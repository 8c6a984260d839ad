"""Tests of data/pipeline.py: subsets, validation, scaling and dtypes of the splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mnistlab.data import Data, DataSpec, Split, load_data, make_dataset, make_splits
from mnistlab.data.dataset import Dataset
from mnistlab.data.formats import Arrays
from mnistlab.errors import SpecError
from mnistlab.spec import parse_spec

from .synthetic import toy_arrays


def _indexed(n_train: int = 10, n_test: int = 4) -> Dataset:
    """Image i of the training set is filled with i, of the test set with 100 + i."""
    x = np.repeat(np.arange(n_train, dtype=np.uint8), 4).reshape(n_train, 2, 2)
    t = np.repeat(np.arange(100, 100 + n_test, dtype=np.uint8), 4).reshape(n_test, 2, 2)
    return make_dataset("idx", Arrays(x, np.arange(n_train) % 2, t, np.arange(n_test) % 2))


def _splits(dataset: Dataset, **fields: object) -> Data:
    return make_splits(dataset, parse_spec(DataSpec, {"dataset": "x", "path": "x", **fields}))


def test_dtypes_shapes_and_targets() -> None:
    data = make_splits(make_dataset("toy", toy_arrays()), DataSpec(labels="one-hot"))
    assert data.train.x.dtype == torch.float32 and data.train.x.shape == (12, 16)
    assert data.train.y.dtype == torch.int64 and len(data.train) == 12
    assert data.train.targets.dtype == torch.float32 and data.train.targets.shape == (12, 3)
    assert data.train.targets[:4].argmax(dim=1).tolist() == [0, 1, 2, 0]
    assert (data.n_classes, data.input_shape, data.name, data.val) == (3, (16,), "toy", None)
    assert float(data.train.x.max()) <= 1.0
    square = make_splits(make_dataset("toy", toy_arrays()), DataSpec(flatten=False))
    assert square.train.x.shape == (12, 4, 4) and square.input_shape == (4, 4)
    assert square.test is not None and square.test.targets is square.test.y


def test_keras_fraction_takes_the_last_rows() -> None:
    data = _splits(_indexed(), validation={"kind": "fraction", "fraction": 0.3}, scaling="none")
    assert data.val is not None
    assert data.val.x[:, 0].tolist() == [7.0, 8.0, 9.0]
    assert data.train.x[:, 0].tolist() == [float(i) for i in range(7)]


def test_subsets_apply_before_the_validation_split() -> None:
    data = _splits(
        _indexed(),
        train_subset={"kind": "balanced", "per_class": 3},  # rows 0..5
        test_subset={"kind": "head", "n": 2},
        validation={"kind": "tail", "n": 2},
        scaling="none",
    )
    assert data.train.x[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert data.val is not None and data.val.x[:, 0].tolist() == [4.0, 5.0]
    assert data.test is not None and data.test.x[:, 0].tolist() == [100.0, 101.0]


def test_validation_on_test_shares_the_test_split() -> None:
    data = _splits(_indexed(), validation={"kind": "test"})
    assert data.val is data.test and len(data.train) == 10
    no_test = make_dataset("t", toy_arrays()._replace(x_test=None, y_test=None))
    with pytest.raises(SpecError, match=r"^validation: kind 'test' needs a test split, t has"):
        make_splits(no_test, DataSpec(validation={"kind": "test"}))
    with pytest.raises(SpecError, match=r"^test_subset: t has no test split$"):
        make_splits(no_test, DataSpec(test_subset={"kind": "head", "n": 1}))


def test_standardize_uses_training_statistics_only() -> None:
    # training rows 0..6 (mean 3, population std 2), validation rows 7..9, test 100..103
    data = _splits(
        _indexed(), validation={"kind": "fraction", "fraction": 0.3}, scaling="standardize"
    )
    assert data.val is not None and data.test is not None
    assert data.train.x[:, 0].tolist() == [-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5]
    assert data.val.x[:, 0].tolist() == [2.0, 2.5, 3.0]
    assert data.test.x[:, 0].tolist() == [48.5, 49.0, 49.5, 50.0]
    assert data.test.x.dtype == torch.float32


def test_per_split_scaler_warns_and_fits_each_split() -> None:
    with pytest.warns(UserWarning, match=r"per-split.*leak"):
        data = _splits(
            _indexed(),
            validation={"kind": "fraction", "fraction": 0.3},
            scaling="minmax",
            scaler_fit="per-split",
        )
    assert data.val is not None and data.test is not None
    assert data.val.x[:, 0].tolist() == [0.0, 0.5, 1.0]
    assert data.test.x[:, 0].tolist() == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])


def test_fingerprint_covers_content_and_split_fields_not_location() -> None:
    dataset = make_dataset("toy", toy_arrays())
    base = make_splits(dataset, DataSpec()).fingerprint
    assert base == make_splits(dataset, DataSpec(path=Path("/elsewhere"))).fingerprint
    assert base != make_splits(dataset, DataSpec(scaling="standardize")).fingerprint
    assert base != make_splits(make_dataset("toy", toy_arrays(seed=1)), DataSpec()).fingerprint
    assert len(base) == 64


def test_load_data_reads_own_npz(tmp_path: Path) -> None:
    path = tmp_path / "mine.npz"
    np.savez(path, **toy_arrays()._asdict())
    data = load_data(
        DataSpec(dataset="mine", path=path, validation={"kind": "head", "n": 2}), device="cpu"
    )
    assert (len(data.train), len(data.val or []), len(data.test or [])) == (10, 2, 6)
    assert data.train.x.device == torch.device("cpu")


def test_split_built_by_hand() -> None:
    split = Split(x=torch.zeros(3, 2), y=torch.tensor([0, 2, 1]), one_hot=True)
    assert len(split) == 3
    assert split.targets.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
