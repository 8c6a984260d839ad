"""The Ray executor: a study's tasks as Ray tasks on a cluster, results streamed to the driver.

The driver (the process running the study) reads the data, puts it in Ray's object store once,
and submits each task (a run, a chain, a stack) as a Ray task with its declared resources.
A worker trains in a scratch folder of its own and sends back the results with their
artifact files; the driver writes those files under the results folder and the runner stores
each result, so only the driver touches the results folder and the store, on its own disk.
A task whose worker or node dies is resubmitted, at most `MAX_RETRIES` times.
"""

from __future__ import annotations

import os
import site
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import ray
import torch
from ray.exceptions import (
    ActorDiedError,
    NodeDiedError,
    OutOfMemoryError,
    RayError,
    WorkerCrashedError,
)

import mnistlab
from mnistlab.data.cache import DataCache
from mnistlab.errors import MnistlabError
from mnistlab.status import RunStatus
from mnistlab.studies.execute import RunEvents, RunTask, execute
from mnistlab.studies.options import ClusterOptions
from mnistlab.studies.records import RunResult

MAX_RETRIES = 2
"""Resubmissions of a task whose Ray task failed (its worker or node died): 3 tries in all."""

WORKER = "ray"
"""Who runs a run, as the store records it (the node is only known once the task has run)."""

DEATHS = (WorkerCrashedError, NodeDiedError, ActorDiedError, OutOfMemoryError)
"""Ray's errors that say the process running a task died (rather than the task raising)."""

SRC_DIR = Path(mnistlab.__file__).resolve().parent.parent
"""The folder holding the mnistlab package: workers of a local Ray must import it from here."""


@dataclass(frozen=True)
class Shipment:
    """What a worker sends back for one task: its results, artifact paths relative to the
    results folder, and those files' contents (the driver writes them)."""

    results: list[RunResult]
    files: dict[str, bytes]


class RayExecutor:
    """Runs each task as a Ray task with `cluster.cpus_per_run` CPUs and `gpus_per_run` GPUs.

    Results come back as each task finishes (a chain's or a stack's when the whole task is
    done); every run is reported started when its task is submitted. A local Ray is started
    for the study when none is initialised and no address is given, and shut down after it.
    """

    def __init__(self, cluster: ClusterOptions, data: DataCache, events: RunEvents) -> None:
        self.cluster = cluster
        self.data = data
        self.events = events

    def submit(self, tasks: Sequence[RunTask]) -> Iterator[RunResult]:
        """Send every task to Ray and yield each run's result as its task finishes; a task
        whose Ray task fails is resent up to `MAX_RETRIES` times, then its runs fail."""
        started = _connect(self.cluster)
        pending: dict[ray.ObjectRef, tuple[RunTask, int]] = {}
        try:
            self._check_resources()
            for task in tasks:
                _read_data(self.data, task)
            data = ray.put(self.data.portable())  # once: every worker reads this one copy
            remote = ray.remote(run_on_worker).options(
                num_cpus=self.cluster.cpus_per_run,
                num_gpus=self.cluster.gpus_per_run,
                max_retries=0,  # retried here, so that the last failure is reported
            )

            def send(task: RunTask, attempt: int) -> None:
                ref = remote.remote(_worker_task(task, self.cluster), [data], _parent(task))
                pending[ref] = (task, attempt)

            for task in tasks:
                for run in task.runs:
                    self.events.on_start(run, WORKER)
                send(task, 1)
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                task, attempt = pending.pop(done[0])
                try:
                    shipment: Shipment = ray.get(done[0])
                except RayError as exc:
                    if attempt <= MAX_RETRIES:
                        send(task, attempt + 1)
                    else:
                        yield from _failed(task, attempt, exc)
                    continue
                yield from _unpack(shipment, task.results)
        finally:
            for ref in pending:  # the driver stopped early: leave no task running for it
                ray.cancel(ref, force=True)
            if started:
                ray.shutdown()

    def _check_resources(self) -> None:
        """On a local Ray, refuse tasks no node could ever run (Ray would wait forever)."""
        if self.cluster.address is not None:
            return  # a cluster may autoscale to what the tasks ask for
        have = ray.cluster_resources()
        for flag, name, wanted in (
            ("--cpus-per-run", "CPU", self.cluster.cpus_per_run),
            ("--gpus-per-run", "GPU", self.cluster.gpus_per_run),
        ):
            if wanted > have.get(name, 0):
                raise MnistlabError(
                    f"{flag} {wanted:g}: the local Ray has {have.get(name, 0):g} {name}s"
                )


