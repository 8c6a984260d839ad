"""Tests of data/dataset.py: reading specs into read-only uint8 datasets with fingerprints."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from mnistlab.data import DataSpec, SearchRoots, make_dataset, read_dataset, read_user_data
from mnistlab.data.dataset import array_fingerprint, decode_known
from mnistlab.data.idx import read_bytes
from mnistlab.data.registry import KnownDataset
from mnistlab.errors import DataError

from .synthetic import toy_arrays


def test_make_dataset_is_read_only_and_fingerprinted() -> None:
    arrays = toy_arrays()
    data = make_dataset("toy", arrays)
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    assert data.image_shape == (4, 4) and data.n_classes == 3
    with pytest.raises(ValueError, match=r"read-only"):
        data.x_train[0, 0, 0] = 1
    assert (
        data.fingerprint == array_fingerprint(arrays) == make_dataset("other", arrays).fingerprint
    )
    changed = arrays.x_train.copy()
    changed[0, 0, 0] ^= 1
    assert make_dataset("toy", arrays._replace(x_train=changed)).fingerprint != data.fingerprint
    assert len(data.fingerprint) == 64


def test_make_dataset_checks() -> None:
    arrays = toy_arrays()
    with pytest.raises(DataError, match=r"memory: train: label 2 >= 2 classes"):
        make_dataset("toy", arrays, n_classes=2)
    with pytest.raises(DataError, match=r"test images are \(3, 3\), train images \(4, 4\)"):
        make_dataset("toy", arrays._replace(x_test=np.zeros((6, 3, 3), np.uint8)))


def test_decode_known_fingerprints_from_registry_checksums(
    toy_source: tuple[Path, KnownDataset],
) -> None:
    folder, entry = toy_source
    contents = {f.name: read_bytes(folder / f"{f.name}.gz") for f in entry.files}
    data = decode_known(entry, contents, str(folder))
    np.testing.assert_array_equal(data.x_test, toy_arrays().x_test)
    assert data.y_test.tolist() == [0, 1, 2, 0, 1, 2]
    other = dataclasses.replace(
        entry, files=(dataclasses.replace(entry.files[0], sha256="0" * 64), *entry.files[1:])
    )
    assert decode_known(other, contents, str(folder)).fingerprint != data.fingerprint


def test_user_npz_through_the_spec(tmp_path: Path) -> None:
    path = tmp_path / "mine.npz"
    np.savez(path, **toy_arrays()._asdict())
    data = read_dataset(DataSpec(dataset="mine", path=path))
    assert (data.name, len(data.x_train), len(data.x_test)) == ("mine", 12, 6)
    assert data.source == str(path)
    with pytest.raises(DataError, match=r"nope.npz: no such file or folder"):
        read_user_data("mine", tmp_path / "nope.npz")


def test_digits_offline(roots: SearchRoots) -> None:
    data = read_dataset(DataSpec(dataset="digits"), roots=roots, download=False)
    assert data.x_train.shape == (1437, 8, 8) and data.x_test.shape == (360, 8, 8)
    assert data.x_train.dtype == np.uint8 and int(data.x_train.max()) == 16
    assert data.y_train[:10].tolist() == list(range(10))
    assert np.bincount(data.y_test).tolist() == [35, 36, 35, 37, 37, 37, 37, 36, 33, 37]


def test_spec_path_must_hold_the_known_dataset(tmp_path: Path, roots: SearchRoots) -> None:
    (tmp_path / "mine.npz").write_bytes(b"")
    with pytest.raises(DataError, match=r"^path: .*mine.npz holds no mnist files \(train-images"):
        read_dataset(DataSpec(path=tmp_path / "mine.npz"), roots=roots, download=False)
    folder = tmp_path / "d" / "mnist"
    folder.mkdir(parents=True)
    for name in ("train-images", "train-labels", "t10k-images", "t10k-labels"):
        (folder / f"{name}-idx{3 if 'images' in name else 1}-ubyte").write_bytes(
            b"\x00\x00\x08\x01"
        )
    bad = folder / "train-images-idx3-ubyte"
    with pytest.raises(DataError, match=f"^{bad}: checksum mismatch for mnist: content SHA256 "):
        read_dataset(DataSpec(path=tmp_path / "d"), roots=roots, download=False)
