"""Where a known dataset's files are found, in a fixed order, and how they are verified.

Search order: explicit folders (the spec's `path`, then a `data_dir` argument; each tried as
given and as `<folder>/<name>`), `$MNISTLAB_DATA/<name>`, the checkout's `data/<name>`,
Debian's `/usr/share/datasets/<name>`, the user cache (`$XDG_CACHE_HOME/mnistlab/<name>` or
`~/.cache/mnistlab/<name>`), else a download into the cache. The first folder holding any of
the dataset's files is the one used: a missing or mismatching file there is an error that
names it, never a silent fall-through to the next place.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mnistlab.data.download import DownloadError, download_files
from mnistlab.data.idx import read_bytes
from mnistlab.data.registry import KnownDataset
from mnistlab.errors import DataError

ENV_VAR = "MNISTLAB_DATA"
FIX = f"set {ENV_VAR} to a folder holding {{name}}/ or pass --data-dir FOLDER"


@dataclass(frozen=True)
class Place:
    """A folder searched for a dataset, and why it is searched (e.g. "MNISTLAB_DATA")."""

    label: str
    path: Path

    def __str__(self) -> str:
        return f"{self.path} ({self.label})"


@dataclass(frozen=True)
class SearchRoots:
    """The roots of the implicit places; tests build their own instead of the environment's."""

    env: Path | None  # $MNISTLAB_DATA, holding <name>/ folders
    repo: Path | None  # the checkout's data/ folder, None when installed
    system: Path | None  # Debian's /usr/share/datasets
    cache: Path  # holds <name>/ folders of downloaded files

    @classmethod
    def from_environment(cls) -> SearchRoots:
        """Read $MNISTLAB_DATA and $XDG_CACHE_HOME now; find the checkout from this file."""
        env = os.environ.get(ENV_VAR) or None
        xdg = os.environ.get("XDG_CACHE_HOME") or None
        cache = Path(xdg) if xdg else Path.home() / ".cache"
        return cls(
            env=Path(env).expanduser() if env else None,
            repo=repo_data_dir(),
            system=Path("/usr/share/datasets"),
            cache=cache / "mnistlab",
        )


@dataclass(frozen=True)
class Resolution:
    """Where a dataset's files were found (or not), and every place searched, in order."""

    name: str
    place: Place | None  # the folder used; None when found nowhere
    files: dict[str, Path] = field(default_factory=dict)  # registry file name -> path found
    missing: tuple[str, ...] = ()  # registry files absent from `place`
    searched: tuple[Place, ...] = ()

    @property
    def found(self) -> bool:
        """True when some place holds the dataset's files (maybe not all of them)."""
        return self.place is not None

    @property
    def complete(self) -> bool:
        """True when the place holds every file of the dataset."""
        return self.found and not self.missing


def repo_data_dir() -> Path | None:
    """The checkout's `data/` folder (src/mnistlab/../../data), or None when not in a checkout."""
    src = Path(__file__).resolve().parents[2]
    return src.parent / "data" if src.name == "src" else None


def explicit_places(path: Path | None = None, data_dir: Path | None = None) -> tuple[Place, ...]:
    """The places an explicit `path` and `data_dir` stand for: each folder, then `<folder>/<name>`.

    The `<name>` sub-folder is added by `search_places`; this returns the folders themselves.
    """
    places = []
    if path is not None:
        places.append(Place("path", Path(path).expanduser()))
    if data_dir is not None:
        places.append(Place("data_dir", Path(data_dir).expanduser()))
    return tuple(places)


def search_places(
    entry: KnownDataset, explicit: Sequence[Place] = (), roots: SearchRoots | None = None
) -> tuple[Place, ...]:
    """Every folder searched for `entry`, in order.

    Parameters
    ----------
    entry : KnownDataset
        The registry entry.
    explicit : sequence of Place
        Folders given explicitly (see `explicit_places`); each is searched as given and as
        `<folder>/<name>`.
    roots : SearchRoots, optional
        Default: `SearchRoots.from_environment()`.

    Returns
    -------
    tuple of Place
    """
    roots = roots or SearchRoots.from_environment()
    places: list[Place] = []
    for place in explicit:
        places += [place, Place(place.label, place.path / entry.name)]
    if entry.kind == "digits":
        return (*places, *_sklearn_place())
    if roots.env is not None:
        places.append(Place(ENV_VAR, roots.env / entry.name))
    if roots.repo is not None:
        places.append(Place("repository", roots.repo / entry.name))
    if roots.system is not None:
        places.append(Place("system", roots.system / entry.name))
    places.append(Place("cache", roots.cache / entry.name))
    return tuple(places)


def find_dataset(
    entry: KnownDataset, explicit: Sequence[Place] = (), roots: SearchRoots | None = None
) -> Resolution:
    """Look for `entry`'s files without downloading or reading them.

    Parameters
    ----------
    entry : KnownDataset
        The registry entry.
    explicit : sequence of Place
        Explicit folders, searched first.
    roots : SearchRoots, optional
        Default: `SearchRoots.from_environment()`.

    Returns
    -------
    Resolution
        The first place holding any file of the dataset (with the files it lacks), or
        `place=None`; `searched` lists every place in order.
    """
    return find_in(entry, search_places(entry, explicit, roots))


