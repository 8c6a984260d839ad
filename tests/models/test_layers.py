"""Dense, BatchNorm, Dropout and activations against hand computations with Keras semantics."""

import math

import pytest
import torch
from pydantic import TypeAdapter

from mnistlab.models.layers import Activation, BatchNorm, Dense, Dropout, activation_function
from mnistlab.models.spec import ActivationSpec

ACTIVATION = TypeAdapter(ActivationSpec).validate_python

# --- Dense ---


def test_dense_keeps_the_kernel_in_keras_layout():
    dense = Dense(3, 2)
    assert dense.kernel.shape == (3, 2) and dense.bias.shape == (2,)
    with torch.no_grad():
        dense.kernel.copy_(torch.tensor([[1.0, -1.0], [2.0, 0.5], [0.0, 3.0]]))
        dense.bias.copy_(torch.tensor([0.5, -2.0]))
    y = dense(torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 2.0]]))
    # [1+4+0+0.5, -1+1+9-2], [0-2+0+0.5, 0-0.5+6-2]
    torch.testing.assert_close(y, torch.tensor([[5.5, 7.0], [-1.5, 3.5]]), rtol=0, atol=0)


# --- BatchNorm ---

X = torch.tensor([[1.0, 2.0], [3.0, 6.0], [5.0, 10.0], [7.0, 14.0]])
# column means 4 and 8; BIASED variances 5 and 20 (unbiased would be 6.67 and 26.67)


def test_batchnorm_training_uses_biased_batch_variance():
    bn = BatchNorm(2)
    y = bn(X)
    expected = torch.stack(
        [(X[:, 0] - 4) / math.sqrt(5 + 1e-3), (X[:, 1] - 8) / math.sqrt(20 + 1e-3)], dim=1
    )
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-6)


def test_batchnorm_moving_statistics_after_one_training_call():
    bn = BatchNorm(2)
    bn(X)
    # moving = 0.99·moving + 0.01·batch, from mean 0 and variance 1
    torch.testing.assert_close(bn.moving_mean, torch.tensor([0.04, 0.08]), rtol=0, atol=1e-7)
    torch.testing.assert_close(bn.moving_variance, torch.tensor([1.04, 1.19]), rtol=0, atol=1e-6)


def test_batchnorm_inference_uses_moving_statistics_and_leaves_them():
    bn = BatchNorm(2)
    bn(X)
    with torch.no_grad():
        bn.gamma.copy_(torch.tensor([2.0, 0.5]))
        bn.beta.copy_(torch.tensor([1.0, -1.0]))
    bn.eval()
    y = bn(X)
    expected = torch.stack(
        [
            2.0 * (X[:, 0] - 0.04) / math.sqrt(1.04 + 1e-3) + 1.0,
            0.5 * (X[:, 1] - 0.08) / math.sqrt(1.19 + 1e-3) - 1.0,
        ],
        dim=1,
    )
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(bn.moving_mean, torch.tensor([0.04, 0.08]), rtol=0, atol=1e-7)


def test_batchnorm_momentum_and_epsilon_are_used():
    bn = BatchNorm(2, momentum=0.5, epsilon=1.0)
    y = bn(X)
    torch.testing.assert_close(y[0], torch.tensor([-3 / math.sqrt(6), -6 / math.sqrt(21)]))
    torch.testing.assert_close(bn.moving_mean, torch.tensor([2.0, 4.0]))
    torch.testing.assert_close(bn.moving_variance, torch.tensor([3.0, 10.5]))


def test_batchnorm_parameters_and_buffers():
    bn = BatchNorm(3)
    assert {name for name, _ in bn.named_parameters()} == {"gamma", "beta"}
    assert {name for name, _ in bn.named_buffers()} == {"moving_mean", "moving_variance"}
    bn(torch.randn(5, 3, generator=torch.Generator().manual_seed(0))).sum().backward()
    assert bn.gamma.grad is not None and bn.moving_mean.grad is None


# --- Dropout ---


def test_dropout_is_identity_in_inference():
    drop = Dropout(0.5).eval()
    x = torch.randn(10, 4)
    assert drop(x) is x


def test_dropout_scales_kept_values_and_drops_the_rate():
    drop = Dropout(0.3, generator=torch.Generator().manual_seed(0))
    x = torch.linspace(0.5, 1.5, 200_000)
    y = drop(x)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / 0.7, rtol=1e-6, atol=0)
    assert 1 - kept.double().mean() == pytest.approx(0.3, abs=0.005)  # 4.5 sigma


def test_dropout_masks_come_from_its_generator():
    x = torch.ones(1000)
    a = Dropout(0.5, generator=torch.Generator().manual_seed(42))(x)
    torch.manual_seed(0)  # the global RNG plays no part
    b = Dropout(0.5, generator=torch.Generator().manual_seed(42))(x)
    c = Dropout(0.5, generator=torch.Generator().manual_seed(43))(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert set(a.unique().tolist()) == {0.0, 2.0}


def test_dropout_rate_is_checked():
    with pytest.raises(ValueError, match=r"dropout rate must be in \[0, 1\), got 1.0"):
        Dropout(1.0)


# --- activations ---

Z = torch.tensor([-2.0, -0.5, 0.0, 1.5])


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("linear", [-2.0, -0.5, 0.0, 1.5]),
        ("relu", [0.0, 0.0, 0.0, 1.5]),
        ("leaky_relu", [-0.6, -0.15, 0.0, 1.5]),  # Keras's slope 0.3
        ({"name": "leaky_relu", "negative_slope": 0.1}, [-0.2, -0.05, 0.0, 1.5]),
        ("elu", [math.exp(-2) - 1, math.exp(-0.5) - 1, 0.0, 1.5]),
        ({"name": "elu", "alpha": 2.0}, [2 * (math.exp(-2) - 1), 2 * (math.exp(-0.5) - 1), 0, 1.5]),
        (
            "sigmoid",
            [1 / (1 + math.exp(2)), 1 / (1 + math.exp(0.5)), 0.5, 1 / (1 + math.exp(-1.5))],
        ),
        ("tanh", [math.tanh(-2), math.tanh(-0.5), 0.0, math.tanh(1.5)]),
    ],
)
def test_activations(spec, expected):
    expected = torch.tensor(expected, dtype=torch.float32)
    torch.testing.assert_close(activation_function(ACTIVATION(spec))(Z), expected)
    torch.testing.assert_close(Activation(ACTIVATION(spec))(Z), expected)
