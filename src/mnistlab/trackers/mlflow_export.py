"""A study as MLflow runs: one experiment per study, one MLflow run per mnistlab run.

Each run gets its flattened configuration as params, its History as per-epoch metrics
(`step` = the 0-based epoch), its final metrics as `final/<key>`, tags naming it
(`mnistlab.run_id`, status, variant, seed, ...) and its weights file as an artifact. The
study's report, when one was written, is an artifact of one more run tagged
`mnistlab.kind = study`, the parent of the others. Exporting again writes only the runs
the experiment does not hold yet (found by their `mnistlab.run_id` tag): finished runs
never change, so what was exported stays right; the study run's report is refreshed.

Written with `MlflowClient` (batched `log_batch`), never the fluent global-state API.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from mnistlab.status import RunStatus
from mnistlab.studies.records import RunRecord
from mnistlab.trackers.common import (
    ExportSummary,
    as_float,
    clip,
    exportable,
    flat_config,
    last_epoch,
    require,
)

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from mnistlab.results import Results

EXPERIMENT_PREFIX = "mnistlab/"  # experiment name: mnistlab/<study>
RUN_ID_TAG = "mnistlab.run_id"
KIND_TAG = "mnistlab.kind"  # "run", or "study" for the run holding the report
PARENT_TAG = "mlflow.parentRunId"  # MLflow shows tagged runs nested under their parent
RUN_NAME_TAG = "mlflow.runName"
PARAM_VALUE_LIMIT = 500  # characters: the limit of MLflow servers before 2.x (now 6000)
TAG_VALUE_LIMIT = 5000  # characters, under MLflow's 8000
PARAMS_PER_BATCH = 100  # MLflow's limit for params (and tags) in one log_batch
METRICS_PER_BATCH = 1000  # MLflow's limit for metrics in one log_batch
FILE_STORE_ENV = "MLFLOW_ALLOW_FILE_STORE"  # MLflow 3 refuses a file store without it
TRACKING_ENV = "MLFLOW_TRACKING_URI"
DEFAULT_FOLDER = "mlruns"
DATABRICKS = "databricks"  # the one tracking URI without a scheme that is not a path
MLFLOW_STATUS = {RunStatus.DONE: "FINISHED", RunStatus.DIVERGED: "FAILED"}  # else FAILED


def default_tracking_uri(results: Path) -> str:
    """Where `export --to mlflow` writes without `--tracking-uri`: `$MLFLOW_TRACKING_URI`
    when set, else a file store `mlruns/` next to the results folder."""
    return os.environ.get(TRACKING_ENV) or (results.resolve().parent / DEFAULT_FOLDER).as_uri()


def export_mlflow(results: Results, study: str, tracking_uri: str | None = None) -> ExportSummary:
    """Write a study's finished runs to MLflow, each once however often it is exported.

    Parameters
    ----------
    results : Results
        The results folder, open (`mnistlab.results.open_results`).
    study : str
        The study's name; its experiment is `mnistlab/<study>`.
    tracking_uri : str, optional
        An MLflow tracking URI (`file:///…/mlruns`, `http://host:5000`, `sqlite:///…`
        needs the full `mlflow` package); default `default_tracking_uri(results.folder)`.
        A file store (a `file:` URI or a plain path) is MLflow 3's legacy backend: this
        sets `MLFLOW_ALLOW_FILE_STORE=true` while it writes there, and only then.

    Returns
    -------
    ExportSummary
        `runs`: mnistlab run id -> MLflow run id, for every finished run.

    Raises
    ------
    MissingExtra
        mlflow is not installed.
    """
    require("mlflow", "mlflow")
    from mlflow.tracking import MlflowClient

    uri = tracking_uri or default_tracking_uri(results.folder)
    with _file_store_allowed(uri):
        return _export(MlflowClient(tracking_uri=uri), uri, results, study)


def _export(client: MlflowClient, uri: str, results: Results, study: str) -> ExportSummary:
    """`export_mlflow` with its client made."""
    records = exportable(results.records(study))  # an unknown study fails before any write
    name = EXPERIMENT_PREFIX + study
    experiment = client.get_experiment_by_name(name)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(name, tags={"mnistlab.study": study})
    )
    parent, known = _exported(client, experiment_id)
    parent = parent or _create_run(client, experiment_id, study, {KIND_TAG: "study"})
    report = results.report(study)
    if report is not None:
        client.log_artifact(parent, str(report))
    histories = results.store.histories(study)
    ids: dict[str, str] = {}
    written = 0
    for record in records:
        if record.run_id in known:
            ids[record.run_id] = known[record.run_id]
            continue
        ids[record.run_id] = _write_run(
            client, experiment_id, parent, results, record, histories.get(record.run_id, {})
        )
        written += 1
    client.set_terminated(parent, "FINISHED")
    return ExportSummary(study, f"{uri} ({name})", written, len(records) - written, ids)


@contextmanager
def _file_store_allowed(uri: str) -> Iterator[None]:
    """Within: `MLFLOW_ALLOW_FILE_STORE=true` when `uri` is a file store; restored after."""
    if not _is_file_store(uri):
        yield
        return
    before = os.environ.get(FILE_STORE_ENV)
    os.environ[FILE_STORE_ENV] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(FILE_STORE_ENV, None)
        else:
            os.environ[FILE_STORE_ENV] = before


def _is_file_store(uri: str) -> bool:
    """Whether a tracking URI names MLflow's file store: a `file:` URI or a plain path."""
    return urlparse(uri).scheme in ("", "file") and uri != DATABRICKS