def find_in(entry: KnownDataset, places: Sequence[Place]) -> Resolution:
    """The first of `places` holding any file of `entry` (see `find_dataset`).

    Parameters
    ----------
    entry : KnownDataset
        The registry entry.
    places : sequence of Place
        Folders, in the order they are tried.

    Returns
    -------
    Resolution
    """
    for place in places:
        files = _files_in(entry, place.path)
        if files:
            missing = tuple(f.name for f in entry.files if f.name not in files)
            return Resolution(entry.name, place, files, missing, tuple(places))
    return Resolution(entry.name, None, searched=tuple(places))


def fetch_dataset(
    entry: KnownDataset,
    explicit: Sequence[Place] = (),
    roots: SearchRoots | None = None,
    *,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    retries: int = 1,
    progress: bool = True,
) -> Resolution:
    """Find `entry`'s files, downloading the missing ones into the cache when needed.

    Parameters
    ----------
    entry : KnownDataset
        The registry entry.
    explicit : sequence of Place
        Explicit folders, searched first.
    roots : SearchRoots, optional
        Default: `SearchRoots.from_environment()`; `roots.cache` receives downloads.
    download : bool
        False: never download (the error then says so).
    mirrors : sequence of str, optional
        Base URLs tried in turn; default: the registry's official mirrors.
    retries : int
        Extra attempts per mirror after a failed download.
    progress : bool
        Show a progress bar on stderr while downloading.

    Returns
    -------
    Resolution
        A complete one: every file of the dataset is present (not yet verified).

    Raises
    ------
    DataError
        The place found lacks a file (named), or the dataset is nowhere and cannot be
        downloaded (the message lists the places searched and the fix).
    """
    roots = roots or SearchRoots.from_environment()
    found = find_dataset(entry, explicit, roots)
    if found.complete:
        return found
    cache = Place("cache", roots.cache / entry.name)
    if found.place is not None and (found.place != cache or not download):
        missing = ", ".join(f"{n}(.gz)" for n in found.missing)
        cached = "; download disabled" if found.place == cache else ""
        raise DataError(
            f"{entry.name}: {found.place.path} holds some of its files but not {missing}{cached}"
        )
    wanted = found.missing if found.found else tuple(f.name for f in entry.files)
    urls = tuple(mirrors if mirrors is not None else entry.mirrors)
    if not download or not urls:
        reason = "download disabled" if not download else "no download mirror"
        raise _not_found(entry, found.searched, reason)
    try:
        download_files(entry, wanted, cache.path, urls, retries=retries, progress=progress)
    except DownloadError as exc:
        if not exc.unreachable:
            raise  # a mirror answered with bad bytes: the message names the file
        raise _not_found(entry, found.searched, str(exc)) from None
    return find_dataset(entry, explicit, roots)


def read_verified(entry: KnownDataset, resolution: Resolution) -> dict[str, bytes]:
    """Read every file of a complete resolution and check its content SHA256.

    Parameters
    ----------
    entry : KnownDataset
        The registry entry holding the checksums.
    resolution : Resolution
        A complete resolution (from `fetch_dataset`).

    Returns
    -------
    dict of str to bytes
        Decompressed content by registry file name.

    Raises
    ------
    DataError
        A file is unreadable or its content does not match the registry (the path is named).
    """
    contents = {}
    for item in entry.files:
        path = resolution.files[item.name]
        data = read_bytes(path)
        actual = hashlib.sha256(data).hexdigest()
        if actual != item.sha256:
            raise DataError(
                f"{path}: checksum mismatch for {entry.name}: content SHA256 {actual[:16]}..., "
                f"expected {item.sha256[:16]}...; replace or delete the file"
            )
        contents[item.name] = data
    return contents


def _files_in(entry: KnownDataset, folder: Path) -> dict[str, Path]:
    """The dataset's files present in `folder`, raw preferred over .gz."""
    found = {}
    for item in entry.files:
        for candidate in (folder / item.name, folder / f"{item.name}.gz"):
            if candidate.is_file():
                found[item.name] = candidate
                break
    return found


def _sklearn_place() -> tuple[Place, ...]:
    """scikit-learn's bundled data folder, located without importing scikit-learn (slow)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return ()
    return (Place("scikit-learn", Path(spec.submodule_search_locations[0]) / "datasets" / "data"),)


def _not_found(entry: KnownDataset, searched: Sequence[Place], reason: str) -> DataError:
    places = ", ".join(str(p) for p in searched)
    fix = FIX.format(name=entry.name)
    if entry.kind == "digits":
        fix = "install scikit-learn, or pass --data-dir FOLDER holding digits.csv.gz"
    return DataError(f"dataset {entry.name!r} not found; searched: {places}; {reason}; fix: {fix}")
