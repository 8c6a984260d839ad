"""Initialisers, BatchNorm and Dropout against values recorded from real Keras 3.15.

The goldens are `tests/fixtures/keras/initializers.json` and `layers.json` (layout in
`tests/fixtures/keras/README.md`). Keras's and torch's RNGs differ, so random draws are
compared by their moments, with tolerances derived from the sampling error of both draws
(`Z` standard errors, not fixed percentages); deterministic outputs are compared to float32
precision.
"""

import json
import math
from pathlib import Path
from statistics import NormalDist

import pytest
import torch
from pydantic import TypeAdapter

from mnistlab.models.initializers import initialize
from mnistlab.models.layers import BatchNorm, Dropout
from mnistlab.models.spec import InitializerSpec

SPEC = TypeAdapter(InitializerSpec).validate_python
Z = 4.0  # standard errors allowed between a moment and its reference (two-sided p ≈ 6e-5)
TAIL = 12.0  # a bounded draw's extreme sits within TAIL / (n · density-at-the-cut) of it
FLOAT32_SLACK = 1e-6  # relative: a float32 draw may round onto (just past) a float64 limit
UNIT = NormalDist()
# a unit normal cut at ±2: its mass, and E[z²] and E[z⁴] (computed here, not taken from mnistlab)
CUT_MASS = 2 * UNIT.cdf(2.0) - 1
CUT_M2 = 1 - 2 * 2 * UNIT.pdf(2.0) / CUT_MASS
CUT_M4 = 3 - 2 * (2**3 + 3 * 2) * UNIT.pdf(2.0) / CUT_MASS
CUT_STD = math.sqrt(CUT_M2)  # 0.87962566, Keras's divisor for the *_normal initialisers

# collection-time view of the fixture, for test ids only; tests read it via keras_fixture
_INIT_FILE = Path(__file__).parents[1] / "fixtures" / "keras" / "initializers.json"
_INIT = json.loads(_INIT_FILE.read_text())
INIT_CASES = [
    pytest.param(name, f"{rows}x{cols}", id=f"{name}-{rows}x{cols}")
    for name in _INIT["cases"]
    for rows, cols in _INIT["shapes"]
]

# --- initialisers ---


