"""The vendored MNIST files in the checkout's data/mnist: the properties its README checks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from mnistlab.data import Dataset, DataSpec, make_splits, read_dataset, verify_dataset

MNIST_DIR = Path(__file__).resolve().parents[2] / "data" / "mnist"
pytestmark = [
    pytest.mark.mnist,
    pytest.mark.skipif(not MNIST_DIR.is_dir(), reason="data/mnist is not in this checkout"),
]


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    """MNIST read once for the module, from the checkout's folder explicitly."""
    return read_dataset(DataSpec(), MNIST_DIR, download=False)


def _idx_md5(array: np.ndarray) -> str:
    """MD5 of the uncompressed IDX file the array was read from (header + bytes)."""
    header = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return hashlib.md5(header + array.tobytes()).hexdigest()


def test_shapes_and_dtypes(mnist: Dataset) -> None:
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_test.shape == (10000, 28, 28)
    assert mnist.x_train.dtype == np.uint8 and mnist.y_train.dtype == np.int64
    assert mnist.source == str(MNIST_DIR)


def test_uncompressed_md5(mnist: Dataset) -> None:
    assert _idx_md5(mnist.x_train) == "6bbc9ace898e44ae57da46a324031adb"
    assert _idx_md5(mnist.x_test) == "2646ac647ad5339dbf082846283269ea"


def test_first_labels_and_class_counts(mnist: Dataset) -> None:
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(mnist.y_train).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert np.bincount(mnist.y_test).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]


def test_verify_reports_all_ok() -> None:
    report = verify_dataset("mnist", MNIST_DIR)
    assert report.ok
    assert [f.status for f in report.files] == ["ok"] * 4


def test_keras_split_of_real_mnist(mnist: Dataset) -> None:
    data = make_splits(mnist, DataSpec(validation={"kind": "fraction", "fraction": 0.1}))
    assert (len(data.train), len(data.val or []), len(data.test or [])) == (54000, 6000, 10000)
    assert data.val is not None and data.val.y[:3].tolist() == mnist.y_train[54000:54003].tolist()
    assert data.train.x.dtype == torch.float32 and float(data.train.x.max()) == 1.0