def _exported(client: MlflowClient, experiment_id: str) -> tuple[str | None, dict[str, str]]:
    """What an earlier export left in the experiment: the study run's MLflow id (or None),
    and the runs by their `mnistlab.run_id` tag (mnistlab id -> MLflow run id)."""
    parent: str | None = None
    found: dict[str, str] = {}
    token = None
    while True:
        page = client.search_runs([experiment_id], page_token=token)
        for run in page:
            tags = run.data.tags
            if tags.get(KIND_TAG) == "study":
                parent = parent or run.info.run_id
            elif RUN_ID_TAG in tags:
                found.setdefault(tags[RUN_ID_TAG], run.info.run_id)
        token = page.token
        if not token:
            return parent, found


def _create_run(client: MlflowClient, experiment_id: str, name: str, tags: dict[str, str]) -> str:
    """A new MLflow run with a name and tags; its id."""
    run = client.create_run(experiment_id, tags={RUN_NAME_TAG: name, **tags}, run_name=name)
    return str(run.info.run_id)


def _write_run(
    client: MlflowClient,
    experiment_id: str,
    parent: str,
    results: Results,
    record: RunRecord,
    history: dict[str, list[float]],
) -> str:
    """One mnistlab run as an MLflow run: params, metrics, tags, weights; its MLflow id."""
    from mlflow.entities import Metric, Param

    run_id = _create_run(
        client, experiment_id, _run_name(record), {**_tags(record), PARENT_TAG: parent}
    )
    params = [Param(k, clip(v, PARAM_VALUE_LIMIT)) for k, v in _params(record).items()]
    now = int(time.time() * 1000)
    metrics = [
        Metric(key, as_float(value), now, epoch)
        for key, values in history.items()
        for epoch, value in enumerate(values)
    ]
    final_step = last_epoch(history)
    metrics += [
        Metric(f"final/{key}", as_float(value), now, final_step)
        for key, value in record.metrics.items()
    ]
    for chunk in _chunks(params, PARAMS_PER_BATCH):
        client.log_batch(run_id, params=chunk)
    for chunk in _chunks(metrics, METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=chunk)
    weights = results.artifact(record, "weights")
    if weights is not None:
        client.log_artifact(run_id, str(weights))
    client.set_terminated(run_id, MLFLOW_STATUS.get(record.status, "FAILED"))
    return run_id


def _run_name(record: RunRecord) -> str:
    """What MLflow lists a run as: variant, repetition and the id's start."""
    return f"{record.variant or 'run'} rep {record.repetition} ({record.run_id[:8]})"


def _tags(record: RunRecord) -> dict[str, str]:
    """A run's identity as MLflow tags (`mnistlab.*`); the error when it failed."""
    tags = {
        KIND_TAG: "run",
        RUN_ID_TAG: record.run_id,
        "mnistlab.study": record.study,
        "mnistlab.status": str(record.status),
        "mnistlab.variant": record.variant or "",
        "mnistlab.seed": str(record.seed),
        "mnistlab.repetition": str(record.repetition),
        "mnistlab.group": record.group,
        "mnistlab.role": record.role,
    }
    if record.error:
        tags["mnistlab.error"] = clip(record.error, TAG_VALUE_LIMIT)
    return tags


def _params(record: RunRecord) -> dict[str, str]:
    """The run's resolved configuration as dotted params, plus its seed and repetition."""
    return {
        **flat_config(record.config),
        "seed": str(record.seed),
        "repetition": str(record.repetition),
    }


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    """`items` in consecutive lists of at most `size`."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
