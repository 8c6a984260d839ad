"""Where a results folder keeps its store and run files."""

from pathlib import Path

import pytest

from mnistlab.studies.results_folder import (
    DB_NAME,
    captures_path,
    existing_store,
    has_store,
    open_store,
    scores_path,
    weights_path,
)
from mnistlab.studies.store import StoreError


def test_run_files_live_under_the_study_runs_folder():
    results = Path("results")
    assert weights_path(results, "s", "abc") == Path("results/s/runs/abc.safetensors")
    assert captures_path(results, "s", "abc") == Path("results/s/runs/abc.captures.npz")
    assert scores_path(results, "s", "abc") == Path("results/s/runs/abc.scores.npz")


def test_existing_store_refuses_a_folder_without_one(tmp_path):
    with pytest.raises(StoreError, match=f"no results store here \\({DB_NAME}\\)"):
        existing_store(tmp_path)
    assert not has_store(tmp_path)
    open_store(tmp_path).close()
    assert has_store(tmp_path)
    with existing_store(tmp_path) as store:
        assert store.list_studies() == []
