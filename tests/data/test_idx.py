"""Tests of data/idx.py: the IDX reader on good, truncated, corrupt and mismatched files."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest

from mnistlab.data.idx import check_pair, read_idx, read_idx_pair, write_idx
from mnistlab.errors import DataError

IMAGES = np.arange(3 * 2 * 2, dtype=np.uint8).reshape(3, 2, 2)


def _header(code: int, *dims: int) -> bytes:
    return bytes([0, 0, code, len(dims)]) + np.asarray(dims, dtype=">u4").tobytes()


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_reads_raw_and_gzip(tmp_path: Path, name: str) -> None:
    path = write_idx(tmp_path / name, IMAGES)
    array = read_idx(path)
    assert array.dtype == np.uint8
    assert array.shape == (3, 2, 2)
    np.testing.assert_array_equal(array, IMAGES)
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if name.endswith(".gz") else b"\x00\x00")


def test_reads_the_header_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    path.write_bytes(bytes.fromhex("00000801 00000003") + bytes([7, 2, 1]))
    np.testing.assert_array_equal(read_idx(path), [7, 2, 1])


def test_reads_big_endian_int32_and_float(tmp_path: Path) -> None:
    ints = np.array([[1, -2], [70000, 3]], dtype=np.int32)
    floats = np.array([0.5, -1.25], dtype=np.float64)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "i", ints)), ints)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "f.gz", floats)), floats)
    assert (tmp_path / "i").read_bytes()[:4] == bytes([0, 0, 0x0C, 2])


def test_truncated_data_names_file_and_sizes(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(_header(0x08, 3, 2, 2) + bytes(10))
    with pytest.raises(
        DataError,
        match=re.escape(
            f"{path}: truncated IDX data: header says 3x2x2 (12 bytes), the file holds 10"
        ),
    ):
        read_idx(path)


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "short"
    path.write_bytes(bytes([0, 0, 8, 3]) + bytes(5))
    with pytest.raises(DataError, match=r"truncated IDX header: 9 bytes, 3 dimensions need 16"):
        read_idx(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match=r"2 bytes, the header needs 4"):
        read_idx(path)


def test_truncated_gzip(tmp_path: Path) -> None:
    packed = gzip.compress(_header(0x08, 3, 2, 2) + IMAGES.tobytes())
    path = tmp_path / "cut.gz"
    path.write_bytes(packed[:-12])
    with pytest.raises(DataError, match=f"{re.escape(str(path))}: truncated gzip stream"):
        read_idx(path)


def test_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "bad.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + bytes(6) + b"not deflate at all")
    with pytest.raises(DataError, match=f"{re.escape(str(path))}: corrupt gzip stream"):
        read_idx(path)


def test_wrong_magic(tmp_path: Path) -> None:
    path = tmp_path / "image.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    with pytest.raises(DataError, match=f"{re.escape(str(path))}: wrong magic number 0x89504e47"):
        read_idx(path)


def test_unknown_type_code(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(_header(0x07, 1) + b"\x00")
    with pytest.raises(DataError, match=r"unknown IDX type code 0x07"):
        read_idx(path)


def test_wrong_count_extra_bytes(tmp_path: Path) -> None:
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(_header(0x08, 4) + bytes(6)))
    with pytest.raises(
        DataError,
        match=re.escape("IDX size mismatch: header says 4 (4 bytes), the file holds 6 (2 extra)"),
    ):
        read_idx(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nothing-here: cannot read"):
        read_idx(tmp_path / "nothing-here")


def test_pair_count_mismatch_names_both_files(tmp_path: Path) -> None:
    images = write_idx(tmp_path / "train-images-idx3-ubyte.gz", IMAGES)
    labels = write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([1, 2], dtype=np.uint8))
    with pytest.raises(
        DataError,
        match=re.escape(
            f"{images} / train-labels-idx1-ubyte: count mismatch: 3 images but 2 labels"
        ),
    ):
        read_idx_pair(images, labels)


def test_pair_reads_int64_labels(tmp_path: Path) -> None:
    images = write_idx(tmp_path / "i", IMAGES)
    labels = write_idx(tmp_path / "l", np.array([9, 0, 4], dtype=np.uint8))
    x, y = read_idx_pair(images, labels)
    assert x.shape == (3, 2, 2)
    assert y.dtype == np.int64
    assert y.tolist() == [9, 0, 4]


def test_pair_shape_checks() -> None:
    with pytest.raises(DataError, match=r"images must be \(N, H, W\) uint8, got \(3, 4\) uint8"):
        check_pair(IMAGES.reshape(3, 4), np.zeros(3, np.uint8), "src")
    with pytest.raises(DataError, match=r"labels must be \(N,\) integers, got \(3,\) float32"):
        check_pair(IMAGES, np.zeros(3, np.float32), "src")
