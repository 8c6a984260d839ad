"""The raw dataset: uint8 images, int64 labels and a content fingerprint, as read from disk.

`read_dataset` turns a `DataSpec` into a `Dataset`: a known dataset is located (see
`locate`), every file checked against its content SHA256 and decoded; your own data is read
from its folder or file. Arrays are read-only: splits copy what they take.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistlab.data.formats import (
    Arrays,
    detect_format,
    parse_digits,
    read_csv,
    read_idx_folder,
    read_npz,
)
from mnistlab.data.idx import check_pair, parse_idx
from mnistlab.data.locate import (
    Place,
    SearchRoots,
    explicit_places,
    fetch_dataset,
    find_in,
    read_verified,
)
from mnistlab.data.registry import DIGITS_TEST_ROWS, KnownDataset, get_dataset
from mnistlab.data.spec import DataSpec
from mnistlab.errors import DataError

FINGERPRINT_VERSION = "mnistlab-dataset/1"


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset in memory as read: images uint8, labels int64, test pair optional.

    `fingerprint` is a hex SHA256 of the content: for a known dataset, of its registry
    checksums (already verified against the files); for your own data, of the arrays.
    """

    name: str
    x_train: np.ndarray  # (N, H, W) or (N, D) uint8
    y_train: np.ndarray  # (N,) int64
    x_test: np.ndarray | None  # (M, H, W) or (M, D) uint8
    y_test: np.ndarray | None  # (M,) int64
    n_classes: int
    fingerprint: str
    source: str  # where it was read from, for messages

    @property
    def image_shape(self) -> tuple[int, ...]:
        """(H, W) of one image, or (D,) for feature rows."""
        return tuple(self.x_train.shape[1:])


def make_dataset(
    name: str,
    arrays: Arrays,
    *,
    n_classes: int | None = None,
    fingerprint: str | None = None,
    source: str = "memory",
) -> Dataset:
    """Check arrays and wrap them as a read-only `Dataset`.

    Parameters
    ----------
    name : str
        The dataset's name.
    arrays : Arrays
        x_train (N, H, W) or (N, D) uint8, y_train (N,) int64, optional test pair alike.
    n_classes : int, optional
        Default: the largest label + 1.
    fingerprint : str, optional
        Default: the SHA256 of the arrays (`array_fingerprint`).
    source : str
        Where the data came from, for messages.

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        Counts differ, train and test images differ in shape, or a label is >= n_classes.
    """
    x_train, y_train, x_test, y_test = arrays
    splits = [("train", x_train, y_train)]
    if x_test is not None and y_test is not None:
        splits.append(("test", x_test, y_test))
        if x_test.shape[1:] != x_train.shape[1:]:
            raise DataError(
                f"{source}: test images are {x_test.shape[1:]}, train images {x_train.shape[1:]}"
            )
    top = max((int(y.max()) for _, _, y in splits if len(y)), default=-1)
    n_classes = top + 1 if n_classes is None else n_classes
    for split, x, y in splits:
        if x.dtype != np.uint8 or y.dtype != np.int64 or len(x) != len(y):
            raise DataError(
                f"{source}: {split}: need uint8 images and as many int64 labels, "
                f"got {len(x)} {x.dtype} images and {len(y)} {y.dtype} labels"
            )
        if len(y) and int(y.max()) >= n_classes:
            raise DataError(f"{source}: {split}: label {int(y.max())} >= {n_classes} classes")
    frozen = [_read_only(a) for a in arrays]
    return Dataset(
        name=name,
        x_train=frozen[0],
        y_train=frozen[1],
        x_test=frozen[2],
        y_test=frozen[3],
        n_classes=n_classes,
        fingerprint=fingerprint or array_fingerprint(arrays),
        source=source,
    )


