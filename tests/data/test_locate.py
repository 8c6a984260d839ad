"""Tests of data/locate.py: the search order, checksum verification and the not-found error."""

from __future__ import annotations

import dataclasses
import re
import shutil
import socket
from pathlib import Path

import pytest

from mnistlab.data import SearchRoots
from mnistlab.data.idx import read_bytes
from mnistlab.data.locate import (
    explicit_places,
    fetch_dataset,
    find_dataset,
    read_verified,
    repo_data_dir,
    search_places,
)
from mnistlab.data.registry import KnownDataset, get_dataset
from mnistlab.errors import DataError


def _copy(source: Path, folder: Path) -> Path:
    shutil.copytree(source, folder)
    return folder


def test_search_order(
    roots: SearchRoots, toy_source: tuple[Path, KnownDataset], tmp_path: Path
) -> None:
    _, entry = toy_source
    roots = dataclasses.replace(roots, env=tmp_path / "env")
    places = search_places(entry, explicit_places(tmp_path / "p", tmp_path / "d"), roots)
    assert [(p.label, p.path.relative_to(tmp_path).as_posix()) for p in places] == [
        ("path", "p"),
        ("path", "p/toy"),
        ("data_dir", "d"),
        ("data_dir", "d/toy"),
        ("MNISTLAB_DATA", "env/toy"),
        ("repository", "repo/toy"),
        ("system", "system/toy"),
        ("cache", "cache/toy"),
    ]


def test_env_var_beats_repo(
    roots: SearchRoots,
    toy_source: tuple[Path, KnownDataset],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source, entry = toy_source
    _copy(source, tmp_path / "repo" / "toy")
    _copy(source, tmp_path / "shared" / "toy")
    monkeypatch.setenv("MNISTLAB_DATA", str(tmp_path / "shared"))
    roots = dataclasses.replace(SearchRoots.from_environment(), repo=roots.repo, system=None)
    found = find_dataset(entry, roots=roots)
    assert found.place is not None
    assert (found.place.label, found.place.path) == ("MNISTLAB_DATA", tmp_path / "shared" / "toy")
    assert found.complete


def test_explicit_path_beats_env(
    roots: SearchRoots, toy_source: tuple[Path, KnownDataset], tmp_path: Path
) -> None:
    source, entry = toy_source
    _copy(source, tmp_path / "env" / "toy")
    mine = _copy(source, tmp_path / "mine")  # the folder itself holds the files
    roots = dataclasses.replace(roots, env=tmp_path / "env")
    found = find_dataset(entry, explicit_places(data_dir=mine), roots)
    assert found.place is not None and (found.place.label, found.place.path) == ("data_dir", mine)
    # a folder holding <name>/ works too, and the spec's path comes before data_dir
    found = find_dataset(entry, explicit_places(tmp_path / "env", mine), roots)
    assert found.place is not None
    assert (found.place.label, found.place.path) == ("path", tmp_path / "env" / "toy")


def test_environment_roots(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MNISTLAB_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    roots = SearchRoots.from_environment()
    assert roots.env == tmp_path / "d"
    assert roots.cache == tmp_path / "xdg" / "mnistlab"
    assert roots.system == Path("/usr/share/datasets")
    monkeypatch.delenv("MNISTLAB_DATA")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    roots = SearchRoots.from_environment()
    assert roots.env is None
    assert roots.cache == tmp_path / "home" / ".cache" / "mnistlab"


def test_repo_data_dir_is_the_checkout_data_folder() -> None:
    assert repo_data_dir() == Path(__file__).resolve().parents[2] / "data"


def test_missing_everywhere_download_disabled(
    roots: SearchRoots, toy_source: tuple[Path, KnownDataset], tmp_path: Path
) -> None:
    _, entry = toy_source
    with pytest.raises(DataError) as info:
        fetch_dataset(entry, explicit_places(data_dir=tmp_path / "d"), roots, download=False)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("dataset 'toy' not found; searched: ")
    for place in (
        "d (data_dir)",
        "repo/toy (repository)",
        "system/toy (system)",
        "cache/toy (cache)",
    ):
        assert place in message
    assert message.endswith(
        "; download disabled; "
        "fix: set MNISTLAB_DATA to a folder holding toy/ or pass --data-dir FOLDER"
    )


def test_missing_everywhere_download_unreachable(
    roots: SearchRoots, toy_source: tuple[Path, KnownDataset]
) -> None:
    _, entry = toy_source
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(
        DataError,
        match=re.escape(
            f"; train-images-idx3-ubyte.gz: download failed from every mirror: "
            f"127.0.0.1:{port}: unreachable (ConnectionError); fix: set MNISTLAB_DATA"
        ),
    ):
        fetch_dataset(
            entry, roots=roots, mirrors=[f"http://127.0.0.1:{port}/"], retries=0, progress=False
        )


def test_no_mirror_is_not_found(roots: SearchRoots, toy_source: tuple[Path, KnownDataset]) -> None:
    _, entry = toy_source
    with pytest.raises(DataError, match=r"not found; .*; no download mirror; fix:"):
        fetch_dataset(entry, roots=roots)


def test_checksum_mismatch_names_the_file_and_does_not_fall_through(
    roots: SearchRoots, toy_source: tuple[Path, KnownDataset], tmp_path: Path
) -> None:
    source, entry = toy_source
    _copy(source, tmp_path / "repo" / "toy")  # good files further down the order
    bad = _copy(source, tmp_path / "env" / "toy")
    shutil.copy(bad / "t10k-images-idx3-ubyte.gz", bad / "t10k-labels-idx1-ubyte.gz")
    roots = dataclasses.replace(roots, env=tmp_path / "env")
    found = fetch_dataset(entry, roots=roots, download=False)
    assert found.place is not None and found.place.label == "MNISTLAB_DATA"
    with pytest.raises(
        DataError,
        match=re.escape(
            f"{bad / 't10k-labels-idx1-ubyte.gz'}: checksum mismatch for toy: content SHA256 "
        ),
    ):
        read_verified(entry, found)


def test_incomplete_place_names_the_missing_file(
    roots: SearchRoots, toy_source: tuple[Path, KnownDataset], tmp_path: Path
) -> None:
    source, entry = toy_source
    _copy(source, tmp_path / "repo" / "toy")
    partial = _copy(source, tmp_path / "mine")
    (partial / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(
        DataError,
        match=re.escape(
            f"toy: {partial} holds some of its files but not train-labels-idx1-ubyte(.gz)"
        ),
    ):
        fetch_dataset(entry, explicit_places(data_dir=partial), roots, download=False)


def test_raw_and_gzip_files_verify_alike(
    roots: SearchRoots, toy_source: tuple[Path, KnownDataset], tmp_path: Path
) -> None:
    source, entry = toy_source
    raw = tmp_path / "raw"
    raw.mkdir()
    for path in source.iterdir():
        (raw / path.name.removesuffix(".gz")).write_bytes(read_bytes(path))
    found = fetch_dataset(entry, explicit_places(data_dir=raw), roots, download=False)
    contents = read_verified(entry, found)
    assert found.files["train-images-idx3-ubyte"] == raw / "train-images-idx3-ubyte"
    assert len(contents["train-images-idx3-ubyte"]) == 16 + 12 * 4 * 4


def test_digits_resolves_to_scikit_learn(roots: SearchRoots) -> None:
    found = find_dataset(get_dataset("digits"), roots=roots)
    assert found.place is not None and found.place.label == "scikit-learn"
    assert found.files["digits.csv"].name == "digits.csv.gz"
    assert [p.label for p in found.searched] == ["scikit-learn"]
