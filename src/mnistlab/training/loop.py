"""The training loop: in-memory tensors, seeded reshuffles, Keras's History, clean divergence."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from mnistlab.runtime import configure_threads, default_threads, make_generator
from mnistlab.training.batches import Augmenter, BatchStream, image_shape
from mnistlab.training.callbacks import Callback, Events, callbacks_from_spec
from mnistlab.training.engines import Engine, choose_engine
from mnistlab.training.history import History
from mnistlab.training.losses import batch_loss, correct_count, softmax_output
from mnistlab.training.optimizers import KerasOptimizer
from mnistlab.training.schedules import make_schedule
from mnistlab.training.spec import TrainSpec
from mnistlab.training.state import (
    RunSeeds,
    RunState,
    Split,
    check_monitors,
)

EVAL_BATCH_SIZE = 4096  # inference only: the batch size changes nothing but speed


class TrainableModel(Protocol):
    """What the loop needs of a model (an `MLPNet` satisfies it)."""

    def __call__(self, x: Tensor) -> Tensor: ...
    def penalty(self) -> Tensor: ...
    def set_generator(self, generator: torch.Generator) -> None: ...


def fit(
    model: torch.nn.Module,
    train: Split,
    spec: TrainSpec,
    *,
    val: Split | None = None,
    seed: int = 0,
    callbacks: Sequence[Callback] = (),
    threads: int | None = None,
    engine: Engine = "auto",
    evaluate_on: Mapping[str, Split] | None = None,
) -> History:
    """Train `model` in place on `train` as Keras's `fit` would, and return its History.

    Parameters
    ----------
    model : an `MLPNet` (or any module with `penalty()` and `set_generator()`), already
        initialised; it is moved to the device of `train.x`.
    train, val : splits with `x` float32 of shape (N, D) and `y` int64 of shape (N,).
    spec : optimiser, schedule, loss, epochs, batch size and callbacks.
    seed : fixes shuffling and dropout masks (the initialisation was fixed when building).
    callbacks : extra listeners, called after the spec's own (early stopping, checkpoint).
    threads : torch intra-op threads; default every core this process may use, or one
        for a small dense model (`runtime.default_threads`).
    engine : "auto" picks the fastest engine that can train the run
        (`training.engines.choose_engine`); "autograd", "lean" or "compiled" forces one.
        The choice and its reason are kept in `History.engine`.
    evaluate_on : name -> split evaluated after every epoch in inference mode, logged as
        `{name}_eval_loss` and `{name}_eval_accuracy` (`TrainSpec.evaluate_each_epoch`).

    Returns
    -------
    History with Keras's keys per epoch; `status` is "done" or "diverged", never raised.
    """
    configure_threads(threads or default_threads(model, spec.batch_size))
    device = train.x.device
    model.to(device)
    seeds = RunSeeds.from_seed(seed)
    model.set_generator(make_generator(seeds.dropout, device))
    check_monitors(spec, has_val=val is not None)
    run = RunState(
        model=model,
        optimizer=KerasOptimizer(spec.optimizer, model.parameters()),
        spec=spec,
        history=History(),
        seed=seed,
        shuffle_generator=make_generator(seeds.shuffle),
    )
    run.batches = BatchStream(
        len(train.x),
        spec.batch_size,
        spec.shuffle,
        spec.steps_per_epoch,
        run.shuffle_generator,
        device,
    )
    validate = _validation(model, val, spec, seeds, device)
    if spec.augment is not None:
        run.augment = Augmenter(spec.augment, image_shape(train.x), seeds.augment)
    schedule = make_schedule(spec.schedule, spec.optimizer.learning_rate)
    events = Events([*callbacks_from_spec(spec.early_stopping, spec.checkpoint), *callbacks])
    choice = choose_engine(engine, model, spec, train, events.callbacks)
    run.history.engine = choice.describe()
    events.on_run_begin(run)
    try:
        for epoch in range(spec.epochs):
            run.epoch = epoch
            events.on_epoch_begin(run, epoch)
            started = time.perf_counter()
            logs, bad_batch = choice.train_epoch(run, schedule, train, events)
            if validate is not None:
                logs.update({f"val_{k}": v for k, v in validate().items()})
            for name, split in (evaluate_on or {}).items():
                logs.update(eval_logs(name, evaluate(model, split, spec)))
            logs["learning_rate"] = run.optimizer.param_groups[0]["lr"]
            logs["time"] = time.perf_counter() - started
            run.history.append(epoch, logs)
            if bad_batch is not None:
                run.history.status = "diverged"
                run.history.diverged_at = (epoch, bad_batch)
                run.stop = True
            schedule.on_epoch_end(epoch, logs)
            events.on_epoch_end(run, epoch, logs)
            if run.stop:
                break
        if run.history.status == "running":
            run.history.status = "done"
    finally:
        events.on_run_end(run)
    return run.history


def eval_logs(name: str, metrics: Mapping[str, float]) -> dict[str, float]:
    """`evaluate`'s metrics on the split `name` as History keys: `train_eval_accuracy`."""
    return {f"{name}_eval_{key}": value for key, value in metrics.items()}


