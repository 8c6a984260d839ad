"""Downloading a known dataset's .gz files with pooch: mirrors in turn, retries, hash checks.

Each file is checked twice before it is kept: pooch checks the MD5 the official mirrors
publish for their .gz bytes (the file only reaches its final name if that matches), then the
decompressed content is checked against the registry's SHA256 (and deleted if it does not
match). A mirror that fails is followed by the next one.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from mnistlab.data.idx import read_bytes
from mnistlab.data.registry import DataFile, KnownDataset
from mnistlab.errors import DataError

if TYPE_CHECKING:
    from rich.progress import Progress


class DownloadError(DataError):
    """A file could not be downloaded; `unreachable` when no mirror answered at all."""

    def __init__(self, message: str, unreachable: bool) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def download_files(
    entry: KnownDataset,
    names: Sequence[str],
    folder: Path,
    mirrors: Sequence[str],
    *,
    retries: int = 1,
    progress: bool = True,
    timeout: float = 30.0,
) -> dict[str, Path]:
    """Download some of `entry`'s files as `<name>.gz` into `folder`, verified.

    Parameters
    ----------
    entry : KnownDataset
        The registry entry holding the checksums.
    names : sequence of str
        Registry file names to download, e.g. ("train-images-idx3-ubyte",).
    folder : Path
        Destination, created if needed (the cache's `<name>/` folder).
    mirrors : sequence of str
        Base URLs tried in turn for each file.
    retries : int
        Extra attempts per mirror (pooch waits 1 s, 2 s, ... between them).
    progress : bool
        Show a rich progress bar on stderr.
    timeout : float
        Seconds before a silent connection counts as failed.

    Returns
    -------
    dict of str to Path
        The downloaded file of each name.

    Raises
    ------
    DownloadError
        Every mirror failed for a file; the message names the file and each mirror's failure.
    """
    folder.mkdir(parents=True, exist_ok=True)
    return {
        name: _download_one(entry.file(name), folder, mirrors, retries, progress, timeout)
        for name in names
    }


def _download_one(
    item: DataFile,
    folder: Path,
    mirrors: Sequence[str],
    retries: int,
    progress: bool,
    timeout: float,
) -> Path:
    """Try each mirror for one file until one serves the right bytes."""
    import pooch  # imported here: only a download needs it (and requests), ~0.15 s
    import requests

    fname = f"{item.name}.gz"
    failures: list[str] = []
    unreachable = True
    for base in mirrors:
        host = urlparse(base).netloc or base
        known = f"md5:{item.md5_gz}" if item.md5_gz else None
        fetcher = pooch.create(
            path=folder,
            base_url=base if base.endswith("/") else base + "/",
            registry={fname: known},
            retry_if_failed=retries,
        )
        bar = _ProgressBar(f"{fname} from {host}") if progress else False
        try:
            with _quiet_pooch():
                path = Path(
                    fetcher.fetch(
                        fname, downloader=pooch.HTTPDownloader(progressbar=bar, timeout=timeout)
                    )
                )
        except (requests.ConnectionError, requests.Timeout) as exc:
            failures.append(f"{host}: unreachable ({type(exc).__name__})")
            continue
        except requests.HTTPError as exc:
            unreachable = False
            status = exc.response.status_code if exc.response is not None else "?"
            failures.append(f"{host}: HTTP {status}")
            continue
        except requests.RequestException as exc:
            unreachable = False
            failures.append(f"{host}: {type(exc).__name__}")
            continue
        except ValueError:  # pooch: the .gz does not match the published MD5; it kept nothing
            unreachable = False
            failures.append(f"{host}: MD5 of the .gz differs from the published {item.md5_gz}")
            continue
        finally:
            if bar:
                bar.close()
        problem = _content_problem(item, path)
        if problem is None:
            return path
        path.unlink(missing_ok=True)  # never leave bad bytes in the cache as if valid
        unreachable = False
        failures.append(f"{host}: {problem}")
    raise DownloadError(
        f"{fname}: download failed from every mirror: {'; '.join(failures)}", unreachable
    )


def _content_problem(item: DataFile, path: Path) -> str | None:
    """Why the downloaded file's decompressed content is wrong, or None when it is right."""
    try:
        actual = hashlib.sha256(read_bytes(path)).hexdigest()
    except DataError as exc:
        return str(exc).removeprefix(f"{path}: ")
    if actual != item.sha256:
        return f"content SHA256 {actual[:16]}... differs from the registry's {item.sha256[:16]}..."
    return None


@contextmanager
def _quiet_pooch() -> Iterator[None]:
    """Silence pooch's own log lines (our progress bar says the same)."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


class _ProgressBar:
    """The progress-bar object pooch drives (total, update, reset, close), drawn by rich."""

    def __init__(self, description: str) -> None:
        self.total = 0
        self._description = description
        self._progress: Progress | None = None
        self._task = 0

    def _started(self) -> Progress:
        if self._progress is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._progress.start()
            self._task = self._progress.add_task(self._description, total=self.total or None)
        return self._progress

    def update(self, n: int) -> None:
        """Advance by `n` bytes."""
        self._started().update(self._task, total=self.total or None, advance=n)

    def reset(self) -> None:
        """Back to zero (pooch then fills the bar with the exact total)."""
        self._started().reset(self._task, total=self.total or None)

    def close(self) -> None:
        """Stop drawing."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
