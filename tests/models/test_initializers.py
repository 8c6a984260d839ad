"""Initialiser moments and bounds against Keras's formulas, and seeded reproducibility."""

import math

import pytest
import torch
from pydantic import TypeAdapter

from mnistlab.models.initializers import TRUNCATED_STD, initialize, variance_scaling_bound
from mnistlab.models.spec import InitializerSpec

SPEC = TypeAdapter(InitializerSpec).validate_python
FAN_IN, FAN_OUT = 784, 512  # the fans of a Dense(512) kernel on MNIST
SHAPE = (784, 128)  # 100,352 draws: sample std within 1 % at > 4 sigma


def _draw(spec, shape=SHAPE, fans=(FAN_IN, FAN_OUT), seed=0) -> torch.Tensor:
    tensor = torch.empty(shape)
    initialize(tensor, SPEC(spec), *fans, torch.Generator().manual_seed(seed))
    return tensor.double()


# target std (what Keras aims for) of each variance-scaling initialiser
KERAS_STD = {
    "glorot_uniform": math.sqrt(2 / (FAN_IN + FAN_OUT)),
    "glorot_normal": math.sqrt(2 / (FAN_IN + FAN_OUT)),
    "he_uniform": math.sqrt(2 / FAN_IN),
    "he_normal": math.sqrt(2 / FAN_IN),
    "lecun_uniform": math.sqrt(1 / FAN_IN),
    "lecun_normal": math.sqrt(1 / FAN_IN),
}


@pytest.mark.parametrize("name", sorted(KERAS_STD))
def test_variance_scaling_moments_and_bounds(name):
    w = _draw(name)
    std = KERAS_STD[name]
    assert abs(w.mean()) < 4 * std / math.sqrt(w.numel())
    assert w.std() == pytest.approx(std, rel=0.01)
    uniform = name.endswith("uniform")
    # uniform: l = sqrt(3)·std, i.e. sqrt(6/(in+out)), sqrt(6/in), sqrt(3/in);
    # normal: cut at 2 of the inflated std std/0.8796
    bound = math.sqrt(3) * std if uniform else 2 * std / TRUNCATED_STD
    expected = bound if uniform else std / TRUNCATED_STD
    assert variance_scaling_bound(name, FAN_IN, FAN_OUT) == pytest.approx(expected, rel=1e-12)
    assert w.abs().max() <= bound * (1 + 1e-6)
    assert w.abs().max() > 0.99 * bound  # the support reaches the cut


def test_glorot_uniform_bound_is_exactly_keras():
    limit = math.sqrt(6 / (784 + 512))
    assert variance_scaling_bound("glorot_uniform", 784, 512) == limit
    w = _draw("glorot_uniform", shape=(784, 512))
    assert w.min() >= -limit and w.max() <= limit
    assert w.min() < -0.9999 * limit and w.max() > 0.9999 * limit


def test_truncated_variants_have_the_truncated_normal_shape():
    # w / std = z / 0.8796 with z a unit normal cut at ±2, so P(|w| < std / 0.8796) is
    # P(|z| < 1 | |z| < 2) = 0.6827 / 0.9545 = 0.7153 (a plain normal: 0.744, uniform: 0.656)
    w = _draw("he_normal") / KERAS_STD["he_normal"]
    inside = (w.abs() < 1 / TRUNCATED_STD).double().mean()
    assert inside == pytest.approx(0.6827 / 0.9545, abs=0.003)


def test_he_and_lecun_ignore_fan_out():
    a = _draw("he_normal", fans=(FAN_IN, 10))
    b = _draw("he_normal", fans=(FAN_IN, 9999))
    assert torch.equal(a, b)


def test_random_normal_is_a_plain_normal():
    w = _draw({"name": "random_normal", "mean": 0.5, "stddev": 0.062})
    assert w.mean() == pytest.approx(0.5, abs=4 * 0.062 / math.sqrt(w.numel()))
    assert w.std() == pytest.approx(0.062, rel=0.01)
    assert (w - 0.5).abs().max() > 4 * 0.062  # untruncated tails


def test_random_normal_defaults():
    w = _draw("random_normal")
    assert w.std() == pytest.approx(0.05, rel=0.01)


def test_truncated_normal_cuts_at_two_stddev_without_rescaling():
    w = _draw({"name": "truncated_normal", "mean": 1.0, "stddev": 0.5})
    assert w.min() >= 0.0 and w.max() <= 2.0
    assert w.max() > 1.99 and w.min() < 0.01
    assert w.mean() == pytest.approx(1.0, abs=0.002)
    assert w.std() == pytest.approx(0.5 * TRUNCATED_STD, rel=0.01)


def test_random_uniform_range_and_moments():
    w = _draw({"name": "random_uniform", "minval": -0.2, "maxval": 0.3})
    assert w.min() >= -0.2 and w.max() <= 0.3
    assert w.mean() == pytest.approx(0.05, abs=0.001)
    assert w.std() == pytest.approx(0.5 / math.sqrt(12), rel=0.01)
    default = _draw("random_uniform")
    assert default.min() >= -0.05 and default.max() <= 0.05


@pytest.mark.parametrize(
    ("spec", "value"),
    [("zeros", 0.0), ("ones", 1.0), ({"name": "constant", "value": 0.3}, 0.3)],
)
def test_constant_initializers(spec, value):
    w = _draw(spec, shape=(3, 4))
    assert torch.equal(w, torch.full((3, 4), value, dtype=torch.float32).double())


def test_constants_draw_nothing_from_the_generator():
    generator = torch.Generator().manual_seed(3)
    initialize(torch.empty(5), SPEC("zeros"), 5, 5, generator)
    assert torch.equal(
        torch.rand(3, generator=generator),
        torch.rand(3, generator=torch.Generator().manual_seed(3)),
    )


@pytest.mark.parametrize(
    "name", ["glorot_uniform", "he_normal", "random_normal", "truncated_normal"]
)
def test_seeded_draws_reproduce_and_ignore_global_rng(name):
    torch.manual_seed(1)
    a = _draw(name, shape=(64, 32), seed=7)
    torch.manual_seed(2)
    b = _draw(name, shape=(64, 32), seed=7)
    c = _draw(name, shape=(64, 32), seed=8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