def _snake(keras_class: str) -> str:
    """GlorotUniform -> glorot_uniform: the mnistlab initialiser name of a Keras class."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in keras_class).lstrip("_")


def _spec(case: dict):
    """The mnistlab spec of a recorded Keras initialiser (its class plus non-null config)."""
    # seed / input_axes / output_axes are null: Keras-only knobs left at their defaults
    fields = {k: v for k, v in case["config"].items() if v is not None}
    return SPEC({"name": _snake(case["keras_class"]), **fields})


def _theory(spec, fan_in: int, fan_out: int) -> dict:
    """Population moments of an initialiser, from Keras's formulas (README of the fixtures).

    Returns {"kind", "mean", "std", "kurtosis", "bound", "density_at_bound"}: `bound` is the
    support's half-width (None when unbounded), `density_at_bound` the pdf just inside it.
    """
    name = spec.name
    family = name.split("_")[0]  # glorot / he / lecun for the variance-scaling ones
    if family in ("glorot", "he", "lecun"):
        scale = 2.0 if family == "he" else 1.0
        fan = (fan_in + fan_out) / 2 if family == "glorot" else fan_in
        if name.endswith("_uniform"):  # limit sqrt(6/(in+out)), sqrt(6/in), sqrt(3/in)
            return _uniform(0.0, math.sqrt(3 * scale / fan))
        # *_normal: cut at 2σ₀ with σ₀ = target/0.8796, so the cut draw has the target std
        return _truncated(0.0, math.sqrt(scale / fan) / CUT_STD)
    if name == "random_uniform":
        return _uniform((spec.minval + spec.maxval) / 2, (spec.maxval - spec.minval) / 2)
    if name == "truncated_normal":  # NOT rescaled: std 0.8796·stddev, cut at ±2·stddev
        return _truncated(spec.mean, spec.stddev)
    if name == "random_normal":
        return {
            "kind": "normal",
            "mean": spec.mean,
            "std": spec.stddev,
            "kurtosis": 3.0,
            "bound": None,
            "density_at_bound": None,
        }
    value = spec.value if name == "constant" else {"zeros": 0.0, "ones": 1.0}[name]
    return {"kind": "constant", "mean": value, "std": 0.0}


def _uniform(centre: float, half_width: float) -> dict:
    return {
        "kind": "uniform",
        "mean": centre,
        "std": half_width / math.sqrt(3),
        "kurtosis": 9 / 5,
        "bound": half_width,
        "density_at_bound": 1 / (2 * half_width),
    }


def _truncated(mean: float, sigma0: float) -> dict:
    """N(mean, sigma0²) cut at mean ± 2·sigma0."""
    return {
        "kind": "truncated",
        "mean": mean,
        "std": sigma0 * CUT_STD,
        "kurtosis": CUT_M4 / CUT_M2**2,  # ≈ 2.37
        "bound": 2 * sigma0,
        "density_at_bound": UNIT.pdf(2.0) / (CUT_MASS * sigma0),
    }


def _moments(w: torch.Tensor) -> dict:
    """mean, population std, min and max, as record.py computes them (in float64)."""
    d = w.double()
    return {
        "mean": d.mean().item(),
        "std": d.std(correction=0).item(),
        "min": d.min().item(),
        "max": d.max().item(),
    }


def _assert_extremes_plausible(got: dict, theory: dict, n: int, who: str) -> None:
    """min/max of n draws: inside a bounded support and close to its ends, or (normal) in
    the range that the extreme of n normals falls in with probability 1 − 2e-5."""
    mean, bound = theory["mean"], theory["bound"]
    if bound is not None:
        # P(no draw within gap of a cut) = (1 − density·gap)^n ≈ exp(−TAIL) ≈ 6e-6
        gap = TAIL / (n * theory["density_at_bound"])
        assert gap < 0.05 * bound, "too few draws to locate the support's ends"
        limit = bound * (1 + FLOAT32_SLACK)
        assert mean - limit <= got["min"] <= mean - bound + gap, (who, got, bound)
        assert mean + bound - gap <= got["max"] <= mean + limit, (who, got, bound)
        return
    # P(max of n < t) = Φ(t)^n: keep 1e-5 in each tail of that distribution
    lo = UNIT.inv_cdf(1 - math.log(1e5) / n)
    hi = UNIT.inv_cdf(1 - 1e-5 / n)
    std = theory["std"]
    assert lo <= (got["max"] - mean) / std <= hi, (who, got, (lo, hi))
    assert lo <= (mean - got["min"]) / std <= hi, (who, got, (lo, hi))


@pytest.mark.parametrize(("name", "shape_key"), INIT_CASES)
def test_initializer_matches_keras_moments(keras_fixture, name, shape_key):
    fixture = keras_fixture("initializers")
    case = fixture["cases"][name]
    recorded = case[shape_key]
    fan_in, fan_out = (int(s) for s in shape_key.split("x"))  # Keras kernel (in, out)
    spec = _spec(case)

    w = torch.empty(fan_in, fan_out)
    initialize(w, spec, fan_in, fan_out, torch.Generator().manual_seed(1234))
    assert str(w.dtype).removeprefix("torch.") == recorded["dtype"] == "float32"
    ours, n = _moments(w), w.numel()
    theory = _theory(spec, fan_in, fan_out)

    if theory["kind"] == "constant":  # exact, bit for bit in float32
        value = torch.tensor(theory["mean"], dtype=torch.float32)
        assert torch.equal(w, torch.full_like(w, value.item()))
        for key in ("mean", "min", "max"):
            assert torch.tensor(recorded[key], dtype=torch.float32) == value, key
        assert recorded["std"] == ours["std"] == 0.0
        return

    sigma = theory["std"]
    # standard errors of one draw's mean and population std: σ/√n and
    # σ·√((κ − 1)/(4n)) (delta method on the variance, κ the kurtosis)
    se_mean = sigma / math.sqrt(n)
    se_std = sigma * math.sqrt((theory["kurtosis"] - 1) / (4 * n))
    for who, got in (("mnistlab", ours), ("keras", recorded)):
        # each draw against Keras's documented distribution ...
        assert got["mean"] == pytest.approx(theory["mean"], abs=Z * se_mean), (who, got)
        assert got["std"] == pytest.approx(sigma, abs=Z * se_std), (who, got)
        _assert_extremes_plausible(got, theory, n, who)
    # ... and against each other: two independent draws, √2 times one draw's error
    assert ours["mean"] == pytest.approx(recorded["mean"], abs=Z * math.sqrt(2) * se_mean)
    assert ours["std"] == pytest.approx(recorded["std"], abs=Z * math.sqrt(2) * se_std)


def test_initializer_fixture_lists_the_documented_cases():
    # the ids above come from the file: a truncated or renamed fixture must not shrink them
    assert {p.values[0] for p in INIT_CASES} == {
        "glorot_uniform",
        "glorot_normal",
        "he_normal",
        "he_uniform",
        "lecun_normal",
        "lecun_uniform",
        "random_normal",
        "random_normal_0_0.062",
        "random_uniform",
        "truncated_normal",
        "zeros",
        "ones",
        "constant_0.3",
    }
    assert _INIT["shapes"] == [[784, 512], [512, 10]]


# --- BatchNorm ---

BN_TOL = {"rtol": 1e-5, "atol": 1e-6}


def _f32(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float) -> None:
    """|actual − expected| ≤ atol + rtol·|expected| elementwise, same shape and dtype.

    (torch.testing.assert_close would do, but its first call imports sympy: ~0.5 s.)
    """
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    diff = (actual - expected).abs()
    excess = (diff - atol - rtol * expected.abs()).max().item()
    assert torch.isclose(actual, expected, rtol=rtol, atol=atol).all(), (
        f"max |diff| {diff.max().item():.3g}, over atol + rtol·|expected| by {excess:.3g}"
        f"\nactual:\n{actual}\nexpected:\n{expected}"
    )


@pytest.fixture
def batchnorm_golden(keras_fixture) -> dict:
    golden = keras_fixture("layers")["batchnorm"]
    assert golden["config"] == {"momentum": 0.99, "epsilon": 0.001, "center": True, "scale": True}
    return golden


def test_batchnorm_matches_keras_through_two_training_calls_and_inference(batchnorm_golden):
    g = batchnorm_golden
    bn = BatchNorm(4, momentum=g["config"]["momentum"], epsilon=g["config"]["epsilon"])
    # Keras's defaults: gamma 1, beta 0, moving mean 0, moving variance 1
    assert torch.equal(bn.gamma.detach(), torch.ones(4))
    assert torch.equal(bn.beta.detach(), torch.zeros(4))
    assert torch.equal(bn.moving_mean, torch.zeros(4))
    assert torch.equal(bn.moving_variance, torch.ones(4))

    bn.train()
    with torch.no_grad():
        for i, x in ((1, g["x1"]), (2, g["x2"])):
            y = bn(_f32(x))
            _assert_close(y, _f32(g[f"train_output_x{i}"]), **BN_TOL)
            _assert_close(bn.moving_mean, _f32(g[f"moving_mean_after_{i}"]), **BN_TOL)
            _assert_close(bn.moving_variance, _f32(g[f"moving_variance_after_{i}"]), **BN_TOL)

        bn.eval()
        for i, x in ((1, g["x1"]), (2, g["x2"])):
            y = bn(_f32(x))
            _assert_close(y, _f32(g[f"inference_output_x{i}"]), **BN_TOL)
    # inference leaves the moving statistics where the second training call put them
    _assert_close(bn.moving_mean, _f32(g["moving_mean_after_2"]), **BN_TOL)
    _assert_close(bn.moving_variance, _f32(g["moving_variance_after_2"]), **BN_TOL)


def test_batchnorm_training_output_is_standardised_per_feature(batchnorm_golden):
    # Keras's own output has batch mean 0 and BIASED variance var/(var + ε) per feature: the
    # recorded numbers pin the biased convention, not only mnistlab's reading of it
    x1 = _f32(batchnorm_golden["x1"]).double()
    y1 = _f32(batchnorm_golden["train_output_x1"]).double()
    var = x1.var(dim=0, correction=0)
    zeros = torch.zeros(4, dtype=torch.float64)
    _assert_close(y1.mean(dim=0), zeros, rtol=0.0, atol=1e-6)
    _assert_close(y1.var(dim=0, correction=0), var / (var + 1e-3), rtol=0.0, atol=1e-6)


# --- Dropout ---


@pytest.fixture
def dropout_golden(keras_fixture) -> dict:
    return keras_fixture("layers")["dropout"]


def _dropped_fraction_tolerance(rate: float, n: int) -> float:
    """Z binomial standard errors of one draw's dropped fraction."""
    return Z * math.sqrt(rate * (1 - rate) / n)


