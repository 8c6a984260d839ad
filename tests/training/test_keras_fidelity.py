"""fit / evaluate / callbacks against values recorded from real Keras 3 (tests/fixtures/keras)."""

from types import SimpleNamespace

import pytest
import torch

from mnistlab.api import _training_splits
from mnistlab.data import Split
from mnistlab.models import MLPSpec, build_mlp
from mnistlab.runtime import make_generator
from mnistlab.training.callbacks import BestCheckpoint, EarlyStopping, Events
from mnistlab.training.history import History
from mnistlab.training.loop import evaluate, fit
from mnistlab.training.spec import CheckpointSpec, EarlyStoppingSpec, TrainSpec

TOL = {"rtol": 1e-5, "atol": 1e-6}
FROZEN_LR = 1e-30  # Keras recorded lr=0.0 (weights fixed); learning rates must be > 0 here


def _split(x, y) -> Split:
    return Split(x=torch.tensor(x, dtype=torch.float32), y=torch.tensor(y, dtype=torch.int64))


def _keras_model(fx: dict, l2: float = 0.0, output: str = "softmax"):
    reg = {"l2": l2} if l2 else None
    spec = MLPSpec(
        hidden=(5,),
        activation="relu",
        output=output,
        kernel_regularizer=reg,
        output_kernel_regularizer=reg,
    )
    net = build_mlp(spec, 4, 3, make_generator(0))
    w = fx["weights"]
    hidden, out = net.dense_layers
    with torch.no_grad():
        hidden.kernel.copy_(torch.tensor(w["dense_kernel"]))
        hidden.bias.copy_(torch.tensor(w["dense_bias"]))
        out.kernel.copy_(torch.tensor(w["out_kernel"]))
        out.bias.copy_(torch.tensor(w["out_bias"]))
    return net


def _sgd(lr: float) -> TrainSpec:
    return TrainSpec(
        optimizer={"name": "sgd", "learning_rate": lr}, batch_size=4, epochs=1, shuffle=False
    )


@pytest.fixture(scope="module")
def fx(keras_fixture):
    return keras_fixture("training")


def test_history_loss_weights_the_partial_last_batch(fx):
    net = _keras_model(fx)
    history = fit(net, _split(fx["x"], fx["y"]), _sgd(FROZEN_LR))
    expected = fx["sgd_lr0"]["history"]
    assert history.history["loss"][0] == pytest.approx(expected["loss"], rel=1e-5)
    assert history.history["accuracy"][0] == pytest.approx(expected["accuracy"], rel=1e-6)
    probs = net.predict(torch.tensor(fx["x"]))
    torch.testing.assert_close(probs, torch.tensor(fx["sgd_lr0"]["predict"]), **TOL)


def test_one_sgd_epoch_matches_keras_weights_and_history(fx):
    net = _keras_model(fx)
    history = fit(net, _split(fx["x"], fx["y"]), _sgd(0.1))
    expected = fx["sgd_lr0.1"]
    assert history.history["loss"][0] == pytest.approx(expected["history"]["loss"], rel=1e-5)
    after = expected["weights_after"]
    hidden, out = net.dense_layers
    torch.testing.assert_close(hidden.kernel, torch.tensor(after["dense_kernel"]), **TOL)
    torch.testing.assert_close(hidden.bias, torch.tensor(after["dense_bias"]), **TOL)
    torch.testing.assert_close(out.kernel, torch.tensor(after["out_kernel"]), **TOL)
    torch.testing.assert_close(out.bias, torch.tensor(after["out_bias"]), **TOL)


def test_l2_penalty_is_in_loss_val_loss_and_evaluate(fx):
    case = fx["l2_0.01_lr0"]
    net = _keras_model(fx, l2=case["l2"])
    assert float(net.penalty().detach()) == pytest.approx(case["penalty"], rel=1e-6)
    spec = _sgd(FROZEN_LR)
    val = _split(fx["x_val"], fx["y_val"])
    history = fit(net, _split(fx["x"], fx["y"]), spec, val=val)
    for key in ("loss", "val_loss", "val_accuracy"):
        assert history.history[key][0] == pytest.approx(case["history"][key], rel=1e-5)
    assert evaluate(net, val, spec)["loss"] == pytest.approx(case["evaluate_val"]["loss"], rel=1e-5)


