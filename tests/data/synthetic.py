"""Tiny synthetic datasets for the data tests: arrays, IDX files and a toy registry entry."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

from mnistlab.data import Arrays, KnownDataset, write_idx
from mnistlab.data.registry import IDX_FILES, DataFile


def toy_arrays(n_train: int = 12, n_test: int = 6, side: int = 4, seed: int = 0) -> Arrays:
    """Seeded uint8 images (N, side, side) and labels cycling through 0, 1, 2."""
    rng = np.random.default_rng(seed)
    return Arrays(
        rng.integers(0, 256, size=(n_train, side, side), dtype=np.uint8),
        np.arange(n_train, dtype=np.int64) % 3,
        rng.integers(0, 256, size=(n_test, side, side), dtype=np.uint8),
        np.arange(n_test, dtype=np.int64) % 3,
    )


def write_idx_set(folder: Path, arrays: Arrays, gz: bool = True) -> dict[str, Path]:
    """Write the four MNIST-named IDX files of `arrays` into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    values = (
        arrays.x_train,
        arrays.y_train.astype(np.uint8),
        arrays.x_test,
        arrays.y_test.astype(np.uint8),
    )
    return {
        name: write_idx(folder / f"{name}{suffix}", v)
        for name, v in zip(IDX_FILES, values, strict=True)
    }


def toy_entry(folder: Path, mirrors: tuple[str, ...] = ()) -> KnownDataset:
    """A registry entry named "toy" whose checksums are those of the .gz files in `folder`."""
    files = []
    for name in IDX_FILES:
        packed = (folder / f"{name}.gz").read_bytes()
        content = gzip.decompress(packed)
        files.append(
            DataFile(name, hashlib.sha256(content).hexdigest(), hashlib.md5(packed).hexdigest())
        )
    return KnownDataset(
        name="toy",
        description="toy",
        kind="idx",
        files=tuple(files),
        n_classes=3,
        classes=("a", "b", "c"),
        license="none",
        mirrors=mirrors,
    )
