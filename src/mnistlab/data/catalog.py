"""What the `mnistlab data` verbs report (list, info, verify, path), as plain dataclasses.

Nothing here prints: the CLI renders these. `verify` and `path` never download.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from mnistlab.data.dataset import Dataset, read_dataset, read_user_data
from mnistlab.data.idx import read_bytes
from mnistlab.data.locate import Resolution, SearchRoots, explicit_places, find_dataset
from mnistlab.data.registry import KNOWN_DATASETS, dataset_names, get_dataset
from mnistlab.data.spec import DataSpec
from mnistlab.errors import DataError


@dataclass(frozen=True)
class DatasetSummary:
    """One registered dataset, for `data list`."""

    name: str
    description: str
    n_classes: int
    license: str
    files: tuple[str, ...]
    mirrors: tuple[str, ...]


@dataclass(frozen=True)
class SplitInfo:
    """Size and per-class counts of one split, for `data info`."""

    name: str  # "train" or "test"
    size: int
    class_counts: tuple[int, ...]  # index = class id


@dataclass(frozen=True)
class DatasetInfo:
    """Shapes, sizes and class balance of a dataset, for `data info`."""

    name: str
    source: str  # the folder or file read
    image_shape: tuple[int, ...]
    n_classes: int
    classes: tuple[str, ...]  # class names (ids as text for your own data)
    splits: tuple[SplitInfo, ...]
    fingerprint: str


@dataclass(frozen=True)
class FileCheck:
    """One file's checksum status, for `data verify`."""

    name: str
    path: Path | None
    status: Literal["ok", "mismatch", "missing"]
    expected: str  # content SHA256 from the registry
    actual: str | None  # content SHA256 found, or why it could not be read


@dataclass(frozen=True)
class Verification:
    """Where a dataset was found and every file's status, for `data verify`."""

    name: str
    location: Resolution
    files: tuple[FileCheck, ...]

    @property
    def ok(self) -> bool:
        """True when the dataset was found and every file matches."""
        return self.location.found and all(f.status == "ok" for f in self.files)


def list_datasets() -> list[DatasetSummary]:
    """The registered datasets, in registry order.

    Returns
    -------
    list of DatasetSummary
    """
    return [
        DatasetSummary(
            name=e.name,
            description=e.description,
            n_classes=e.n_classes,
            license=e.license,
            files=tuple(f.name for f in e.files),
            mirrors=e.mirrors,
        )
        for e in KNOWN_DATASETS
    ]


def dataset_location(
    name: str, data_dir: Path | None = None, roots: SearchRoots | None = None
) -> Resolution:
    """Where a registered dataset resolves, without downloading or reading it (`data path`).

    Parameters
    ----------
    name : str
        A registered name.
    data_dir : Path, optional
        An explicit folder, searched first.
    roots : SearchRoots, optional
        Default: from the environment.

    Returns
    -------
    Resolution
        `place` is None when it is found nowhere; `searched` lists the places in order.
    """
    return find_dataset(get_dataset(name), explicit_places(None, data_dir), roots)


def dataset_info(
    name: str,
    data_dir: Path | None = None,
    *,
    download: bool = False,
    roots: SearchRoots | None = None,
) -> DatasetInfo:
    """Read a dataset and describe it (`data info`): sizes, shape, class counts.

    Parameters
    ----------
    name : str
        A registered name, or the path of your own data (folder, .npz or .csv).
    data_dir : Path, optional
        An explicit folder, searched first (registered names only).
    download : bool
        Allow downloading a registered dataset found nowhere.
    roots : SearchRoots, optional
        Default: from the environment.

    Returns
    -------
    DatasetInfo

    Raises
    ------
    DataError
        Unknown name, data missing or failing its checksums.
    """
    if name in dataset_names():
        spec = DataSpec(dataset=name)
        dataset = read_dataset(spec, data_dir, download=download, roots=roots)
        classes = get_dataset(name).classes
    elif Path(name).expanduser().exists():
        dataset = read_user_data(Path(name).stem, Path(name))
        classes = tuple(str(c) for c in range(dataset.n_classes))
    else:
        known = ", ".join(dataset_names())
        raise DataError(f"{name}: neither a known dataset ({known}) nor an existing file or folder")
    return DatasetInfo(
        name=dataset.name,
        source=dataset.source,
        image_shape=dataset.image_shape,
        n_classes=dataset.n_classes,
        classes=classes,
        splits=_split_infos(dataset),
        fingerprint=dataset.fingerprint,
    )


def verify_dataset(
    name: str, data_dir: Path | None = None, roots: SearchRoots | None = None
) -> Verification:
    """Check every file of a registered dataset against its content SHA256 (`data verify`).

    Never downloads. A dataset found nowhere reports every file missing.

    Parameters
    ----------
    name : str
        A registered name.
    data_dir : Path, optional
        An explicit folder, searched first.
    roots : SearchRoots, optional
        Default: from the environment.

    Returns
    -------
    Verification
    """
    entry = get_dataset(name)
    location = find_dataset(entry, explicit_places(None, data_dir), roots)
    checks = []
    for item in entry.files:
        path = location.files.get(item.name)
        if path is None:
            checks.append(FileCheck(item.name, None, "missing", item.sha256, None))
            continue
        try:
            actual = hashlib.sha256(read_bytes(path)).hexdigest()
        except DataError as exc:
            checks.append(FileCheck(item.name, path, "mismatch", item.sha256, str(exc)))
            continue
        status = "ok" if actual == item.sha256 else "mismatch"
        checks.append(FileCheck(item.name, path, status, item.sha256, actual))
    return Verification(name, location, tuple(checks))


def _split_infos(dataset: Dataset) -> tuple[SplitInfo, ...]:
    """Sizes and class counts of the train and (if any) test split."""
    infos = [("train", dataset.y_train), ("test", dataset.y_test)]
    return tuple(
        SplitInfo(split, len(y), tuple(int(c) for c in np.bincount(y, minlength=dataset.n_classes)))
        for split, y in infos
        if y is not None
    )
