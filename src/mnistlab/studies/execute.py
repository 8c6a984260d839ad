"""Running one task of a study in the current process: a run, or a chain in continue mode."""

from __future__ import annotations

import hashlib
import math
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from mnistlab.data import Data, Split
from mnistlab.data.cache import DataCache
from mnistlab.models import build_model
from mnistlab.models.card import ModelCard
from mnistlab.runtime import default_threads, make_generator, run_stream, select_device
from mnistlab.status import RunStatus
from mnistlab.studies.records import RunResult, RunSpec
from mnistlab.studies.results_folder import captures_path, scores_path, weights_path
from mnistlab.training.callbacks import Callback, save_weights
from mnistlab.training.classic import as_tensors, fit_numpy, fit_sklearn
from mnistlab.training.engines import Engine
from mnistlab.training.history import History
from mnistlab.training.loop import evaluate, fit
from mnistlab.training.probes import make_probes, probe_arrays
from mnistlab.training.stacked import fit_stack, stack_pays
from mnistlab.training.state import RunSeeds

CLASSIC_KINDS = frozenset({"sklearn", "numpy"})  # fitted outside the torch loop

STEP_OVERHEAD_SECONDS = 2e-6
"""The compiled engine's time a step beyond its arithmetic (784-15-10 at batch 2: 4 µs a
step, about 1 µs of it arithmetic; docs/performance.md)."""
ONE_THREAD_FLOPS = 50e9
"""What one thread of the compiled kernels sustains on a step's products (784-512-10 at
batch 2: 48 µs a sample, 2.4 MFLOP; docs/performance.md)."""

EpochListener = Callable[[RunSpec, int, int, dict[str, float]], None]
"""Called after each epoch with (run, epoch, epochs, logs): the progress display's feed."""


@dataclass(frozen=True)
class RunEvents:
    """What an executor reports while it works: a run starting (with who runs it), epochs."""

    on_start: Callable[[RunSpec, str], None]
    on_epoch: EpochListener | None = None


@dataclass(frozen=True)
class RunTask:
    """What an executor runs: one run, a continue-mode chain run in order, or a stack.

    A stack (`stacked`) is independent runs that share an architecture, trained as one model
    (`fit_stack`); should the stack fail, its runs are retried one by one. `parent_weights`
    is the weights file of the first run's parent, when a chain resumes in the middle;
    `results` is the results folder (weights go under `<results>/<study>/`).
    """

    runs: tuple[RunSpec, ...]
    results: Path
    data_dir: Path | None = None
    parent_weights: Path | None = None
    threads: int | None = None
    device: str = "auto"
    stacked: bool = False  # independent runs of one architecture, trained as one stack
    captures: tuple[str, ...] = ()  # training-time probes (`training.probes.CAPTURES`)
    engine: Engine = "auto"  # `training.engines.choose_engine`; "autograd" forces torch


def _sample_mlp(run: RunSpec, cache: DataCache) -> nn.Module | None:
    """The run's MLP at the dataset's full input width (to judge its cost), None if no MLP."""
    if run.config.model.kind != "mlp" or run.config.data.regression is not None:
        return None
    dataset = cache.dataset(run.config.data)
    return build_model(run.config.model, dataset.image_shape, dataset.n_classes, make_generator(0))


def one_thread_run(run: RunSpec, cache: DataCache) -> bool:
    """Whether `fit` would train this run on one thread: a dense model whose largest GEMM is
    small (`runtime.default_threads`), judged on the dataset's full input width."""
    net = _sample_mlp(run, cache)
    return net is not None and default_threads(net, run.config.training.batch_size) == 1


def worth_stacking(run: RunSpec, cache: DataCache) -> bool:
    """Whether runs like this one train faster stacked than one by one (`stack_pays`)."""
    net = _sample_mlp(run, cache)
    return net is not None and stack_pays(net, run.config.training)


def training_steps(run: RunSpec, cache: DataCache) -> int:
    """At most how many optimiser steps the run takes: epochs × steps_per_epoch, or × batches
    of the full training set (subsets and validation splits make it fewer)."""
    training = run.config.training
    if training.steps_per_epoch is not None:
        return training.epochs * training.steps_per_epoch
    rows = cache.training_rows(run.config.data)
    return training.epochs * math.ceil(rows / training.batch_size)


def least_seconds(run: RunSpec, cache: DataCache) -> float | None:
    """A lower bound on the run's training time on one thread, None when it is no dense MLP.

    Its steps at the compiled engine's cost (the fastest engine there is for such runs):
    `STEP_OVERHEAD_SECONDS` a step plus 6 flops per multiply-add and sample (forward 2,
    backward 4) at `ONE_THREAD_FLOPS`.
    """
    net = _sample_mlp(run, cache)
    if net is None:
        return None
    macs = sum(p.numel() for name, p in net.named_parameters() if name.endswith("kernel"))
    steps = training_steps(run, cache)
    samples = steps * run.config.training.batch_size
    return steps * STEP_OVERHEAD_SECONDS + samples * 6 * macs / ONE_THREAD_FLOPS


