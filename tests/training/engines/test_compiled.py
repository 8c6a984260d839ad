"""The compiled engine against autograd: same weights, History, probes and divergence."""

import math

import numpy as np
import pytest
import torch
from equivalence import assert_same_run

from mnistlab.data import Split
from mnistlab.models import MLPSpec, build_mlp
from mnistlab.runtime import make_generator
from mnistlab.training import loop
from mnistlab.training.callbacks import Callback, GradientNorms
from mnistlab.training.engines import compiled
from mnistlab.training.probes import LearningSpeed
from mnistlab.training.spec import TrainSpec
from mnistlab.training.state import RunSeeds

WEIGHTS = {"rtol": 1e-5, "atol": 1e-6}
HISTORY = {"rtol": 1e-6, "atol": 1e-7}
STEPS = 200  # 4 epochs of 50 batches of 4
OPTIMIZERS = {
    "sgd": {"name": "sgd", "learning_rate": 0.1},
    "momentum": {"name": "sgd", "learning_rate": 0.02, "momentum": 0.9},
    "nesterov": {"name": "sgd", "learning_rate": 0.02, "momentum": 0.9, "nesterov": True},
    "adam": {"name": "adam", "learning_rate": 0.005},
    "amsgrad": {"name": "adam", "learning_rate": 0.005, "amsgrad": True},
    "adamw": {"name": "adamw", "learning_rate": 0.005},
    "nadam": {"name": "nadam", "learning_rate": 0.005},
    "rmsprop": {"name": "rmsprop", "learning_rate": 0.005},
    "rmsprop_centered_momentum": {
        "name": "rmsprop",
        "learning_rate": 0.002,
        "momentum": 0.5,
        "centered": True,
    },
    "adagrad": {"name": "adagrad", "learning_rate": 0.05},
    "adadelta": {"name": "adadelta", "learning_rate": 1.0},
    "sgd_clipnorm": {"name": "sgd", "learning_rate": 0.1, "clipnorm": 0.5},
    "sgd_clipvalue": {"name": "sgd", "learning_rate": 0.1, "clipvalue": 0.05},
    "adam_global_clipnorm": {"name": "adam", "learning_rate": 0.005, "global_clipnorm": 0.5},
}
LEGACY = {
    "nadam_legacy": {"name": "nadam", "learning_rate": 0.005, "legacy": True},
    "rmsprop_legacy": {"name": "rmsprop", "learning_rate": 0.005, "legacy": True},
    "adagrad_legacy": {"name": "adagrad", "learning_rate": 0.05, "legacy": True},
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


def _fit(model, data, spec, engine, **kwargs):
    """`fit` with its epochs trained by `engine`."""
    return loop.fit(model, data, spec, seed=3, engine=engine, **kwargs)


def _both(model_fields: dict, train_fields: dict, data: Split | None = None):
    """Fit the same model with each engine; returns [(model, history)], autograd first."""
    spec = TrainSpec(
        **{"optimizer": OPTIMIZERS["sgd"], "epochs": 4, "batch_size": 4, **train_fields}
    )
    runs = []
    for engine in ("autograd", "compiled"):
        model = _net(**model_fields)
        history = _fit(model, data or _data(), spec, engine)
        runs.append((model, history))
    return runs


def _assert_same(runs) -> None:
    assert_same_run(runs, WEIGHTS, HISTORY)


# --- compiled == autograd ---


@pytest.mark.parametrize("optimizer", [*OPTIMIZERS, *LEGACY])
def test_compiled_matches_autograd_under_every_optimizer(optimizer) -> None:
    settings = OPTIMIZERS.get(optimizer) or LEGACY[optimizer]
    runs = _both(
        {"hidden": (12, 8), "activation": ("relu", "tanh"), "kernel_regularizer": {"l2": 0.01}},
        {"optimizer": settings},
    )
    _assert_same(runs)
    assert runs[1][0].dense_layers[0].kernel.grad is not None
    assert runs[0][1].history["loss"][-1] < runs[0][1].history["loss"][0]


@pytest.mark.parametrize("activation", ["sigmoid", "linear", "leaky_relu", "elu"])
def test_compiled_matches_autograd_for_every_activation(activation) -> None:
    spec = {"leaky_relu": {"name": "leaky_relu", "negative_slope": 0.2}}
    spec["elu"] = {"name": "elu", "alpha": 0.7}
    _assert_same(_both({"activation": spec.get(activation, activation)}, {}))


def test_compiled_matches_autograd_with_dropout_and_penalties() -> None:
    fields = {
        "hidden": (12, 8),
        "activation": ("relu", "sigmoid"),
        "dropout": (0.3, 0.2),
        "input_dropout": 0.1,
        "output": "linear",
        "output_dropout": 0.1,
        "kernel_regularizer": {"l2": 1e-3},
        "bias_regularizer": {"l1": 1e-3},
        "output_kernel_regularizer": {"l1": 1e-3, "l2": 1e-3},
    }
    _assert_same(_both(fields, {"optimizer": OPTIMIZERS["momentum"]}))


@pytest.mark.parametrize(
    ("placement", "optimizer"),
    [
        ("after", "sgd"),
        ("after", "nesterov"),
        ("after", "adam"),
        ("after", "rmsprop"),
        ("before", "sgd"),
        ("before", "momentum"),
    ],
)
def test_compiled_matches_autograd_with_batch_norm(placement, optimizer) -> None:
    """Weights, gradients, moving statistics and History as the torch layer leaves them,
    after 200 steps of batch 8.

    At batch 4 rounding grows: both engines leave a float64 run by ~1e-4 in 200 steps (the
    compiled one less). "before" runs SGD only: a bias in front of BN has no true gradient,
    and Adam or RMSprop scale its rounding noise up to full steps.
    """
    fields = {
        "hidden": (12, 8),
        "activation": ("tanh", "sigmoid"),
        "batch_norm": placement,
        "batch_norm_momentum": 0.9,
        "dropout": (0.2, 0.1),
        "kernel_regularizer": {"l2": 1e-3},
    }
    runs = _both(fields, {"optimizer": OPTIMIZERS[optimizer], "batch_size": 8, "epochs": 8})
    assert runs[1][1].engine.startswith("compiled")
    _assert_same(runs)
    moving = [v for k, v in runs[1][0].state_dict().items() if k.endswith("moving_variance")]
    assert len(moving) == 2
    assert not torch.equal(moving[0], torch.ones_like(moving[0]))


def test_batch_norm_probes_report_dense_tensors_to_learning_speed() -> None:
    spec = TrainSpec(optimizer=OPTIMIZERS["nesterov"], epochs=2, batch_size=8)
    fields = {"hidden": (12, 8), "activation": "tanh", "batch_norm": "after"}
    reference, probe, norms = LearningSpeed(), LearningSpeed(), _NormSums(1)
    _fit(_net(**fields), _data(), spec, "autograd", callbacks=[reference])
    _fit(_net(**fields), _data(), spec, "compiled", callbacks=[probe, norms])
    assert probe.arrays()["speed/grad_norm"].shape == (2, 6)  # 3 kernels, 3 biases
    assert norms.per_epoch[0].shape == (10,)  # and 2 gammas, 2 betas
    for key in ("speed/grad_norm", "speed/relative_change"):
        np.testing.assert_allclose(probe.arrays()[key], reference.arrays()[key], rtol=1e-5)


def test_dropout_draws_span_chunks(monkeypatch) -> None:
    monkeypatch.setattr(compiled, "DRAW_BUDGET", 40 * 100)  # 32-step chunks
    assert compiled.chunk_steps(100) == 32
    fields = {"hidden": (12,), "dropout": 0.4, "input_dropout": 0.2}
    _assert_same(_both(fields, {"epochs": 2}))


def test_compiled_matches_autograd_unshuffled_scheduled_and_stepped() -> None:
    train = {
        "shuffle": False,
        "batch_size": 7,
        "steps_per_epoch": 33,
        "schedule": {"kind": "exponential", "decay_steps": 10, "decay_rate": 0.5},
    }
    runs = _both({"hidden": (), "output": "linear"}, train)
    _assert_same(runs)
    assert runs[1][1].history["learning_rate"][-1] < 0.1


@pytest.mark.parametrize("loss", ["mse", "mae"])
def test_compiled_matches_autograd_for_regression_losses(loss) -> None:
    runs = _both({"output": "linear"}, {"loss": loss})
    _assert_same(runs)
    assert "accuracy" not in runs[1][1].history


# --- probes ---


class _NormSums(Callback):
    """A gradient-norm probe as the compiled engine feeds it: per-epoch means of each tensor."""

    def __init__(self, every_n_steps: int) -> None:
        self.every_n_steps = every_n_steps
        self.per_epoch: list[np.ndarray] = []

    def add_gradient_norms(self, sums: dict[str, float], steps: int) -> None:
        self.per_epoch.append(np.array(list(sums.values())) / steps)


class _EveryStep(Callback):
    """A callback that must see the model every other step (the kernels cannot serve it)."""

    every_n_steps = 2


@pytest.mark.parametrize("every", [1, 3])
def test_gradient_norms_are_the_torch_loops(every) -> None:
    spec = TrainSpec(optimizer=OPTIMIZERS["nesterov"], epochs=2, batch_size=4)
    reference, probe = GradientNorms(every_n_steps=every), _NormSums(every)
    model = _net(hidden=(12, 8))
    _fit(model, _data(), spec, "autograd", callbacks=[reference])
    _fit(_net(hidden=(12, 8)), _data(), spec, "compiled", callbacks=[probe])
    names = [name for name, _ in model.named_parameters()]
    assert len(probe.per_epoch) == 2
    for epoch, means in enumerate(probe.per_epoch):
        expected = [reference.per_epoch[name][epoch] for name in names]
        np.testing.assert_allclose(means, expected, rtol=1e-5)


@pytest.mark.parametrize("make", [LearningSpeed, lambda: GradientNorms(every_n_steps=1)])
def test_learning_speed_and_gradient_norms_train_compiled_as_on_the_torch_loop(make) -> None:
    spec = TrainSpec(optimizer=OPTIMIZERS["nesterov"], epochs=2, batch_size=4)
    reference, probe = make(), make()
    _fit(_net(hidden=(12, 8)), _data(), spec, "autograd", callbacks=[reference])
    history = _fit(_net(hidden=(12, 8)), _data(), spec, "auto", callbacks=[probe])
    assert history.engine.startswith("compiled")
    if isinstance(reference, LearningSpeed):
        got, want = probe.arrays(), reference.arrays()
        assert got["speed/grad_norm"].shape == (2, 6)
        for key in ("speed/grad_norm", "speed/relative_change"):
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5)
        # Σ|ΔW / W_after| divides by weights near 0 (biases start at 0): weights equal to
        # float32 rounding give this sum to about 1e-3 relative, not 1e-5
        np.testing.assert_allclose(got["speed/original"], want["speed/original"], rtol=1e-3)
    else:
        assert probe.per_epoch.keys() == reference.per_epoch.keys()
        for name, means in reference.per_epoch.items():
            np.testing.assert_allclose(probe.per_epoch[name], means, rtol=1e-5)


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


