"""export_mlflow into a file tracking store: one MLflow run per mnistlab run, however often."""

import json
import os
import shutil

import pytest

from mnistlab.results import open_results
from mnistlab.trackers import export_mlflow
from mnistlab.trackers.common import clip
from mnistlab.trackers.mlflow_export import FILE_STORE_ENV, KIND_TAG, PARAM_VALUE_LIMIT, RUN_ID_TAG

pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient

STUDY = "tiny-results"


def test_export_twice_makes_one_mlflow_run_per_run_with_its_numbers(
    tiny_results, tmp_path, monkeypatch
):
    folder = shutil.copytree(tiny_results, tmp_path / "results")
    (folder / STUDY / "report.html").write_text("<h1>tiny-results</h1>")
    uri = (tmp_path / "mlruns").as_uri()
    with open_results(folder) as results:
        first = export_mlflow(results, STUDY, uri)
        second = export_mlflow(results, STUDY, uri)
        records = results.records(STUDY)
        histories = results.store.histories(STUDY)
    assert (first.written, first.skipped) == (4, 0)
    assert (second.written, second.skipped) == (0, 4)
    assert second.runs == first.runs
    monkeypatch.setenv(FILE_STORE_ENV, "true")  # MLflow 3: the file store is opt-in
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(f"mnistlab/{STUDY}")
    exported = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if r.data.tags.get(KIND_TAG) == "run"
    ]
    by_id = {r.data.tags[RUN_ID_TAG]: r for r in exported}
    assert len(exported) == len(by_id) == len(records)
    for record in records:
        run = by_id[record.run_id]
        assert run.info.status == "FINISHED"
        tags = run.data.tags
        assert (tags["mnistlab.status"], tags["mnistlab.variant"]) == ("done", record.variant)
        assert tags["mnistlab.seed"] == str(record.seed)
        params = run.data.params
        assert params["model.hidden"] == json.dumps(record.config["model"]["hidden"])
        assert params["training.epochs"] == "2" and params["seed"] == str(record.seed)
        assert all(len(v) <= PARAM_VALUE_LIMIT for v in params.values())
        assert run.data.metrics["final/test_accuracy"] == record.metrics["test_accuracy"]
        loss = client.get_metric_history(run.info.run_id, "val_loss")
        assert [(m.step, m.value) for m in sorted(loss, key=lambda m: m.step)] == list(
            enumerate(histories[record.run_id]["val_loss"])
        )
        artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
        assert artifacts == [f"{record.run_id}.safetensors"]
    everything = client.search_runs([experiment.experiment_id])
    (study_run,) = [r for r in everything if r.data.tags.get(KIND_TAG) == "study"]
    assert len(everything) == len(records) + 1
    assert {r.data.tags["mlflow.parentRunId"] for r in exported} == {study_run.info.run_id}
    assert [a.path for a in client.list_artifacts(study_run.info.run_id)] == ["report.html"]


def test_the_file_store_opt_in_lasts_only_for_the_export(tiny_results, tmp_path, monkeypatch):
    monkeypatch.delenv(FILE_STORE_ENV, raising=False)
    with open_results(tiny_results) as results:
        summary = export_mlflow(results, STUDY, (tmp_path / "mlruns").as_uri())
    assert summary.written == 4
    assert FILE_STORE_ENV not in os.environ


def test_long_values_are_clipped_to_the_limit():
    clipped = clip("x" * 2 * PARAM_VALUE_LIMIT, PARAM_VALUE_LIMIT)
    assert len(clipped) == PARAM_VALUE_LIMIT and clipped.endswith("…")
    assert clip("short", PARAM_VALUE_LIMIT) == "short"