def execute(
    task: RunTask,
    cache: DataCache,
    on_epoch: EpochListener | None = None,
    on_start: Callable[[RunSpec], None] | None = None,
) -> Iterator[RunResult]:
    """Run the task's runs in order, yielding each result as soon as it is finished.

    `cache` is this process's data (`DataCache` of the task's `data_dir`), shared by its runs.

    A run that raises is reported as `failed` with its traceback; a chain stops at a failed
    or diverged run (the next ones would continue from broken weights) and reports the rest
    as failed with that reason.
    """
    if task.stacked:
        yield from _execute_stack(task, cache, on_epoch, on_start)
        return
    device = select_device(task.device)
    previous: nn.Module | None = None
    for position, run in enumerate(task.runs):
        if position > 0 and previous is None:
            yield RunResult(run.run_id, RunStatus.FAILED, error="its parent run did not finish")
            continue
        if on_start is not None:
            on_start(run)
        started = time.perf_counter()
        try:
            with run_stream(device):
                data = cache.data(run.config.data, device)
                if run.config.model.kind in CLASSIC_KINDS:
                    net, result = None, _train_classic(run, data, task)
                else:
                    parent_state = _parent_state(task, position, previous)
                    net, result = _train(run, data, task, parent_state, on_epoch)
        except Exception:  # a failed run must never stop the study: record it
            previous = None
            yield RunResult(
                run.run_id,
                RunStatus.FAILED,
                seconds=time.perf_counter() - started,
                error=traceback.format_exc(),
            )
            continue
        result.seconds = time.perf_counter() - started
        previous = net if result.status == RunStatus.DONE else None
        yield result


def _execute_stack(
    task: RunTask,
    cache: DataCache,
    on_epoch: EpochListener | None,
    on_start: Callable[[RunSpec], None] | None,
) -> Iterator[RunResult]:
    """Train the task's runs as one stack; one by one where that is faster or the stack fails."""
    runs = task.runs
    for run in runs:
        if on_start is not None:
            on_start(run)
    started = time.perf_counter()
    device = select_device(task.device)
    try:
        with run_stream(device):
            data = cache.data(runs[0].config.data, device)
            nets = [_build(run, data) for run in runs]
            alone = not stack_pays(nets[0], runs[0].config.training, data.train)
            if not alone:
                histories = fit_stack(
                    nets,
                    data.train,
                    [r.config.training for r in runs],
                    val=data.val,
                    seeds=[r.seed for r in runs],
                    threads=task.threads,
                    callbacks=_stack_feed(runs, on_epoch),
                    evaluate_on=_evaluate_on(runs[0], data),
                )
                results = [
                    _result(run, net, data, history, task)
                    for run, net, history in zip(runs, nets, histories, strict=True)
                ]
    except Exception as exc:  # the single-run path reports each run's own failure precisely
        warnings.warn(
            f"a stack of {len(runs)} runs failed ({exc!r}); running them one by one",
            RuntimeWarning,
            stacklevel=2,
        )
        for run in runs:
            yield from execute(replace(task, runs=(run,), stacked=False), cache)
        return
    if alone:
        for run in runs:
            yield from execute(replace(task, runs=(run,), stacked=False), cache)
        return
    seconds = (time.perf_counter() - started) / len(runs)  # the stack's time, shared evenly
    for result in results:
        result.seconds = seconds
        yield result


def _stack_feed(runs: tuple[RunSpec, ...], on_epoch: EpochListener | None) -> list[list[Callback]]:
    """The progress display follows the stack's longest-training member (one bar per stack)."""
    if on_epoch is None:
        return []
    longest = max(range(len(runs)), key=lambda m: runs[m].config.training.epochs)
    return [[_EpochFeed(run, on_epoch)] if m == longest else [] for m, run in enumerate(runs)]


def _parent_state(
    task: RunTask, position: int, previous: nn.Module | None
) -> dict[str, torch.Tensor] | None:
    if position > 0 and previous is not None:
        return previous.state_dict()
    if position == 0 and task.runs[0].parent is not None:
        if task.parent_weights is None or not task.parent_weights.is_file():
            raise FileNotFoundError(
                f"run {task.runs[0].run_id} continues run {task.runs[0].parent}, "
                f"whose weights are missing ({task.parent_weights})"
            )
        return load_file(str(task.parent_weights))
    return None


class _EpochFeed(Callback):
    """Forwards each epoch's logs to the progress display."""

    def __init__(self, run: RunSpec, listener: EpochListener) -> None:
        self.run, self.listener = run, listener

    def on_epoch_end(self, state: object, epoch: int, logs: dict[str, float]) -> None:
        self.listener(self.run, epoch, self.run.config.training.epochs, logs)