@torch.no_grad()
def evaluate(model: torch.nn.Module, split: Split, spec: TrainSpec) -> dict[str, float]:
    """Loss (penalties included, as Keras) and accuracy of `model` on `split`, inference mode.

    Returns
    -------
    dict with `loss` and, for classification, `accuracy`.
    """
    was_training = model.training
    model.eval()
    x, y = split.x, split.y
    softmax = softmax_output(model)
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    for start in range(0, len(x), EVAL_BATCH_SIZE):
        logits = model(x[start : start + EVAL_BATCH_SIZE])
        yb = y[start : start + EVAL_BATCH_SIZE]
        total += batch_loss(logits, yb, spec, softmax, reduction="sum")
        if spec.is_classification:
            correct += correct_count(logits, yb)
    model.train(was_training)
    n = len(x)
    result = {"loss": float(total / n + model.penalty())}
    if spec.is_classification:
        result["accuracy"] = float(correct) / n
    return result


def _validation(
    model: torch.nn.Module,
    val: Split | None,
    spec: TrainSpec,
    seeds: RunSeeds,
    device: torch.device,
) -> Callable[[], dict[str, float]] | None:
    """The end-of-epoch validation: `evaluate`, or augmented batches when the spec says so."""
    if val is None:
        return None
    if spec.augment is None or not spec.augment.validation:
        return functools.partial(evaluate, model, val, spec)
    # a separate stream from training's: Keras's validation generator is its own iterator
    shuffle, augment = np.random.SeedSequence([seeds.shuffle, seeds.augment]).generate_state(2)
    stream = BatchStream(
        len(val.x),
        spec.batch_size,
        True,
        spec.validation_steps,
        make_generator(int(shuffle)),
        device,
    )
    augmenter = Augmenter(spec.augment, image_shape(val.x), int(augment))
    return functools.partial(evaluate_augmented, model, val, spec, stream, augmenter)


@torch.no_grad()
def evaluate_augmented(
    model: torch.nn.Module, split: Split, spec: TrainSpec, stream: BatchStream, augment: Augmenter
) -> dict[str, float]:
    """Loss and accuracy over the stream's next epoch of augmented batches, inference mode.

    As Keras's `evaluate_generator`: batch means weighted by batch size, penalties included.
    """
    was_training = model.training
    model.eval()
    softmax = softmax_output(model)
    total = torch.zeros((), dtype=torch.float64, device=split.x.device)
    correct = torch.zeros((), dtype=torch.int64, device=split.x.device)
    seen = 0
    for rows in stream.epoch():
        logits = model(augment(split.x[rows]))
        yb = split.y[rows]
        total += batch_loss(logits, yb, spec, softmax, reduction="sum")
        if spec.is_classification:
            correct += correct_count(logits, yb)
        seen += len(yb)
    model.train(was_training)
    result = {"loss": float(total / seen + model.penalty())}
    if spec.is_classification:
        result["accuracy"] = float(correct) / seen
    return result
