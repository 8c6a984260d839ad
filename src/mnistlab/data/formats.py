"""Readers for the file formats datasets come in: IDX folders, .npz, .csv and digits' CSV.

Every reader returns `Arrays`: x_train (N, H, W) or (N, D) uint8, y_train (N,) int64 and
the test pair (or None). Pixel values must be integers 0..255 (floats holding integers are
accepted); labels must be non-negative integers.
"""

from __future__ import annotations

import gzip
import io
import math
import re
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mnistlab.data.idx import read_idx
from mnistlab.errors import DataError

IDX_NAME = re.compile(
    r"^(?P<split>train|t10k|test)[-_.](?P<kind>images|labels)[-_.]idx\d[-_.]ubyte(?P<gz>\.gz)?$"
)


class Arrays(NamedTuple):
    """A dataset's arrays: images uint8, labels int64; the test pair may be absent."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None


def detect_format(path: Path, format: str = "auto") -> str:
    """Resolve "auto" to "idx" (a folder), "npz" or "csv" (by suffix, .csv.gz included).

    Parameters
    ----------
    path : Path
        The user's data: a folder or a file.
    format : str
        "auto", "idx", "npz" or "csv".

    Returns
    -------
    str
        "idx", "npz" or "csv".
    """
    if format != "auto":
        return format
    if path.is_dir():
        return "idx"
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] == [".npz"]:
        return "npz"
    if suffixes[-1:] == [".csv"] or suffixes[-2:] == [".csv", ".gz"]:
        return "csv"
    raise DataError(
        f"{path}: cannot tell the format (a folder of IDX files, .npz or .csv); set format"
    )


def read_idx_folder(folder: Path) -> Arrays:
    """Read `train-images-idx3-ubyte[.gz]` and friends (t10k- or test-) from a folder.

    Parameters
    ----------
    folder : Path
        Holds train images and labels, and optionally test images and labels.

    Returns
    -------
    Arrays
    """
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder (IDX data is a folder of IDX files)")
    found: dict[tuple[str, str], Path] = {}
    for path in sorted(folder.iterdir()):
        match = IDX_NAME.match(path.name.lower())
        if match and path.is_file():
            key = ("train" if match["split"] == "train" else "test", match["kind"])
            if key not in found or not match["gz"]:  # raw preferred over .gz
                found[key] = path
    if ("train", "images") not in found or ("train", "labels") not in found:
        raise DataError(
            f"{folder}: no train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] here"
        )
    pairs = []
    for split in ("train", "test"):
        images, labels = found.get((split, "images")), found.get((split, "labels"))
        if (images is None) != (labels is None):
            missing = f"{split}-{'labels' if labels is None else 'images'}"
            raise DataError(f"{folder}: {missing} file is missing for {split}")
        if images is None or labels is None:
            pairs += [None, None]
            continue
        x, y = read_idx(images), read_idx(labels)
        source = f"{images} / {labels.name}"
        x, y = as_images(x, source), as_labels(y, source)
        _check_counts(x, y, source)
        pairs += [x, y]
    return Arrays(*pairs)


def read_npz(path: Path) -> Arrays:
    """Read an .npz holding x_train/y_train[/x_test/y_test], or x/y (training only).

    Parameters
    ----------
    path : Path
        The .npz file (no pickles are loaded).

    Returns
    -------
    Arrays
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: cannot read as .npz: {exc}") from None
    keys = sorted(arrays)
    if {"x_train", "y_train"} <= arrays.keys():
        has_test = ("x_test" in arrays, "y_test" in arrays)
        if has_test[0] != has_test[1]:
            raise DataError(f"{path}: x_test and y_test go together, found keys {keys}")
        names = (
            ("x_train", "y_train", "x_test", "y_test") if all(has_test) else ("x_train", "y_train")
        )
    elif {"x", "y"} <= arrays.keys():
        names = ("x", "y")
    else:
        raise DataError(
            f"{path}: expected keys x_train, y_train[, x_test, y_test] or x, y; found {keys}"
        )
    out = []
    for i in range(0, len(names), 2):
        source = f"{path}[{names[i]}, {names[i + 1]}]"
        x, y = as_images(arrays[names[i]], source), as_labels(arrays[names[i + 1]], source)
        _check_counts(x, y, source)
        out += [x, y]
    return Arrays(*out)