def _train(
    run: RunSpec,
    data: Data,
    task: RunTask,
    parent_state: dict[str, torch.Tensor] | None,
    on_epoch: EpochListener | None,
) -> tuple[nn.Module, RunResult]:
    net = _build(run, data)
    if parent_state is not None:
        net.load_state_dict(parent_state)
    callbacks: list[Callback] = [_EpochFeed(run, on_epoch)] if on_epoch else []
    probes = make_probes(task.captures, data.train.x)
    callbacks.extend(probes)
    history = fit(
        net,
        data.train,
        run.config.training,
        val=data.val,
        seed=run.seed,
        callbacks=callbacks,
        threads=task.threads,
        engine=task.engine,
        evaluate_on=_evaluate_on(run, data),
    )
    result = _result(run, net, data, history, task)
    if probes:
        path = captures_path(task.results, run.study, run.run_id)
        np.savez_compressed(path, **probe_arrays(probes))
        result.artifacts["captures"] = str(path)
    return net, result


def _evaluate_on(run: RunSpec, data: Data) -> dict[str, Split]:
    """The splits `training.evaluate_each_epoch` names (a fold's run has no test split)."""
    names = run.config.training.evaluate_each_epoch or ()
    splits = {"train": data.train, "test": data.test}
    return {name: splits[name] for name in names if splits[name] is not None}


def _train_classic(run: RunSpec, data: Data, task: RunTask) -> RunResult:
    """Fit a scikit-learn or NumPy model; store its scores (and the NumPy net's weights)."""
    model = run.config.model
    evaluate_test = run.role != "cv-fold"  # a fold is scored on its held-out rows only
    if model.kind == "numpy":
        outcome = fit_numpy(model, run.config.training, data, run.seed, evaluate_test=evaluate_test)
    else:
        outcome = fit_sklearn(model, data, run.seed, evaluate_test=evaluate_test)
    artifacts = {}
    if outcome.weights is not None:
        path = weights_path(task.results, run.study, run.run_id)
        save_weights(as_tensors(outcome.weights), path)
        artifacts["weights"] = str(path)
    if run.role != "cv-fold":
        path = scores_path(task.results, run.study, run.run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"scores_{k}": v for k, v in outcome.scores.items()}
        arrays.update({f"labels_{k}": v for k, v in outcome.labels.items()})
        np.savez_compressed(path, source=np.array(outcome.score_source), **arrays)
        artifacts["scores"] = str(path)
    return RunResult(
        run.run_id,
        RunStatus.DONE,
        metrics=outcome.metrics,
        history=outcome.history,
        artifacts=artifacts,
        engine=model.kind,
    )


def _build(run: RunSpec, data: Data) -> nn.Module:
    """The run's model, initialised from its seed's initialisation stream."""
    init = make_generator(RunSeeds.from_seed(run.seed).init)
    return build_model(run.config.model, data.input_shape, data.n_classes, init)


def _result(
    run: RunSpec, net: nn.Module, data: Data, history: History, task: RunTask, seconds: float = 0.0
) -> RunResult:
    """Final metrics and saved weights of a trained run."""
    path = weights_path(task.results, run.study, run.run_id)
    card = ModelCard(
        run.config.model_dump(mode="json"), data.input_shape, data.n_classes, data.scaler
    )
    save_weights(net.state_dict(), path, card.metadata())
    return RunResult(
        run.run_id,
        RunStatus.DIVERGED if history.diverged else RunStatus.DONE,
        metrics=_final_metrics(net, data, run, history),
        history=history.history,
        artifacts={"weights": str(path)},
        seconds=seconds,
        engine=history.engine,
    )


def _final_metrics(net: nn.Module, data: Data, run: RunSpec, history: History) -> dict[str, float]:
    """Train numbers from the last epoch's History (as Keras reports them); others evaluated.

    A regression run also evaluates its final model on the training split (`train_loss`,
    the MSE a coursework's `model.evaluate(x_train, y_train)` gives).
    """
    metrics = {k: v for k, v in history.last.items() if k in {"loss", "accuracy"}}
    splits = [("val", data.val), ("test", data.test)]
    if not run.config.training.is_classification:
        splits.insert(0, ("train", data.train))
    for prefix, split in splits:
        if split is not None:
            scores = evaluate(net, split, run.config.training)
            metrics.update({f"{prefix}_{k}": v for k, v in scores.items()})
    metrics["epochs_run"] = float(len(history.epoch))
    for name in ("best_epoch", "stopped_epoch"):
        value = getattr(history, name)
        if value is not None:
            metrics[name] = float(value)
    if history.diverged_at is not None:
        metrics["diverged_epoch"], metrics["diverged_batch"] = map(float, history.diverged_at)
    return metrics


def file_digest(path: Path) -> tuple[str, int]:
    """SHA256 and size of a file, for the store's artifact rows."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest, path.stat().st_size