@pytest.mark.parametrize("threshold", [None, 5.0])
def test_exploding_runs_diverge_at_the_same_batch(threshold) -> None:
    train = {"optimizer": {"name": "sgd", "learning_rate": 50.0}}
    runs = _both({"activation": "relu"}, {**train, "divergence_threshold": threshold})
    assert runs[0][1].status == runs[1][1].status == "diverged"
    assert runs[1][1].diverged_at == runs[0][1].diverged_at


# --- what the engine takes ---


def test_supports_the_vanishing_gradient_workload() -> None:
    hidden = (15, 25, 50, 75, 100, 150)
    model = build_mlp(MLPSpec(hidden=hidden, activation="sigmoid"), 784, 10, make_generator(0))
    spec = TrainSpec(optimizer={"name": "sgd", "learning_rate": 0.01}, batch_size=2)
    train = Split(x=torch.zeros(4, 784), y=torch.zeros(4, dtype=torch.int64))
    assert compiled.compiled_unsupported(model, spec, train) is None


@pytest.mark.parametrize(
    ("model_fields", "train_fields", "reason"),
    [
        ({}, {"clip_probabilities": True}, "clip_probabilities"),
        ({}, {"augment": {"rotation_range": 10}}, "augmentation"),
    ],
)
def test_refuses_what_it_does_not_implement(model_fields, train_fields, reason) -> None:
    spec = TrainSpec(**{"optimizer": "sgd", **train_fields})
    assert reason in compiled.compiled_unsupported(_net(**model_fields), spec, _data())