def run_on_worker(task: RunTask, data: list[ray.ObjectRef], parent: bytes | None) -> Shipment:
    """What a Ray worker does with one task: train it in a scratch folder, ship the results.

    `data` holds the object ref of the study's portable `DataCache` (in a list, so that Ray
    hands over the ref, not a fresh copy per task); `parent` is the content of the chain's
    parent weights file, read by the driver.
    """
    cache = _worker_data(data[0])
    with tempfile.TemporaryDirectory(prefix="mnistlab-ray-") as scratch:
        folder = Path(scratch)
        local = replace(task, results=folder)
        if parent is not None:
            local = replace(local, parent_weights=folder / "parent.safetensors")
            local.parent_weights.write_bytes(parent)  # type: ignore[union-attr]
        results = list(execute(local, cache))
        files: dict[str, bytes] = {}
        for result in results:
            for kind, path in result.artifacts.items():
                relative = str(Path(path).relative_to(folder))
                files[relative] = Path(path).read_bytes()
                result.artifacts[kind] = relative
    return Shipment(results, files)


_worker_cache: dict[bytes, DataCache] = {}


def _worker_data(ref: ray.ObjectRef) -> DataCache:
    """This worker process's DataCache of a study, deserialised once, its splits kept."""
    key = ref.binary()
    if key not in _worker_cache:
        _worker_cache.clear()  # a worker serves one study's data at a time
        _worker_cache[key] = ray.get(ref)
    return _worker_cache[key]


def _worker_task(task: RunTask, cluster: ClusterOptions) -> RunTask:
    """The task as a worker runs it: torch threads = its CPUs, on CUDA when given a GPU, on
    the CPU when "auto" and given none (a GPU the task did not reserve is another's)."""
    device = task.device
    if cluster.gpus_per_run > 0 and torch.cuda.is_available():
        device = "cuda"
    elif device == "auto":
        device = "cpu"
    return replace(task, threads=task.threads or cluster.cpus_per_run, device=device)


def _parent(task: RunTask) -> bytes | None:
    """A chain's parent weights, read on the driver (None: none, or missing: the run says)."""
    path = task.parent_weights
    return path.read_bytes() if path is not None and path.is_file() else None


def _read_data(data: DataCache, task: RunTask) -> None:
    """Read every dataset or table the task needs into the driver's cache, to ship it."""
    for run in task.runs:
        spec = run.config.data
        if spec.regression is not None:
            data.table(spec)
        else:
            data.dataset(spec)


def _unpack(shipment: Shipment, results: Path) -> Iterator[RunResult]:
    """Write a shipment's artifact files under the results folder; yield its results."""
    for relative, content in shipment.files.items():
        target = results / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(content)
        partial.replace(target)  # a driver killed mid-write leaves no truncated artifact
    for result in shipment.results:
        result.artifacts = {k: str(results / p) for k, p in result.artifacts.items()}
        yield result


def _failed(task: RunTask, attempts: int, exc: RayError) -> Iterator[RunResult]:
    """Every run of a task whose Ray task failed `attempts` times, as failed with the reason."""
    what = "worker died" if isinstance(exc, DEATHS) else "Ray task failed"
    last = str(exc).strip().splitlines()
    reason = f"{what} {attempts} times: {type(exc).__name__}: {last[0] if last else ''}"
    for run in task.runs:
        yield RunResult(run.run_id, RunStatus.FAILED, error=reason)


def _connect(cluster: ClusterOptions) -> bool:
    """Connect to Ray: the one initialised, the cluster at `cluster.address`, or a local one
    started here; return whether it was started here (then the executor shuts it down)."""
    if ray.is_initialized():
        return False
    if cluster.address is not None:
        ray.init(address=cluster.address)
        return False
    ray.init(
        num_cpus=len(os.sched_getaffinity(0)),
        include_dashboard=False,
        log_to_driver=False,
        runtime_env=_local_runtime_env(),
    )
    return True


def _local_runtime_env() -> dict[str, Any] | None:
    """PYTHONPATH for the workers of a local Ray when mnistlab is neither installed nor on
    PYTHONPATH already (run from a checkout): workers start fresh interpreters."""
    installed = any(Path(p).resolve() == SRC_DIR for p in site.getsitepackages())
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if installed or any(p and Path(p).resolve() == SRC_DIR for p in paths):
        return None
    value = os.pathsep.join(p for p in (str(SRC_DIR), *paths) if p)
    return {"env_vars": {"PYTHONPATH": value}}
