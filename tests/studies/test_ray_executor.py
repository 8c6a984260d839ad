"""The Ray executor on a local Ray: same results as local, dead workers retried, resume."""

import contextlib
import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from typer.testing import CliRunner  # noqa: E402

from mnistlab.cli import app  # noqa: E402
from mnistlab.data.cache import DataCache  # noqa: E402
from mnistlab.errors import MnistlabError  # noqa: E402
from mnistlab.studies import ray_executor  # noqa: E402
from mnistlab.studies.execute import RunTask  # noqa: E402
from mnistlab.studies.executors import RunEvents  # noqa: E402
from mnistlab.studies.expand import expand  # noqa: E402
from mnistlab.studies.loading import parse_study  # noqa: E402
from mnistlab.studies.options import ClusterOptions, ExecutorKind, RunOptions  # noqa: E402
from mnistlab.studies.results_folder import open_store  # noqa: E402
from mnistlab.studies.runner import run_study  # noqa: E402

STUDY = """\
name: tiny-ray
data: {dataset: digits, scaling: minmax, validation: {kind: tail, n: 300}}
model: {hidden: [8], dropout: 0.1, batch_norm: after}
training: {optimizer: {name: adam, learning_rate: 0.02}, epochs: 2, batch_size: 64}
grid: {model.activation: [relu, tanh]}
repetitions: 2
"""
RUNS = 4
SPEC = parse_study(STUDY, "tiny.yaml")
ON_RAY = RunOptions(executor=ExecutorKind.RAY, stack=False)  # a task per run: one to kill


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _stored(results: Path) -> dict[str, tuple[str, dict[str, float], list[float]]]:
    with open_store(results) as store:
        assert store.integrity_check() == "ok"
        runs = store.runs("tiny-ray")
        for run in runs:
            if run.status == "done":
                assert (results / store.artifacts(run.run_id)["weights"].path).is_file()
        return {r.run_id: (r.status, r.metrics, store.history(r.run_id).get("loss")) for r in runs}


def _kills(marker: Path, run_index: int, always: bool):
    """A `run_on_worker` that SIGKILLs its worker on the task of the study's run_index-th run:
    once (a marker file remembers it), or on every attempt."""
    target = expand(SPEC, DataCache().fingerprint)[run_index].run_id
    real = ray_executor.run_on_worker

    def work(task, data, parent):
        if task.runs[0].run_id == target and (always or not marker.exists()):
            with marker.open("a") as attempts:
                attempts.write("killed\n")
            os.kill(os.getpid(), signal.SIGKILL)
        return real(task, data, parent)

    return work, target


def test_a_study_on_ray_stores_what_the_local_executor_stores(tmp_path):
    study = tmp_path / "tiny.yaml"
    study.write_text(STUDY)
    for kind in ("local", "ray"):
        args = ["run", str(study), "--results", str(tmp_path / kind), "--no-report"]
        result = CliRunner().invoke(app, [*args, "--executor", kind])
        assert result.exit_code == 0, result.output
        assert f"ran {RUNS} runs; {RUNS} done" in result.output
    local, on_ray = _stored(tmp_path / "local"), _stored(tmp_path / "ray")
    assert local.keys() == on_ray.keys() and len(local) == RUNS
    for run_id, (status, metrics, loss) in local.items():
        ray_status, ray_metrics, ray_loss = on_ray[run_id]
        assert status == ray_status == "done"
        assert metrics.keys() == ray_metrics.keys()
        for key, value in metrics.items():
            assert ray_metrics[key] == pytest.approx(value, rel=0, abs=1e-6), key
        assert ray_loss == pytest.approx(loss, rel=0, abs=1e-6)


