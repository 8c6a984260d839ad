import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mnistlab.models.numpy_mlp import NumpyMLP, NumpySpec, init_numpy_mlp

TOLERANCE = 1e-6  # relative error the issue asks of both checks
FD_EPS = 1e-5


def _net(activation="sigmoid", output="softmax", loss="cross_entropy", reduction="mean", seed=0):
    rng = np.random.default_rng(seed)
    sizes = (5, 4, 3, 3)
    weights = [rng.normal(0, 0.8, (o, i)) for i, o in itertools.pairwise(sizes)]
    biases = [rng.normal(0, 0.3, o) for o in sizes[1:]]
    return NumpyMLP(weights, biases, activation, output, loss, reduction)


def _batch(loss, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(7, 5))
    y = rng.integers(0, 3, 7) if loss == "cross_entropy" else rng.normal(size=(7, 3))
    return x, y


def _torch_loss(net, x, y):
    """The same network and loss written with torch ops, for autograd."""
    ws = [torch.tensor(w, requires_grad=True) for w in net.coefs_]
    bs = [torch.tensor(b, requires_grad=True) for b in net.intercepts_]
    act = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}[net.activation]
    a = torch.tensor(x)
    for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
        z = a @ w.T + b
        a = act(z) if i < len(ws) - 1 else z
    if net.loss == "cross_entropy":
        total = F.cross_entropy(a, torch.tensor(y), reduction="sum")
    else:
        out = a.softmax(dim=1) if net.output == "softmax" else a
        sq = (out - torch.tensor(y)) ** 2
        total = {
            "mse": sq.mean(dim=1).sum(),
            "sse": sq.sum(),
            "half_sse": 0.5 * sq.sum(),
        }[net.loss]
    if net.reduction == "mean":
        total = total / len(x)
    total.backward()
    return float(total.detach()), [w.grad.numpy() for w in ws], [b.grad.numpy() for b in bs]


def _rel(a, b):
    return np.abs(a - b).max() / max(np.abs(a).max(), np.abs(b).max(), 1e-12)


CASES = [
    (act, out, loss, red)
    for act, (out, loss), red in itertools.product(
        ("sigmoid", "relu", "tanh"),
        (
            ("softmax", "cross_entropy"),
            ("linear", "cross_entropy"),
            ("linear", "mse"),
            ("linear", "half_sse"),
            ("softmax", "sse"),
        ),
        ("mean", "sum"),
    )
]


@pytest.mark.parametrize(("activation", "output", "loss", "reduction"), CASES)
def test_gradients_match_torch_autograd(activation, output, loss, reduction):
    net = _net(activation, output, loss, reduction)
    x, y = _batch(loss)
    value, d_w, d_b = net.gradients(x, y)
    ref_value, ref_w, ref_b = _torch_loss(net, x, y)
    assert value == pytest.approx(ref_value, rel=1e-12)
    for got, want in zip(d_w + d_b, ref_w + ref_b, strict=True):
        assert got.shape == want.shape
        assert _rel(got, want) <= TOLERANCE


@pytest.mark.parametrize(("activation", "output", "loss", "reduction"), CASES[::3])
def test_gradients_match_finite_differences(activation, output, loss, reduction):
    net = _net(activation, output, loss, reduction)
    x, y = _batch(loss)
    _, d_w, d_b = net.gradients(x, y)
    for params, grads in ((net.coefs_, d_w), (net.intercepts_, d_b)):
        for param, grad in zip(params, grads, strict=True):
            numeric = np.zeros_like(param)
            for idx in np.ndindex(param.shape):
                saved = param[idx]
                param[idx] = saved + FD_EPS
                up = net.gradients(x, y)[0]
                param[idx] = saved - FD_EPS
                down = net.gradients(x, y)[0]
                param[idx] = saved
                numeric[idx] = (up - down) / (2 * FD_EPS)
            assert _rel(grad, numeric) <= TOLERANCE


def test_step_is_keras_sgd_with_momentum():
    net = _net()
    x, y = _batch("cross_entropy")
    w0 = net.coefs_[0].copy()
    _, g1, _ = net.gradients(x, y)
    net.step(x, y, learning_rate=0.1, momentum=0.9)
    np.testing.assert_allclose(net.coefs_[0], w0 - 0.1 * g1[0], rtol=0, atol=1e-15)
    w1 = net.coefs_[0].copy()
    _, g2, _ = net.gradients(x, y)
    net.step(x, y, learning_rate=0.1, momentum=0.9)
    velocity = 0.9 * (-0.1 * g1[0]) - 0.1 * g2[0]
    np.testing.assert_allclose(net.coefs_[0], w1 + velocity, rtol=0, atol=1e-15)


def test_fit_unshuffled_takes_consecutive_batches_including_the_last_partial_one():
    net, ref = _net(), _net()
    x, y = _batch("cross_entropy")  # 7 rows, batches of 3: rows 0-2, 3-5, 6
    net.fit(x, y, epochs=1, batch_size=3, learning_rate=0.5, shuffle=False)
    losses = [ref.step(x[s : s + 3], y[s : s + 3], 0.5) for s in (0, 3, 6)]
    for got, want in zip(net.coefs_ + net.intercepts_, ref.coefs_ + ref.intercepts_, strict=True):
        np.testing.assert_array_equal(got, want)
    assert net.loss_curve_ == [pytest.approx((3 * losses[0] + 3 * losses[1] + losses[2]) / 7)]


def test_fit_shuffles_with_its_seed():
    x, y = _batch("cross_entropy")
    a, b, c = _net(), _net(), _net()
    for net, seed in ((a, 3), (b, 3), (c, 4)):
        net.fit(x, y, epochs=2, batch_size=2, learning_rate=0.5, seed=seed)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


def test_separable_toy_problem_is_learned_perfectly():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 0.5, (40, 2)), rng.normal(2, 0.5, (40, 2))])
    y = np.repeat([0, 1], 40)
    spec = NumpySpec(hidden=(8,), activation="tanh")
    net = init_numpy_mlp(spec, 2, 2, torch.Generator().manual_seed(0))
    net.fit(x, y, epochs=30, batch_size=8, learning_rate=0.5, seed=0)
    assert (net.predict(x) == y).mean() == 1.0
    assert net.loss_curve_[-1] < net.loss_curve_[0]
    assert len(net.accuracy_curve_) == 30


def test_init_uses_keras_initialisers_in_textbook_orientation():
    spec = NumpySpec(hidden=(30,), kernel_initializer={"name": "random_normal", "stddev": 1.0})
    net = init_numpy_mlp(spec, 784, 10, torch.Generator().manual_seed(0))
    assert [w.shape for w in net.coefs_] == [(30, 784), (10, 30)]
    assert [b.shape for b in net.intercepts_] == [(30,), (10,)]
    assert net.coefs_[0].dtype == np.float64
    assert net.coefs_[0].std() == pytest.approx(1.0, abs=0.02)
    assert not np.any(net.intercepts_[0])
    glorot = init_numpy_mlp(
        NumpySpec(hidden=(30,), dtype="float32"), 784, 10, torch.Generator().manual_seed(0)
    )
    limit = np.sqrt(6 / (784 + 30))
    assert glorot.coefs_[0].dtype == np.float32
    assert np.abs(glorot.coefs_[0]).max() <= limit
    assert np.abs(glorot.coefs_[0]).max() > 0.95 * limit
