"""Shared fixtures for the data tests: places under tmp_path, toy files, a local HTTP server."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from mnistlab.data import KnownDataset, SearchRoots

from .synthetic import toy_arrays, toy_entry, write_idx_set


@pytest.fixture
def roots(tmp_path: Path) -> SearchRoots:
    """Implicit places under tmp_path, none of them populated."""
    return SearchRoots(
        env=None, repo=tmp_path / "repo", system=tmp_path / "system", cache=tmp_path / "cache"
    )


@pytest.fixture
def toy_source(tmp_path: Path) -> tuple[Path, KnownDataset]:
    """The toy dataset's four .gz files in tmp_path/source, and its registry entry."""
    folder = tmp_path / "source"
    write_idx_set(folder, toy_arrays())
    return folder, toy_entry(folder)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No request log on stderr."""


@pytest.fixture
def http_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1 (ephemeral port), and its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(_QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
