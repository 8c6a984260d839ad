"""Tests of data/registry.py: the known datasets and their checksums."""

from __future__ import annotations

import re

import pytest

from mnistlab.data.registry import KNOWN_DATASETS, dataset_names, get_dataset
from mnistlab.errors import DataError


def test_names_in_order() -> None:
    assert dataset_names() == ("mnist", "fashion-mnist", "digits")


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(
        DataError,
        match=re.escape(
            "unknown dataset 'cifar'; known: mnist, fashion-mnist, digits (or give a path"
        ),
    ):
        get_dataset("cifar")


def test_checksums_are_well_formed() -> None:
    for entry in KNOWN_DATASETS:
        for item in entry.files:
            assert re.fullmatch("[0-9a-f]{64}", item.sha256), item.name
            assert item.md5_gz is None or re.fullmatch("[0-9a-f]{32}", item.md5_gz)
        assert all(url.endswith("/") for url in entry.mirrors)
        assert len(entry.classes) == entry.n_classes == 10
    mnist = get_dataset("mnist")
    assert mnist.file("train-images-idx3-ubyte").md5_gz == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert len(mnist.mirrors) == 3