def test_refuses_other_modules_inputs_labels_and_frozen_weights() -> None:
    spec = TrainSpec(optimizer="sgd")
    data = _data()
    assert "not an MLPNet" in compiled.compiled_unsupported(torch.nn.Linear(20, 3), spec, data)
    one_hot = Split(x=data.x, y=torch.nn.functional.one_hot(data.y, 3).float())
    assert "int64 class ids" in compiled.compiled_unsupported(_net(), spec, one_hot)
    doubles = Split(x=data.x.double(), y=data.y)
    assert "not float32" in compiled.compiled_unsupported(_net(), spec, doubles)
    frozen = _net()
    frozen.dense_layers[0].kernel.requires_grad_(False)
    assert compiled.compiled_unsupported(frozen, spec, data) == "frozen parameters"


def test_refuses_callbacks_that_need_every_step() -> None:
    assert compiled.callbacks_unsupported([_NormSums(1), Callback()]) is None
    reason = compiled.callbacks_unsupported([_EveryStep()])
    assert reason == "callback _EveryStep runs every 2 steps"
    assert (
        compiled.callbacks_unsupported([GradientNorms(every_n_steps=2), LearningSpeed(2)]) is None
    )
    mixed = compiled.callbacks_unsupported([_NormSums(1), _NormSums(2)])
    assert mixed == "gradient-norm probes sampling at different periods"