@pytest.mark.parametrize("rate", [0.3, 0.5])
def test_dropout_inference_is_identity(dropout_golden, rate):
    assert dropout_golden["rate_0.5"]["inference_equals_input"] is True
    drop = Dropout(rate, generator=torch.Generator().manual_seed(0)).eval()
    x = torch.linspace(0.5, 1.5, 1000)
    assert torch.equal(drop(x), x)


def test_dropout_rate_half_keeps_zero_or_keras_scaled_values(dropout_golden):
    golden = dropout_golden["rate_0.5"]
    assert golden["train_values_are_zero_or_scaled"] is True
    drop = Dropout(0.5, generator=torch.Generator().manual_seed(0)).train()
    x = torch.linspace(0.5, 1.5, 1000)  # record.py's input; no zeros, so 0 means dropped
    y = drop(x)
    kept = y != 0
    # every kept value is exactly x · Keras's scale (2.0, no spread)
    assert torch.equal(y[kept], x[kept] * golden["scale"])
    ratio = y[kept] / x[kept]
    assert ratio.mean().item() == golden["scale"] == 2.0
    assert (ratio.max() - ratio.min()).item() == golden["scale_spread"] == 0.0
    # dropped fraction of 1000: both draws near the rate, and near each other
    tol = _dropped_fraction_tolerance(0.5, x.numel())
    ours = 1 - kept.double().mean().item()
    assert ours == pytest.approx(0.5, abs=tol)
    assert golden["fraction_dropped_of_1000"] == pytest.approx(0.5, abs=tol)
    assert ours == pytest.approx(golden["fraction_dropped_of_1000"], abs=math.sqrt(2) * tol)


def test_dropout_rate_0_3_matches_keras_values_and_fraction(dropout_golden):
    golden = dropout_golden["rate_0.3"]
    n = golden["n"]
    drop = Dropout(0.3, generator=torch.Generator().manual_seed(0)).train()
    y = drop(torch.ones(n))
    # the same two float32 values as Keras: 0 and float32(1/0.7) = 1.42857146
    assert torch.equal(torch.unique(y), _f32(golden["distinct_train_values"]))
    assert y.max() == _f32(golden["scale"])
    assert golden["scale"] == pytest.approx(golden["expected_scale"], rel=1e-7)
    assert golden["expected_scale"] == pytest.approx(1 / 0.7, rel=1e-8)
    tol = _dropped_fraction_tolerance(0.3, n)
    ours = (y == 0).double().mean().item()
    assert ours == pytest.approx(0.3, abs=tol)
    assert golden["fraction_dropped"] == pytest.approx(0.3, abs=tol)
    assert ours == pytest.approx(golden["fraction_dropped"], abs=math.sqrt(2) * tol)