def read_dataset(
    spec: DataSpec,
    data_dir: Path | None = None,
    *,
    download: bool = True,
    roots: SearchRoots | None = None,
    mirrors: Sequence[str] | None = None,
    progress: bool = True,
) -> Dataset:
    """Read the dataset a spec names, verified, as uint8 arrays.

    Parameters
    ----------
    spec : DataSpec
        `dataset`, `path`, `format` and `label_column` are used here.
    data_dir : Path, optional
        An explicit folder searched after `spec.path` (e.g. the CLI's --data-dir).
    download : bool
        Allow downloading a known dataset found nowhere.
    roots : SearchRoots, optional
        The implicit places searched; default: from the environment.
    mirrors : sequence of str, optional
        Download mirrors; default: the registry's.
    progress : bool
        Show a progress bar while downloading.

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        Missing, corrupt or mismatching files (the message names the file), or a known
        dataset found nowhere (the message lists the places searched and the fix).
    """
    if not spec.known:
        return read_user_data(spec.dataset, Path(spec.path or ""), spec.format, spec.label_column)
    entry = get_dataset(spec.dataset)
    if spec.path is not None:
        _check_spec_path(entry, Path(spec.path).expanduser())
    resolution = fetch_dataset(
        entry,
        explicit_places(spec.path, data_dir),
        roots,
        download=download,
        mirrors=mirrors,
        progress=progress,
    )
    contents = read_verified(entry, resolution)
    assert resolution.place is not None  # fetch_dataset returns complete resolutions only
    return decode_known(entry, contents, source=str(resolution.place.path))


def decode_known(entry: KnownDataset, contents: dict[str, bytes], source: str) -> Dataset:
    """Decode a known dataset's verified file contents into a `Dataset`.

    Parameters
    ----------
    entry : KnownDataset
        The registry entry.
    contents : dict of str to bytes
        Decompressed, checksum-verified content by registry file name.
    source : str
        The folder the files came from.

    Returns
    -------
    Dataset
        Fingerprinted from the registry's checksums.
    """
    if entry.kind == "digits":
        arrays = parse_digits(contents["digits.csv"], DIGITS_TEST_ROWS)
    else:
        decoded = {name: parse_idx(data, f"{source}/{name}") for name, data in contents.items()}
        for split in ("train", "t10k"):
            x, y = decoded[f"{split}-images-idx3-ubyte"], decoded[f"{split}-labels-idx1-ubyte"]
            check_pair(x, y, f"{source}/{split}-*")
        arrays = Arrays(
            decoded["train-images-idx3-ubyte"],
            decoded["train-labels-idx1-ubyte"].astype(np.int64),
            decoded["t10k-images-idx3-ubyte"],
            decoded["t10k-labels-idx1-ubyte"].astype(np.int64),
        )
    lines = [FINGERPRINT_VERSION, entry.name, *(f"{f.name} {f.sha256}" for f in entry.files)]
    fingerprint = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    return make_dataset(
        entry.name, arrays, n_classes=entry.n_classes, fingerprint=fingerprint, source=source
    )


def read_user_data(
    name: str, path: Path, format: str = "auto", label_column: str | int = 0
) -> Dataset:
    """Read your own data: a folder of IDX files, an .npz or a .csv.

    Parameters
    ----------
    name : str
        What to call the dataset.
    path : Path
        The folder or file.
    format : str
        "auto" (folder -> idx, else by suffix), "idx", "npz" or "csv".
    label_column : str or int
        csv only: header name or 0-based index of the label column.

    Returns
    -------
    Dataset
        Fingerprinted from its arrays.
    """
    path = path.expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder (data for {name!r})")
    kind = detect_format(path, format)
    if kind == "idx":
        arrays = read_idx_folder(path)
    elif kind == "npz":
        arrays = read_npz(path)
    else:
        arrays = read_csv(path, label_column)
    return make_dataset(name, arrays, source=str(path))


def array_fingerprint(arrays: Arrays) -> str:
    """Hex SHA256 of the arrays' dtypes, shapes and bytes (absent test arrays count as such).

    Parameters
    ----------
    arrays : Arrays
        x_train, y_train, x_test, y_test.

    Returns
    -------
    str
        64 hex digits.
    """
    digest = hashlib.sha256(FINGERPRINT_VERSION.encode())
    for array in arrays:
        if array is None:
            digest.update(b"|none")
            continue
        array = np.ascontiguousarray(array)
        digest.update(f"|{array.dtype.str}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def _check_spec_path(entry: KnownDataset, path: Path) -> None:
    """A spec's `path` for a known dataset must hold it: no silent fall-through to elsewhere."""
    if not find_in(entry, [Place("path", path), Place("path", path / entry.name)]).found:
        files = ", ".join(f"{f.name}[.gz]" for f in entry.files)
        raise DataError(
            f"path: {path} holds no {entry.name} files ({files}), neither itself nor "
            f"{entry.name}/ in it; for your own data, set dataset to a name of yours"
        )


def _read_only(array: np.ndarray | None) -> np.ndarray | None:
    if array is None:
        return None
    view = array.view()
    view.flags.writeable = False
    return view
