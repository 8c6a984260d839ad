"""Where a results folder keeps things: the store file and each run's artifact files."""

from __future__ import annotations

from pathlib import Path

from mnistlab.studies.store import Store, StoreError

DB_NAME = "mnistlab.db"


def open_store(results: Path) -> Store:
    """The results store of a results folder (created when missing)."""
    return Store.open(results / DB_NAME)


def existing_store(results: Path) -> Store:
    """The store of a results folder that must already hold one (else a one-line error)."""
    if not has_store(results):
        raise StoreError(f"{results}: no results store here ({DB_NAME}); run a study first")
    return open_store(results)


def has_store(results: Path) -> bool:
    """Whether a results folder holds a store already."""
    return (results / DB_NAME).is_file()


def runs_folder(results: Path, study: str) -> Path:
    """The folder of a study's run files: `<results>/<study>/runs/`."""
    return results / study / "runs"


def weights_path(results: Path, study: str, run_id: str) -> Path:
    """Where a run's final weights live: `<results>/<study>/runs/<run_id>.safetensors`."""
    return runs_folder(results, study) / f"{run_id}.safetensors"


def captures_path(results: Path, study: str, run_id: str) -> Path:
    """Where a run's training-time arrays live: `<results>/<study>/runs/<run_id>.captures.npz`."""
    return runs_folder(results, study) / f"{run_id}.captures.npz"


def scores_path(results: Path, study: str, run_id: str) -> Path:
    """Where a classic model's class scores live: `<results>/<study>/runs/<run_id>.scores.npz`."""
    return runs_folder(results, study) / f"{run_id}.scores.npz"
