"""Tests of data/download.py against a local HTTP server: verified files land in the cache."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import re
import shutil
from pathlib import Path

import pytest

from mnistlab.data import SearchRoots
from mnistlab.data.download import download_files
from mnistlab.data.locate import fetch_dataset, read_verified
from mnistlab.data.registry import KnownDataset
from mnistlab.errors import DataError


def _serve(source: Path, root: Path, sub: str = "") -> None:
    (root / sub).mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        shutil.copy(path, root / sub / path.name)


def test_download_lands_in_cache_and_verifies(
    roots: SearchRoots, toy_source: tuple[Path, KnownDataset], http_root: tuple[Path, str]
) -> None:
    source, entry = toy_source
    root, url = http_root
    _serve(source, root)
    found = fetch_dataset(entry, roots=roots, mirrors=[url], retries=0, progress=False)
    cache = roots.cache / "toy"
    assert found.place is not None and (found.place.label, found.place.path) == ("cache", cache)
    assert sorted(p.name for p in cache.iterdir()) == sorted(p.name for p in source.iterdir())
    contents = read_verified(entry, found)
    assert len(contents["t10k-labels-idx1-ubyte"]) == 8 + 6


def test_corrupted_download_is_an_error_and_not_cached(
    roots: SearchRoots, toy_source: tuple[Path, KnownDataset], http_root: tuple[Path, str]
) -> None:
    source, entry = toy_source
    root, url = http_root
    _serve(source, root)
    served = root / "train-labels-idx1-ubyte.gz"
    served.write_bytes(served.read_bytes()[:-5])  # cut short: the published MD5 differs
    with pytest.raises(
        DataError,
        match=re.escape(
            "train-labels-idx1-ubyte.gz: download failed from every mirror: "
            f"127.0.0.1:{url.split(':')[-1].rstrip('/')}: "
            "MD5 of the .gz differs from the published "
        ),
    ):
        fetch_dataset(entry, roots=roots, mirrors=[url], retries=0, progress=False)
    cached = {p.name for p in (roots.cache / "toy").iterdir()}
    assert cached == {"train-images-idx3-ubyte.gz"}  # downloaded before; the bad one is gone


def test_content_checksum_is_checked_after_the_md5(
    roots: SearchRoots, toy_source: tuple[Path, KnownDataset], http_root: tuple[Path, str]
) -> None:
    source, entry = toy_source
    root, url = http_root
    _serve(source, root)
    # a mirror whose published MD5 matches its bytes, but whose content is not the dataset's
    served = root / "t10k-images-idx3-ubyte.gz"
    served.write_bytes(gzip.compress(gzip.decompress(served.read_bytes())[:-1] + b"\x01"))
    wrong = dataclasses.replace(
        entry.file("t10k-images-idx3-ubyte"), md5_gz=hashlib.md5(served.read_bytes()).hexdigest()
    )
    entry = dataclasses.replace(
        entry, files=tuple(wrong if f.name == wrong.name else f for f in entry.files)
    )
    with pytest.raises(
        DataError, match=r"t10k-images-idx3-ubyte.gz: download failed .*content SHA256"
    ):
        fetch_dataset(entry, roots=roots, mirrors=[url], retries=0, progress=False)
    assert not (roots.cache / "toy" / "t10k-images-idx3-ubyte.gz").exists()


def test_next_mirror_after_a_failing_one(
    roots: SearchRoots,
    toy_source: tuple[Path, KnownDataset],
    http_root: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, entry = toy_source
    root, url = http_root
    _serve(source, root, "good")
    paths = download_files(
        entry,
        ["train-images-idx3-ubyte"],
        roots.cache / "toy",
        [url + "empty/", url + "good"],
        retries=0,
        progress=True,
    )
    assert (
        paths["train-images-idx3-ubyte"].read_bytes()
        == (source / "train-images-idx3-ubyte.gz").read_bytes()
    )
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err  # the progress bar


def test_partial_cache_downloads_only_the_rest(
    roots: SearchRoots, toy_source: tuple[Path, KnownDataset], http_root: tuple[Path, str]
) -> None:
    source, entry = toy_source
    root, url = http_root
    _serve(source, root)
    cache = roots.cache / "toy"
    cache.mkdir(parents=True)
    shutil.copy(source / "train-images-idx3-ubyte.gz", cache)
    (root / "train-images-idx3-ubyte.gz").unlink()  # would fail if asked for again
    found = fetch_dataset(entry, roots=roots, mirrors=[url], retries=0, progress=False)
    assert found.complete
    assert read_verified(entry, found).keys() == {f.name for f in entry.files}
