"""Tests of data/catalog.py: what `mnistlab data list | info | verify | path` report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnistlab.data import SearchRoots, dataset_info, dataset_location, list_datasets, verify_dataset
from mnistlab.errors import DataError

from .synthetic import toy_arrays


def test_list() -> None:
    summaries = list_datasets()
    assert [s.name for s in summaries] == ["mnist", "fashion-mnist", "digits"]
    assert summaries[0].files[0] == "train-images-idx3-ubyte"
    assert summaries[2].mirrors == ()


def test_path_not_found_lists_the_places(roots: SearchRoots, tmp_path: Path) -> None:
    where = dataset_location("fashion-mnist", tmp_path / "d", roots=roots)
    assert not where.found and where.place is None
    assert [(p.label, p.path.relative_to(tmp_path).as_posix()) for p in where.searched] == [
        ("data_dir", "d"),
        ("data_dir", "d/fashion-mnist"),
        ("repository", "repo/fashion-mnist"),
        ("system", "system/fashion-mnist"),
        ("cache", "cache/fashion-mnist"),
    ]


def test_verify_reports_each_file_and_never_downloads(roots: SearchRoots, tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x00")
    report = verify_dataset("mnist", folder, roots=roots)
    assert [f.status for f in report.files] == ["mismatch", "missing", "missing", "missing"]
    assert report.files[0].path == folder / "train-images-idx3-ubyte"
    assert report.files[0].actual is not None and len(report.files[0].actual) == 64
    assert not report.ok
    nowhere = verify_dataset("mnist", roots=roots)
    assert not nowhere.location.found and {f.status for f in nowhere.files} == {"missing"}
    assert not (roots.cache / "mnist").exists()


def test_verify_unreadable_file_is_a_mismatch(roots: SearchRoots, tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    check = verify_dataset("mnist", folder, roots=roots).files[3]
    assert check.status == "mismatch" and check.actual is not None and "gzip" in check.actual


def test_info_of_digits_and_own_file(tmp_path: Path) -> None:
    info = dataset_info("digits")
    assert (info.image_shape, info.n_classes, info.classes[3]) == ((8, 8), 10, "3")
    assert [(s.name, s.size) for s in info.splits] == [("train", 1437), ("test", 360)]
    assert info.splits[0].class_counts[:3] == (143, 146, 142)
    path = tmp_path / "mine.npz"
    np.savez(path, **toy_arrays()._asdict())
    mine = dataset_info(str(path))
    assert (mine.name, mine.image_shape, mine.n_classes) == ("mine", (4, 4), 3)
    assert [s.class_counts for s in mine.splits] == [(4, 4, 4), (2, 2, 2)]


def test_info_of_unknown_name() -> None:
    with pytest.raises(DataError, match=r"^cifar: neither a known dataset .* nor an existing file"):
        dataset_info("cifar")


def test_info_does_not_download_by_default(roots: SearchRoots) -> None:
    with pytest.raises(DataError, match=r"dataset 'fashion-mnist' not found; .*download disabled"):
        dataset_info("fashion-mnist", roots=roots)
