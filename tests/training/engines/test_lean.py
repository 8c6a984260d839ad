"""The lean engine against autograd: same weights, same History, same divergence."""

import math

import pytest
import torch
from equivalence import assert_same_run

from mnistlab.data import Split
from mnistlab.models import MLPSpec, build_mlp
from mnistlab.runtime import make_generator
from mnistlab.training.callbacks import GradientNorms
from mnistlab.training.engines.lean import lean_supported, lean_unsupported
from mnistlab.training.loop import fit
from mnistlab.training.spec import TrainSpec
from mnistlab.training.state import RunSeeds

TOL = {"rtol": 1e-5, "atol": 1e-6}
ACTIVATIONS = {
    "sigmoid": "sigmoid",
    "relu": "relu",
    "tanh": "tanh",
    "linear": "linear",
    "leaky_relu": {"name": "leaky_relu", "negative_slope": 0.2},
    "elu": {"name": "elu", "alpha": 0.7},
}
SGD_VARIANTS = {
    "plain": {"name": "sgd", "learning_rate": 0.1},
    "momentum": {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9},
    "nesterov": {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
}


def _data(n: int = 200, seed: int = 0) -> Split:
    """Three overlapping Gaussian blobs in 20 dimensions."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.eye(3, 20)[y] * 1.5 + torch.randn(n, 20, generator=g)
    return Split(x=x, y=y)


def _net(seed: int = 0, **fields):
    spec = MLPSpec(**{"hidden": (12,), **fields})
    return build_mlp(spec, 20, 3, make_generator(RunSeeds.from_seed(seed).init))


def _both(model_fields: dict, train_fields: dict, data: Split | None = None, **fit_kwargs):
    """Fit the same model with each engine; returns [(model, history)] autograd then lean."""
    spec = TrainSpec(
        **{"optimizer": SGD_VARIANTS["plain"], "epochs": 3, "batch_size": 16, **train_fields}
    )
    runs = []
    for engine in ("autograd", "lean"):
        model = _net(**model_fields)
        history = fit(model, data or _data(), spec, seed=3, engine=engine, **fit_kwargs)
        runs.append((model, history))
    return runs


def _assert_same(runs) -> None:
    assert_same_run(runs, TOL, TOL, keys=("loss", "accuracy", "learning_rate"))


# --- lean == autograd ---


@pytest.mark.parametrize("sgd", list(SGD_VARIANTS))
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_lean_matches_autograd(activation: str, sgd: str) -> None:
    # 200 rows at batch 16: 12 full batches and a partial one of 8; shuffled
    runs = _both({"activation": ACTIVATIONS[activation]}, {"optimizer": SGD_VARIANTS[sgd]})
    _assert_same(runs)
    assert runs[0][1].history["loss"][-1] < runs[0][1].history["loss"][0]


OTHER_OPTIMIZERS = {
    "adam": {"name": "adam", "learning_rate": 0.01},
    "amsgrad": {"name": "adam", "learning_rate": 0.01, "amsgrad": True},
    "adamw": {"name": "adamw", "learning_rate": 0.01},
    "nadam": {"name": "nadam", "learning_rate": 0.01},
    "rmsprop_momentum": {"name": "rmsprop", "learning_rate": 0.01, "momentum": 0.5},
    "adagrad": {"name": "adagrad", "learning_rate": 0.05},
    "adadelta": {"name": "adadelta", "learning_rate": 1.0},
    "sgd_clipnorm": {"name": "sgd", "learning_rate": 0.1, "clipnorm": 0.5},
    "adam_global_clipnorm": {"name": "adam", "learning_rate": 0.01, "global_clipnorm": 0.5},
}


@pytest.mark.parametrize("optimizer", list(OTHER_OPTIMIZERS))
def test_lean_matches_autograd_under_every_optimizer(optimizer: str) -> None:
    runs = _both(
        {"activation": "relu", "kernel_regularizer": {"l2": 0.01}},
        {"optimizer": OTHER_OPTIMIZERS[optimizer]},
    )
    _assert_same(runs)
    assert runs[0][1].history["loss"][-1] < runs[0][1].history["loss"][0]


def test_lean_matches_autograd_with_l1_l2_penalties() -> None:
    fields = {
        "kernel_regularizer": {"l2": 1e-3},
        "bias_regularizer": {"l1": 1e-3},
        "output_kernel_regularizer": {"l1": 1e-3, "l2": 1e-3},
    }
    runs = _both(fields, {"optimizer": SGD_VARIANTS["momentum"]})
    _assert_same(runs)


def test_lean_matches_autograd_with_dropout_everywhere() -> None:
    fields = {
        "hidden": (12, 8),
        "activation": ("relu", "tanh"),
        "dropout": (0.3, 0.2),
        "input_dropout": 0.1,
        "output": "linear",
        "output_dropout": 0.1,
    }
    _assert_same(_both(fields, {}))


def test_lean_matches_autograd_unshuffled_scheduled_and_stepped() -> None:
    train = {
        "shuffle": False,
        "batch_size": 7,
        "schedule": {"kind": "exponential", "decay_steps": 10, "decay_rate": 0.5},
    }
    runs = _both({"hidden": (), "output": "linear"}, train, callbacks=())
    _assert_same(runs)
    assert runs[1][1].history["learning_rate"][-1] < 0.1


def test_callbacks_see_the_same_gradients() -> None:
    norms = [GradientNorms(every_n_steps=3), GradientNorms(every_n_steps=3)]
    spec = TrainSpec(optimizer=SGD_VARIANTS["nesterov"], epochs=2, batch_size=16)
    for engine, callback in zip(("autograd", "lean"), norms, strict=True):
        fit(_net(), _data(), spec, seed=1, engine=engine, callbacks=[callback])
    assert norms[0].per_epoch.keys() == norms[1].per_epoch.keys()
    for name, values in norms[0].per_epoch.items():
        assert norms[1].per_epoch[name] == pytest.approx(values, rel=1e-5)


def test_auto_picks_lean_when_supported_and_autograd_otherwise() -> None:
    spec = TrainSpec(optimizer="adam", epochs=2, batch_size=16)
    auto, lean = (fit(_net(), _data(), spec, engine=e).history["loss"] for e in ("auto", "lean"))
    assert auto == lean
    auto, grad = (
        fit(_net(batch_norm="after"), _data(), spec, engine=e).history["loss"]
        for e in ("auto", "autograd")
    )
    assert auto == grad


# --- divergence ---


@pytest.mark.parametrize("shuffle", [False, True])
def test_nan_input_diverges_at_the_same_batch(shuffle: bool) -> None:
    data = _data(n=400)
    data.x[301, 4] = math.nan  # unshuffled: batch 301 // 4 = 75, past two periodic checks
    runs = _both({}, {"batch_size": 4, "shuffle": shuffle}, data=data)
    (_, ref), (_, history) = runs
    assert ref.status == history.status == "diverged"
    assert history.diverged_at == ref.diverged_at
    if not shuffle:
        assert history.diverged_at == (0, 75)
    assert math.isnan(history.history["loss"][0])
    assert history.history["accuracy"] == pytest.approx(ref.history["accuracy"])


def test_divergence_threshold_is_honoured() -> None:
    runs = _both(
        {}, {"optimizer": {"name": "sgd", "learning_rate": 50.0}, "divergence_threshold": 5.0}
    )
    assert runs[0][1].status == "diverged"
    assert runs[1][1].diverged_at == runs[0][1].diverged_at


# --- what the engine takes ---


def test_supports_the_784_30_10_sigmoid_workload() -> None:
    model = build_mlp(MLPSpec(hidden=(30,), activation="sigmoid"), 784, 10, make_generator(0))
    spec = TrainSpec(optimizer={"name": "sgd", "learning_rate": 0.1}, batch_size=10)
    assert lean_supported(model, spec)


@pytest.mark.parametrize(
    ("model_fields", "train_fields", "reason"),
    [
        ({"batch_norm": "before"}, {}, "batch normalisation"),
        ({}, {"loss": "mse"}, "loss 'mse'"),
        ({}, {"clip_probabilities": True}, "clip_probabilities"),
    ],
)
def test_refuses_what_it_does_not_implement(model_fields, train_fields, reason) -> None:
    spec = TrainSpec(**{"optimizer": "sgd", **train_fields})
    model = _net(**model_fields)
    assert not lean_supported(model, spec)
    assert reason in lean_unsupported(model, spec)
    with pytest.raises(ValueError, match="engine: 'lean' does not support"):
        fit(model, _data(), spec, engine="lean")


def test_refuses_other_modules_one_hot_labels_and_frozen_weights() -> None:
    spec = TrainSpec(optimizer="sgd")
    assert not lean_supported(torch.nn.Linear(20, 3), spec)
    data = _data()
    one_hot = Split(x=data.x, y=torch.nn.functional.one_hot(data.y, 3).float())
    assert "int64 class ids" in lean_unsupported(_net(), spec, one_hot)
    frozen = _net()
    frozen.dense_layers[0].kernel.requires_grad_(False)
    assert lean_unsupported(frozen, spec) == "frozen parameters"
    assert lean_supported(
        _net(output="linear"), spec.model_copy(update={"clip_probabilities": True})
    )


def test_unknown_engine_is_an_error() -> None:
    with pytest.raises(ValueError, match="engine: expected"):
        fit(_net(), _data(), TrainSpec(optimizer="sgd"), engine="jit")  # type: ignore[arg-type]
