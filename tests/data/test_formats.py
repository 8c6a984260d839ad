"""Tests of data/formats.py: IDX folders, .npz and .csv of your own data, digits' CSV."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from mnistlab.data.formats import (
    as_images,
    as_labels,
    detect_format,
    parse_digits,
    read_csv,
    read_idx_folder,
    read_npz,
)
from mnistlab.data.idx import write_idx
from mnistlab.errors import DataError

from .synthetic import toy_arrays, write_idx_set


def test_detect_format(tmp_path: Path) -> None:
    assert detect_format(tmp_path) == "idx"
    assert detect_format(tmp_path / "a.npz") == "npz"
    assert detect_format(tmp_path / "a.CSV") == "csv"
    assert detect_format(tmp_path / "a.csv.gz") == "csv"
    assert detect_format(tmp_path / "a.txt", "csv") == "csv"
    with pytest.raises(DataError, match=r"a.txt: cannot tell the format"):
        detect_format(tmp_path / "a.txt")


def test_idx_folder_with_test_names_and_raw_files(tmp_path: Path) -> None:
    arrays = toy_arrays()
    write_idx(tmp_path / "train-images.idx3-ubyte", arrays.x_train)
    write_idx(tmp_path / "train-labels.idx1-ubyte", arrays.y_train.astype(np.uint8))
    write_idx(tmp_path / "test-images-idx3-ubyte.gz", arrays.x_test)
    write_idx(tmp_path / "test-labels-idx1-ubyte.gz", arrays.y_test.astype(np.uint8))
    read = read_idx_folder(tmp_path)
    for got, want in zip(read, arrays, strict=True):
        np.testing.assert_array_equal(got, want)
    assert read.y_train.dtype == np.int64


def test_idx_folder_train_only_and_missing_labels(tmp_path: Path) -> None:
    write_idx_set(tmp_path, toy_arrays())
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / name).unlink()
    assert read_idx_folder(tmp_path).x_test is None
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"no train-images-idx3-ubyte.* and train-labels"):
        read_idx_folder(tmp_path)


def test_idx_folder_count_mismatch(tmp_path: Path) -> None:
    arrays = toy_arrays()
    write_idx_set(tmp_path, arrays)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(DataError, match=r"count mismatch: 6 images but 5 labels"):
        read_idx_folder(tmp_path)


def test_npz_train_and_test(tmp_path: Path) -> None:
    arrays = toy_arrays()
    path = tmp_path / "d.npz"
    np.savez(path, **arrays._asdict())
    read = read_npz(path)
    for got, want in zip(read, arrays, strict=True):
        np.testing.assert_array_equal(got, want)


def test_npz_x_y_is_training_only_and_converts_integral_floats(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.array([[[0.0, 255.0]], [[3.0, 4.0]]]), y=np.array([[1], [0]], np.int32))
    read = read_npz(path)
    assert read.x_train.dtype == np.uint8 and read.x_train.shape == (2, 1, 2)
    assert read.y_train.tolist() == [1, 0] and read.y_train.dtype == np.int64
    assert read.x_test is None and read.y_test is None


def test_npz_errors(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, images=np.zeros((2, 2, 2)), labels=np.zeros(2))
    with pytest.raises(
        DataError,
        match=re.escape(
            "expected keys x_train, y_train[, x_test, y_test] or x, y; found ['images', 'labels']"
        ),
    ):
        read_npz(path)
    np.savez(path, x=np.full((2, 2, 2), 0.5), y=np.zeros(2))
    with pytest.raises(
        DataError,
        match=r"images must hold integer pixel values 0..255, got float64 in \[0.5, 0.5\]",
    ):
        read_npz(path)
    np.savez(path, x=np.zeros((3, 2, 2), np.uint8), y=np.zeros(2))
    with pytest.raises(DataError, match=r"d.npz\[x, y\]: count mismatch: 3 images but 2 labels"):
        read_npz(path)
    (tmp_path / "bad.npz").write_text("not a zip")
    with pytest.raises(DataError, match=r"bad.npz: cannot read as .npz"):
        read_npz(tmp_path / "bad.npz")


def test_csv_header_and_named_label_column(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("p0,p1,p2,p3,label\n0,1,2,3,7\n255,0,0,9,2\n")
    read = read_csv(path, "label")
    assert read.x_train.shape == (2, 2, 2)  # 4 pixels: 2x2 images
    assert read.x_train[1].tolist() == [[255, 0], [0, 9]]
    assert read.y_train.tolist() == [7, 2]


def test_csv_no_header_first_column_and_non_square(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("1,10,20,30\n0,40,50,60\n")
    read = read_csv(path)
    assert read.y_train.tolist() == [1, 0]
    assert read.x_train.shape == (2, 3) and read.x_train.dtype == np.uint8
    assert read_csv(path, -1).y_train.tolist() == [30, 60]


def test_csv_errors(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("1,10,20\n0,40,50\n")
    with pytest.raises(DataError, match=r"label_column 'label' needs a header line"):
        read_csv(path, "label")
    with pytest.raises(DataError, match=r"label_column 3 outside the 3 columns"):
        read_csv(path, 3)
    path.write_text("a,b\n1,x\n")
    with pytest.raises(DataError, match=r"not a numeric CSV"):
        read_csv(path)


def test_digits_csv_split() -> None:
    rows = [",".join(map(str, [i % 17] * 64 + [i % 10])) for i in range(20)]
    read = parse_digits("\n".join(rows).encode(), test_rows=5)
    assert read.x_train.shape == (15, 8, 8) and read.x_test.shape == (5, 8, 8)
    assert read.y_test.tolist() == [5, 6, 7, 8, 9]
    assert int(read.x_train.max()) == 14


def test_labels_checks() -> None:
    with pytest.raises(DataError, match=r"labels must be >= 0, got -1"):
        as_labels(np.array([0, -1]), "src")
    with pytest.raises(DataError, match=r"labels must be integer class ids"):
        as_labels(np.array([0.5]), "src")
    with pytest.raises(
        DataError, match=r"images must be \(N, H, W\) or \(N, D\) with N > 0, got \(3,\)"
    ):
        as_images(np.zeros(3), "src")
    assert as_images(np.zeros((2, 3, 3, 1), np.uint8), "src").shape == (2, 3, 3)
