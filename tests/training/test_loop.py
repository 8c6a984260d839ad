"""The training loop: determinism, History keys, divergence, callbacks, evaluation."""

import math

import pytest
import torch

from mnistlab.data import Split
from mnistlab.errors import SpecError
from mnistlab.models import CNNSpec, MLPSpec, build_mlp, build_model
from mnistlab.runtime import make_generator
from mnistlab.training.callbacks import Callback, GradientNorms, WeightSnapshots
from mnistlab.training.loop import evaluate, fit
from mnistlab.training.spec import TrainSpec
from mnistlab.training.state import RunSeeds


def _blobs(n: int = 96, seed: int = 0) -> Split:
    """Three separable Gaussian blobs in 8 dimensions."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centres = torch.eye(3, 8) * 4
    x = centres[y] + torch.randn(n, 8, generator=g)
    return Split(x=x, y=y)


def _net(seed: int = 0, **spec):
    fields = {"hidden": (16,), **spec}
    return build_mlp(MLPSpec(**fields), 8, 3, make_generator(RunSeeds.from_seed(seed).init))


def test_history_has_keras_keys_and_learns():
    train, val = _blobs(), _blobs(seed=1)
    spec = TrainSpec(optimizer={"name": "adam", "learning_rate": 0.01}, epochs=5, batch_size=16)
    history = fit(_net(), train, spec, val=val)
    assert set(history.history) == {
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "learning_rate",
        "time",
    }
    assert history.epoch == [0, 1, 2, 3, 4]
    assert history.status == "done"
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.last["val_accuracy"] > 0.95
    assert history.history["learning_rate"] == [pytest.approx(0.01)] * 5


def test_same_seed_same_history_other_seed_differs():
    spec = TrainSpec(optimizer="sgd", epochs=3, batch_size=10)
    model_spec = {"dropout": 0.3}
    runs = [fit(_net(s, **model_spec), _blobs(), spec, seed=s).history["loss"] for s in (4, 4, 5)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_shuffle_false_is_order_dependent_only_through_data():
    spec = TrainSpec(optimizer="sgd", epochs=2, batch_size=10, shuffle=False)
    a = fit(_net(), _blobs(), spec, seed=1).history["loss"]
    b = fit(_net(), _blobs(), spec, seed=2).history["loss"]
    assert a == b  # no dropout, no shuffling: the seed only fixed the (identical) init


def test_nan_loss_ends_run_as_diverged_with_epoch_and_batch():
    train = _blobs()
    train.x[70, 0] = math.nan  # row 70 is in batch 70 // 32 = 2 when not shuffled
    spec = TrainSpec(optimizer="sgd", epochs=3, batch_size=32, shuffle=False)
    history = fit(_net(), train, spec)
    assert history.status == "diverged"
    assert history.diverged_at == (0, 2)
    assert history.epoch == [0]
    assert math.isnan(history.history["loss"][0])


def test_divergence_is_found_past_the_periodic_check():
    train = _blobs(n=400)
    train.x[399, 0] = math.inf
    spec = TrainSpec(optimizer="sgd", epochs=1, batch_size=2, shuffle=False)
    history = fit(_net(), train, spec)
    assert history.diverged_at == (0, 199)


def test_huge_finite_loss_trains_on_unless_a_bound_is_set():
    train = _blobs()
    train.x.mul_(1e4)  # losses in the tens of thousands, but finite
    spec = TrainSpec(optimizer={"name": "sgd", "learning_rate": 1e-6}, epochs=2, batch_size=32)
    history = fit(_net(), train, spec)
    assert history.status == "done"
    assert history.history["loss"][0] > 1000
    bounded = fit(_net(), train, spec.model_copy(update={"divergence_threshold": 100.0}))
    assert bounded.status == "diverged"
    assert bounded.diverged_at == (0, 0)


def test_early_stopping_ends_the_run_and_records_the_epoch():
    spec = TrainSpec.model_validate(
        {
            "optimizer": "adam",
            "epochs": 50,
            "batch_size": 16,
            "early_stopping": {"monitor": "val_accuracy", "patience": 1},
        }
    )
    history = fit(_net(), _blobs(), spec, val=_blobs(seed=1))
    assert history.stopped_epoch is not None
    assert len(history.epoch) == history.stopped_epoch + 1 < 50


def test_monitor_without_validation_data_is_a_spec_error():
    spec = TrainSpec.model_validate({"early_stopping": {"monitor": "val_loss"}})
    with pytest.raises(SpecError, match=r"training\.early_stopping\.monitor: 'val_loss'"):
        fit(_net(), _blobs(), spec)


def test_evaluate_includes_penalty_and_restores_mode():
    net = _net(kernel_regularizer={"l2": 0.5})
    net.train()
    plain = evaluate(_net(), _blobs(), TrainSpec())
    penalised = evaluate(net, _blobs(), TrainSpec())
    assert penalised["loss"] == pytest.approx(plain["loss"] + float(net.penalty().detach()))
    assert net.training


def test_callbacks_see_every_event_and_step_probes_sample():
    class Recorder(Callback):
        every_n_steps = 2

        def __init__(self):
            self.events = []

        def on_run_begin(self, run):
            self.events.append("begin")

        def on_epoch_begin(self, run, epoch):
            self.events.append(f"epoch{epoch}")

        def on_step_end(self, run):
            self.events.append(run.step)

        def on_epoch_end(self, run, epoch, logs):
            self.events.append(f"end{epoch}")

        def on_run_end(self, run):
            self.events.append("done")

    recorder, snapshots, norms = Recorder(), WeightSnapshots(), GradientNorms(every_n_steps=1)
    fit(
        _net(),
        _blobs(n=40),
        TrainSpec(epochs=2, batch_size=10),
        callbacks=[recorder, snapshots, norms],
    )
    assert recorder.events == ["begin", "epoch0", 2, 4, "end0", "epoch1", 6, 8, "end1", "done"]
    assert len(snapshots.epochs) == 2
    first = "layers.0.kernel"
    assert not torch.equal(snapshots.initial[first], snapshots.epochs[-1][first])
    assert len(norms.per_epoch[first]) == 2
    assert all(v > 0 for v in norms.per_epoch[first])


def test_mse_regression_has_no_accuracy():
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    split = Split(x=x, y=3 * x)
    net = build_mlp(MLPSpec(hidden=(), output="linear"), 1, 1, make_generator(0))
    spec = TrainSpec(
        optimizer={"name": "sgd", "learning_rate": 0.1}, loss="mse", epochs=30, batch_size=8
    )
    history = fit(net, split, spec)
    assert set(history.history) == {"loss", "learning_rate", "time"}
    assert history.last["loss"] < 1e-3
    assert net.dense_layers[0].kernel.item() == pytest.approx(3.0, abs=0.05)


def test_fit_trains_a_cnn_unchanged():
    """Bright left half vs bright right half of 8x8 images: a CNN separates them."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(64) % 2
    x = torch.rand(64, 8, 8, generator=g) * 0.2
    x[y == 0, :, :4] += 1.0
    x[y == 1, :, 4:] += 1.0
    layers = [
        {"layer": "conv2d", "filters": 4, "kernel_size": 3, "activation": "relu"},
        "max_pool2d",
        "flatten",
    ]
    net = build_model(CNNSpec(layers=layers), (8, 8), 2, make_generator(RunSeeds.from_seed(0).init))
    spec = TrainSpec(optimizer={"name": "adam", "learning_rate": 0.05}, epochs=8, batch_size=16)
    history = fit(net, Split(x=x.reshape(64, 64), y=y), spec, seed=0)
    assert history.status == "done"
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert evaluate(net, Split(x=x.reshape(64, 64), y=y), spec)["accuracy"] == 1.0


