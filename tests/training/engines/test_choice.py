"""`choose_engine`: which engine trains a run, why, and what a forced engine refuses."""

from __future__ import annotations

import pytest
import torch

from mnistlab.data import Split
from mnistlab.models import MLPSpec, build_mlp
from mnistlab.runtime import make_generator
from mnistlab.training.callbacks import Callback, GradientNorms
from mnistlab.training.engines import COMPILED_MAX_MACS, choose_engine
from mnistlab.training.loop import fit
from mnistlab.training.spec import TrainSpec


def _split(n: int = 64, d: int = 20) -> Split:
    g = torch.Generator().manual_seed(0)
    return Split(x=torch.randn(n, d, generator=g), y=torch.randint(0, 3, (n,), generator=g))


def _net(d: int = 20, **fields):
    return build_mlp(MLPSpec(**{"hidden": (12,), **fields}), d, 3, make_generator(0))


def _spec(**fields) -> TrainSpec:
    return TrainSpec.model_validate({"epochs": 1, "batch_size": 4, **fields})


def test_auto_compiles_an_overhead_bound_step_and_says_why():
    choice = choose_engine("auto", _net(), _spec(), _split(), [])
    assert choice.name == "compiled"
    assert choice.describe() == "compiled (batch 4 × 20·12 = 960 multiply-adds < 4,000,000)"


def test_auto_keeps_the_lean_step_where_the_gemm_is_large():
    split = _split(n=256, d=784)
    choice = choose_engine("auto", _net(784, hidden=(512,)), _spec(batch_size=128), split, [])
    assert choice.name == "lean"
    assert COMPILED_MAX_MACS <= 128 * 784 * 512
    assert choice.reason == "not compiled: 51,380,224 multiply-adds a step ≥ 4,000,000"


def test_auto_falls_back_to_lean_for_callbacks_the_kernels_cannot_serve():
    choice = choose_engine("auto", _net(), _spec(), _split(), [_EveryStep()])
    assert choice.name == "lean"
    assert choice.reason == "not compiled: callback _EveryStep runs every 2 steps"


def test_auto_trains_gradient_norm_probes_compiled():
    choice = choose_engine("auto", _net(), _spec(), _split(), [GradientNorms(every_n_steps=2)])
    assert choice.name == "compiled"


class _EveryStep(Callback):
    """A callback that must see the model every other step."""

    every_n_steps = 2


def test_auto_compiles_batch_normalised_nets_with_small_steps():
    choice = choose_engine("auto", _net(batch_norm="before"), _spec(), _split(), [])
    assert choice.name == "compiled"


def test_auto_falls_back_to_autograd_for_batch_norm_with_large_steps():
    net, split = _net(784, hidden=(512,), batch_norm="after"), _split(n=256, d=784)
    choice = choose_engine("auto", net, _spec(batch_size=128), split, [])
    assert choice.describe() == "autograd (not lean: batch normalisation)"


@pytest.mark.parametrize(
    ("engine", "fields", "message"),
    [
        (
            "compiled",
            {"clip_probabilities": True},
            "engine: 'compiled' does not support clip_probabilities (Keras 2.2.4 clipping);"
            " use 'auto'",
        ),
        ("lean", {}, "engine: 'lean' does not support batch normalisation; use 'auto'"),
        ("jit", {}, "engine: expected one of auto, autograd, lean, compiled, got 'jit'"),
    ],
)
def test_a_forced_engine_that_cannot_train_the_run_is_refused(engine, fields, message):
    with pytest.raises(ValueError) as err:
        choose_engine(engine, _net(batch_norm="before"), _spec(**fields), _split(), [])
    assert str(err.value) == message


@pytest.mark.parametrize("engine", ["autograd", "lean", "compiled"])
def test_fit_records_the_engine_in_the_history(engine):
    history = fit(_net(), _split(), _spec(epochs=2), seed=1, engine=engine)
    assert history.engine == f"{engine} (requested)"
    assert len(history.history["loss"]) == 2


def test_every_engine_trains_the_same_run_to_the_same_weights():
    weights = []
    for engine in ("autograd", "lean", "compiled"):
        net = _net(dropout=0.2)
        fit(net, _split(), _spec(epochs=3, optimizer={"name": "adam"}), seed=5, engine=engine)
        weights.append(net.state_dict())
    for other in weights[1:]:
        for key, value in weights[0].items():
            torch.testing.assert_close(other[key], value, rtol=1e-5, atol=1e-6)
