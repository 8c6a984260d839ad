"""The IDX file format (LeCun's MNIST container): read and write, raw or gzip-compressed.

An IDX file is a 4-byte magic number (0x00, 0x00, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the values in C order. Every check names the file.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from mnistlab.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"

# IDX type code -> big-endian numpy dtype
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_bytes(path: Path | str) -> bytes:
    """Return a file's content, decompressed when it is gzip (told by its first bytes).

    Parameters
    ----------
    path : Path or str
        A raw or gzip-compressed file.

    Returns
    -------
    bytes
        The (decompressed) content.

    Raises
    ------
    DataError
        The file cannot be read, or its gzip stream is corrupt or truncated.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except EOFError:
        raise DataError(f"{path}: truncated gzip stream (the download was cut short?)") from None
    except (OSError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt gzip stream: {exc}") from None


def parse_idx(data: bytes, source: str) -> np.ndarray:
    """Decode IDX bytes into an array in native byte order, checking header and size.

    Parameters
    ----------
    data : bytes
        The uncompressed IDX content.
    source : str
        What to call the data in error messages (usually the file path).

    Returns
    -------
    np.ndarray of shape given by the header
        uint8 for the MNIST type code 0x08; read-only when no byte swap was needed.

    Raises
    ------
    DataError
        Wrong magic number, unknown type code, truncated header or data, or trailing bytes.
    """
    if len(data) < 4:
        raise DataError(f"{source}: truncated IDX file: {len(data)} bytes, the header needs 4")
    zero, code, ndim = data[:2], data[2], data[3]
    if zero != b"\x00\x00":
        raise DataError(
            f"{source}: wrong magic number 0x{data[:4].hex()}: not an IDX file "
            f"(expected 0x0000 then a type code and a dimension count)"
        )
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_TYPES)
        raise DataError(f"{source}: unknown IDX type code 0x{code:02x} (expected one of {known})")
    if ndim == 0:
        raise DataError(f"{source}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{source}: truncated IDX header: {len(data)} bytes, {ndim} dimensions need {header}"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header
    shape = "x".join(str(d) for d in dims)
    if actual < expected:
        raise DataError(
            f"{source}: truncated IDX data: header says {shape} ({expected} bytes), "
            f"the file holds {actual}"
        )
    if actual > expected:
        raise DataError(
            f"{source}: IDX size mismatch: header says {shape} ({expected} bytes), "
            f"the file holds {actual} ({actual - expected} extra)"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return array if dtype.itemsize == 1 else array.astype(dtype.newbyteorder("="))


def read_idx(path: Path | str) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed.

    Parameters
    ----------
    path : Path or str
        e.g. ``train-images-idx3-ubyte.gz`` or ``t10k-labels-idx1-ubyte``.

    Returns
    -------
    np.ndarray
        e.g. uint8 of shape (60000, 28, 28) for MNIST's training images.

    Raises
    ------
    DataError
        The file is unreadable, truncated, corrupt, or not an IDX file; the message names it.
    """
    return parse_idx(read_bytes(path), str(path))


def check_pair(images: np.ndarray, labels: np.ndarray, source: str) -> None:
    """Check that images are (N, H, W) uint8 and labels (N,) integers; raise DataError if not.

    Parameters
    ----------
    images : np.ndarray
        Expected shape (N, H, W), dtype uint8.
    labels : np.ndarray
        Expected shape (N,), an integer dtype.
    source : str
        What to call the pair in messages (file names).
    """
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{source}: images must be (N, H, W) uint8, got {images.shape} {images.dtype}"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(
            f"{source}: labels must be (N,) integers, got {labels.shape} {labels.dtype}"
        )
    if len(images) != len(labels):
        raise DataError(f"{source}: count mismatch: {len(images)} images but {len(labels)} labels")


def read_idx_pair(
    images_path: Path | str, labels_path: Path | str
) -> tuple[np.ndarray, np.ndarray]:
    """Read an images file and its labels file and check that they belong together.

    Parameters
    ----------
    images_path, labels_path : Path or str
        IDX files (raw or .gz) of images (N, H, W) uint8 and labels (N,).

    Returns
    -------
    x : np.ndarray of shape (N, H, W), uint8
    y : np.ndarray of shape (N,), int64

    Raises
    ------
    DataError
        Either file is bad, or the counts differ (the message names both files).
    """
    x, y = read_idx(images_path), read_idx(labels_path)
    check_pair(x, y, f"{images_path} / {Path(labels_path).name}")
    return x, y.astype(np.int64)


def write_idx(path: Path | str, array: np.ndarray) -> Path:
    """Write an array as an IDX file; gzip-compressed (reproducibly, mtime 0) if it ends in .gz.

    Parameters
    ----------
    path : Path or str
        Destination, e.g. ``train-images-idx3-ubyte.gz``.
    array : np.ndarray
        Any dtype of `IDX_TYPES` (uint8 for images and labels), at least one dimension.

    Returns
    -------
    Path
        The path written.
    """
    path = Path(path)
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None or array.ndim == 0:
        raise ValueError(f"cannot write {array.dtype} of shape {array.shape} as IDX")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=9, mtime=0)
    path.write_bytes(data)
    return path