def test_fit_with_augmentation_fixed_steps_and_augmented_validation():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 2
    x = torch.rand(40, 8, 8, generator=g) * 0.2
    x[y == 0, 2:6, 1:3] += 1.0
    x[y == 1, 2:6, 5:7] += 1.0
    split = Split(x=x.reshape(40, 64), y=y)
    layers = [{"layer": "conv2d", "filters": 4, "kernel_size": 3, "activation": "relu"}, "flatten"]
    spec = TrainSpec(
        optimizer={"name": "adam", "learning_rate": 0.02},
        epochs=3,
        batch_size=8,
        augment={"width_shift_range": 1, "rotation_range": 5, "validation": True},
        steps_per_epoch=3,
        validation_steps=2,
    )

    class Steps(Callback):
        def on_run_end(self, run):
            self.steps = run.step

    def run():
        net = build_model(CNNSpec(layers=layers), (8, 8), 2, torch.Generator().manual_seed(0))
        steps = Steps()
        return fit(net, split, spec, val=split, seed=1, callbacks=[steps]), steps.steps

    (history, steps), (again, _) = run(), run()
    assert steps == 9  # 3 epochs of 3 steps, not of 5 (40 rows in batches of 8)
    assert history.history["loss"] == again.history["loss"]  # seeded transforms and order
    assert history.history["val_loss"] == again.history["val_loss"]
    assert len(history.history["val_loss"]) == 3
    assert all(0.0 <= a <= 1.0 for a in history.history["val_accuracy"])


def test_validation_steps_need_augmented_validation():
    with pytest.raises(ValueError, match="validation_steps: counts augmented validation batches"):
        TrainSpec(validation_steps=3)


@pytest.mark.parametrize("augment_validation", [False, True])
def test_validation_is_augmented_only_when_asked(augment_validation):
    g = torch.Generator().manual_seed(1)
    y = torch.arange(32) % 2
    x = torch.rand(32, 8, 8, generator=g)
    x[y == 0, 2:6, 1:3] += 1.0
    split = Split(x=x.reshape(32, 64), y=y)
    layers = [{"layer": "conv2d", "filters": 2, "kernel_size": 3}, "flatten"]
    net = build_model(CNNSpec(layers=layers), (8, 8), 2, torch.Generator().manual_seed(0))
    spec = TrainSpec(
        epochs=1,
        batch_size=8,
        augment={"rotation_range": 20, "width_shift_range": 2, "validation": augment_validation},
    )
    history = fit(net, split, spec, val=split, seed=0)
    plain = evaluate(net, split, spec)["loss"]
    assert (history.history["val_loss"][0] != pytest.approx(plain, rel=1e-6)) == augment_validation


def test_evaluate_on_logs_each_split_in_inference_mode_every_epoch():
    train, test = _blobs(), _blobs(seed=2)
    spec = TrainSpec(optimizer={"name": "adam", "learning_rate": 0.01}, epochs=3, batch_size=16)
    net = _net(dropout=0.5)
    history = fit(net, train, spec, evaluate_on={"train": train, "test": test})
    assert len(history.history["train_eval_accuracy"]) == 3
    assert len(history.history["test_eval_loss"]) == 3
    final = evaluate(net, train, spec)  # the last epoch's re-evaluation is the final model's
    assert history.last["train_eval_loss"] == pytest.approx(final["loss"], rel=1e-6)
    assert history.last["train_eval_accuracy"] == pytest.approx(final["accuracy"])
    # the running training-mode loss (dropout on, weights moving) is a different number
    assert history.last["loss"] != pytest.approx(history.last["train_eval_loss"], rel=1e-3)
    plain = fit(_net(dropout=0.5), train, spec)
    assert plain.history["loss"] == history.history["loss"]  # evaluating changes no training