def read_csv(path: Path, label_column: str | int = 0) -> Arrays:
    """Read a CSV of one label column and pixel columns (header optional) as training data.

    Parameters
    ----------
    path : Path
        Comma-separated, optionally gzip-compressed (.csv.gz). A first line that is not
        all numbers is a header.
    label_column : str or int
        A header name, or a 0-based column index (negative counts from the end).

    Returns
    -------
    Arrays
        Training data only; rows of D pixels become (N, s, s) images when D = s*s.
    """
    try:
        with _open_text(path) as handle:
            first = handle.readline().strip().split(",")
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    header = not all(_is_number(field) for field in first)
    names = [name.strip().strip('"') for name in first]
    if isinstance(label_column, str):
        if not header:
            raise DataError(f"{path}: label_column {label_column!r} needs a header line")
        if label_column not in names:
            raise DataError(f"{path}: no column {label_column!r} in the header {names[:5]}...")
        column = names.index(label_column)
    else:
        column = label_column
        if not -len(first) <= column < len(first):
            raise DataError(f"{path}: label_column {column} outside the {len(first)} columns")
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=int(header), dtype=np.float32, ndmin=2)
    except ValueError as exc:
        raise DataError(f"{path}: not a numeric CSV: {exc}") from None
    column %= table.shape[1]
    source = str(path)
    y = as_labels(table[:, column], source)
    x = np.delete(table, column, axis=1)
    side = math.isqrt(x.shape[1])
    if side * side == x.shape[1]:
        x = x.reshape(len(x), side, side)
    return Arrays(as_images(x, source), y)


def parse_digits(content: bytes, test_rows: int) -> Arrays:
    """Parse scikit-learn's digits.csv (64 pixels 0..16 and a label per row), as `load_digits`.

    Parameters
    ----------
    content : bytes
        The decompressed digits.csv (1797 rows, 65 columns).
    test_rows : int
        How many rows, from the end, are the test set.

    Returns
    -------
    Arrays
        x (N, 8, 8) uint8 with values 0..16, y int64.
    """
    table = np.loadtxt(io.BytesIO(content), delimiter=",", dtype=np.float64, ndmin=2)
    x = as_images(table[:, :-1].reshape(-1, 8, 8), "digits.csv")
    y = as_labels(table[:, -1], "digits.csv")
    cut = len(x) - test_rows
    return Arrays(x[:cut], y[:cut], x[cut:], y[cut:])


def as_images(x: np.ndarray, source: str) -> np.ndarray:
    """Check and convert pixel data to uint8 of shape (N, H, W) or (N, D).

    Parameters
    ----------
    x : np.ndarray
        (N, H, W), (N, H, W, 1) or (N, D) integers 0..255 (any int, bool or integral float).
    source : str
        What to call the data in messages.

    Returns
    -------
    np.ndarray
        uint8 (a view when `x` already is uint8).
    """
    x = np.asarray(x)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim not in (2, 3) or len(x) == 0:
        raise DataError(f"{source}: images must be (N, H, W) or (N, D) with N > 0, got {x.shape}")
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind not in "biuf":
        raise DataError(f"{source}: images must be numbers, got {x.dtype}")
    low, high = x.min(), x.max()
    integral = x.dtype.kind != "f" or bool(np.all(np.floor(x) == x))
    if not (integral and low >= 0 and high <= 255):
        raise DataError(
            f"{source}: images must hold integer pixel values 0..255, "
            f"got {x.dtype} in [{low}, {high}]"
        )
    return x.astype(np.uint8)


def as_labels(y: np.ndarray, source: str) -> np.ndarray:
    """Check and convert labels to int64 class ids of shape (N,).

    Parameters
    ----------
    y : np.ndarray
        (N,) or (N, 1) non-negative integers (integral floats accepted).
    source : str
        What to call the data in messages.

    Returns
    -------
    np.ndarray
        int64 of shape (N,).
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind not in "biuf":
        raise DataError(f"{source}: labels must be (N,) integers, got {y.shape} {y.dtype}")
    if y.dtype.kind == "f" and not np.all(np.floor(y) == y):
        raise DataError(f"{source}: labels must be integer class ids, got fractional values")
    if len(y) and y.min() < 0:
        raise DataError(f"{source}: labels must be >= 0, got {y.min()}")
    return y.astype(np.int64)


def _check_counts(x: np.ndarray, y: np.ndarray, source: str) -> None:
    if len(x) != len(y):
        raise DataError(f"{source}: count mismatch: {len(x)} images but {len(y)} labels")


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return gzip.open(path, "rt")
    return path.open()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