def test_linear_output_cross_entropy_from_logits(fx):
    net = _keras_model(fx, output="linear")
    scores = evaluate(net, _split(fx["x"], fx["y"]), TrainSpec())
    assert scores["loss"] == pytest.approx(fx["from_logits"]["evaluate"]["loss"], rel=1e-5)
    assert scores["accuracy"] == pytest.approx(0.7)
    torch.testing.assert_close(
        net.predict(torch.tensor(fx["x"])), torch.tensor(fx["from_logits"]["logits"]), **TOL
    )


def test_saturated_softmax_loss_is_100_not_16(fx):
    case = fx["saturated"]
    net = build_mlp(MLPSpec(hidden=()), 4, 3, make_generator(0))
    with torch.no_grad():
        net.dense_layers[0].kernel.copy_(torch.tensor(case["kernel"]))
        net.dense_layers[0].bias.zero_()
    split = _split(case["x"], case["y"])
    loss = evaluate(net, split, TrainSpec())["loss"]
    assert loss == pytest.approx(case["evaluate_categorical_crossentropy"], rel=1e-6)
    clipped = evaluate(net, split, TrainSpec(clip_probabilities=True))["loss"]
    assert clipped == pytest.approx(case["loss_fn_on_probabilities"], rel=1e-5)


def test_validation_split_takes_the_last_rows_as_keras(fx):
    for case in fx["validation_split"]:
        n = case["n"]
        data = _split([[float(i)] for i in range(n)], list(range(n)))
        train, val = _training_splits(data, None, case["fraction"])
        assert len(train.x) == case["split_at"]
        assert int(val.y[0]) == case["validation_first"]
        assert int(val.y[-1]) == case["validation_last"]


def _drive(callback, values: list[float], key: str):
    model = torch.nn.Linear(1, 1)
    run = SimpleNamespace(model=model, history=History(), stop=False, step=0)
    events = Events([callback])
    events.on_run_begin(run)
    epoch = 0
    for epoch, value in enumerate(values):
        with torch.no_grad():
            model.weight.fill_(epoch)
        events.on_epoch_end(run, epoch, {key: value})
        if run.stop:
            break
    events.on_run_end(run)
    return run, epoch


def test_early_stopping_matches_keras_on_scripted_metrics(keras_fixture):
    fx = keras_fixture("callbacks")
    for name, case in fx["early_stopping"].items():
        spec = EarlyStoppingSpec(**case["kwargs"])
        run, last = _drive(EarlyStopping(spec), fx[spec.monitor], spec.monitor)
        assert last == case["last_epoch_run"], name
        assert (run.history.stopped_epoch or 0) == case["stopped_epoch"], name
        expected_weights = case["weights_epoch_at_end"]
        if spec.restore_best_weights and not case["stop_training"]:
            # Keras 3 also restores when it never stopped; tf.keras 2.x (the coursework's,
            # which mnistlab follows) restores only on an early stop: the last weights stay
            expected_weights = case["last_epoch_run"]
        assert run.model.weight.item() == expected_weights, name


class _SaveRecorder(BestCheckpoint):
    """A best checkpoint that lists the epochs at which it saved."""

    def on_run_begin(self, run):
        super().on_run_begin(run)
        self.saved = []

    def on_epoch_end(self, run, epoch, logs):
        before = self.best_epoch
        super().on_epoch_end(run, epoch, logs)
        if self.best_epoch != before:
            self.saved.append(epoch)


def test_checkpoint_saves_at_keras_epochs(keras_fixture):
    fx = keras_fixture("callbacks")
    for name, case in fx["model_checkpoint"].items():
        spec = CheckpointSpec(
            **{k: v for k, v in case["kwargs"].items() if k in {"monitor", "mode"}}
        )
        recorder = _SaveRecorder(spec)
        _drive(recorder, fx[spec.monitor], spec.monitor)
        assert recorder.saved == case["saved_epochs"], name