def test_a_chain_resumed_mid_way_gets_its_parent_weights_from_the_driver(tmp_path):
    text = STUDY.replace("repetitions: 2", "repetitions: {count: 2, mode: continue}").replace(
        "model.activation: [relu, tanh]", "training.optimizer.learning_rate: [0.01, 0.02]"
    )
    spec = parse_study(text, "tiny.yaml")
    run_study(spec, text, RunOptions(tmp_path / "local"))
    with open_store(tmp_path / "local") as store:
        parent, child = sorted(store.runs("tiny-ray"), key=lambda r: r.order)[:2]
        parent_file = tmp_path / "local" / store.artifacts(parent.run_id)["weights"].path
        stored = store.history(child.run_id)["loss"]
    data = DataCache()
    child_spec = next(r for r in expand(spec, data.fingerprint) if r.run_id == child.run_id)
    task = RunTask((child_spec,), tmp_path / "again", parent_weights=parent_file)
    started = []
    events = RunEvents(on_start=lambda run, worker: started.append((run.run_id, worker)))
    (again,) = ray_executor.RayExecutor(ClusterOptions(), data, events).submit([task])
    assert started == [(child.run_id, ray_executor.WORKER)]
    assert again.status == "done" and again.history["loss"] == stored
    assert Path(again.artifacts["weights"]).is_relative_to(tmp_path / "again")


def test_a_killed_worker_is_retried_and_every_run_is_stored_once(tmp_path, monkeypatch):
    marker = tmp_path / "killed"
    work, target = _kills(marker, 1, always=False)
    monkeypatch.setattr(ray_executor, "run_on_worker", work)
    counts = run_study(SPEC, STUDY, replace(ON_RAY, results=tmp_path / "r"))
    assert marker.read_text() == "killed\n"  # the first try died, the second trained it
    assert counts.ran == RUNS and counts.counts == {"done": RUNS}
    stored = _stored(tmp_path / "r")
    assert len(stored) == RUNS and stored[target][0] == "done"


def test_a_task_that_always_kills_its_worker_fails_after_the_bound(tmp_path, monkeypatch):
    marker = tmp_path / "killed"
    work, target = _kills(marker, 2, always=True)
    monkeypatch.setattr(ray_executor, "run_on_worker", work)
    counts = run_study(SPEC, STUDY, replace(ON_RAY, results=tmp_path / "r"))
    attempts = ray_executor.MAX_RETRIES + 1
    assert marker.read_text() == "killed\n" * attempts
    assert counts.counts == {"done": RUNS - 1, "failed": 1}
    with open_store(tmp_path / "r") as store:
        (failed,) = [r for r in store.runs("tiny-ray") if r.status == "failed"]
    assert failed.run_id == target
    assert failed.error.startswith(f"worker died {attempts} times: WorkerCrashedError")


class DriverKilled(BaseException):
    """Stands for SIGKILL of the driver: nothing after it runs in the runner (not an Exception)."""


class DiesAfterFirstResult:
    """A progress listener whose driver dies right after the first result is stored."""

    def on_study_begin(self, study: str, total: int, finished: int) -> None:
        pass

    def on_epoch(self, run, epoch, epochs, logs) -> None:
        pass

    def on_run_end(self, result) -> None:
        raise DriverKilled


def test_a_killed_driver_resumes_without_redoing_finished_runs(tmp_path):
    options = replace(ON_RAY, results=tmp_path)
    with contextlib.suppress(DriverKilled):
        run_study(SPEC, STUDY, replace(options, listener=DiesAfterFirstResult()))
    first = {k: v for k, v in _stored(tmp_path).items() if v[0] == "done"}
    assert len(first) == 1
    counts = run_study(SPEC, STUDY, options)
    assert counts.ran == RUNS - 1 and counts.counts == {"done": RUNS}
    again = _stored(tmp_path)
    assert {k: again[k] for k in first} == first  # the finished run was kept as it was


@pytest.mark.parametrize(
    ("cluster", "message"),
    [
        (ClusterOptions(gpus_per_run=0.5), "--gpus-per-run 0.5: the local Ray has 0 GPUs"),
        (ClusterOptions(cpus_per_run=3), "--cpus-per-run 3: the local Ray has 2 CPUs"),
    ],
)
def test_tasks_no_node_could_run_are_refused_in_one_line(cluster, message):
    data = DataCache()
    task = RunTask((expand(SPEC, data.fingerprint)[0],), Path("unused"))
    executor = ray_executor.RayExecutor(cluster, data, RunEvents(lambda run, worker: None))
    with pytest.raises(MnistlabError, match=message):
        list(executor.submit([task]))


def test_a_worker_deserialises_a_study_s_data_once():
    ref = ray.put(DataCache())
    assert ray_executor._worker_data(ref) is ray_executor._worker_data(ref)
