"""MLPNet: Keras layer order, logits vs predict, seeded initialisation, penalties, dropout."""

import math

import pytest
import torch
from pydantic import TypeAdapter

from mnistlab.errors import SpecError
from mnistlab.models import MLPNet, MLPSpec, build_mlp
from mnistlab.models.initializers import initialize
from mnistlab.models.layers import Activation, BatchNorm, Dense, Dropout
from mnistlab.models.spec import InitializerSpec
from mnistlab.spec import parse_spec

INIT = TypeAdapter(InitializerSpec).validate_python


def _net(seed: int = 0, input_dim: int = 6, outputs: int | None = 3, **fields) -> MLPNet:
    spec = parse_spec(MLPSpec, fields)
    return build_mlp(spec, input_dim, outputs, torch.Generator().manual_seed(seed))


def _x(rows: int = 8, cols: int = 6) -> torch.Tensor:
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(123))


def _kinds(net: MLPNet) -> list[str]:
    return [type(layer).__name__ for layer in net.layers]


# --- structure ---


@pytest.mark.parametrize(
    ("fields", "kinds"),
    [
        ({"hidden": []}, ["Dense"]),
        ({"hidden": [5, 4]}, ["Dense", "Activation", "Dense", "Activation", "Dense"]),
        (
            {"hidden": [5], "batch_norm": "before", "dropout": 0.5},
            ["Dense", "BatchNorm", "Activation", "Dropout", "Dense"],
        ),
        (
            {"hidden": [5], "batch_norm": "after", "dropout": 0.5, "input_dropout": 0.2},
            ["Dropout", "Dense", "Activation", "BatchNorm", "Dropout", "Dense"],
        ),
        (
            {"hidden": [5, 4], "dropout": [0.0, 0.21], "output": "linear", "output_dropout": 0.21},
            ["Dense", "Activation", "Dense", "Activation", "Dropout", "Dense", "Dropout"],
        ),
    ],
)
def test_layers_follow_keras_order(fields, kinds):
    assert _kinds(_net(**fields)) == kinds


def test_dense_layers_and_shapes():
    net = _net(hidden=[5, 4])
    assert [tuple(d.kernel.shape) for d in net.dense_layers] == [(6, 5), (5, 4), (4, 3)]
    assert (net.input_dim, net.outputs) == (6, 3)
    assert all(p.device.type == "cpu" for p in net.parameters())
    assert sum(p.numel() for p in net.parameters()) == (6 * 5 + 5) + (5 * 4 + 4) + (4 * 3 + 3)


def test_outputs_fall_back_to_the_spec():
    spec = MLPSpec(hidden=(4,), outputs=7)
    generator = torch.Generator().manual_seed(0)
    assert build_mlp(spec, 6, None, generator).outputs == 7
    assert build_mlp(spec, 6, 2, generator).outputs == 2  # the data's class count wins
    with pytest.raises(SpecError, match=r"^outputs: the output layer's size is unknown"):
        build_mlp(MLPSpec(), 6, None, generator)


# --- forward and predict ---


def test_forward_returns_logits_and_predict_the_softmax():
    net = _net(hidden=[5], activation="tanh")
    x = _x()
    d1, d2 = net.dense_layers
    logits = torch.tanh(x @ d1.kernel + d1.bias) @ d2.kernel + d2.bias
    torch.testing.assert_close(net(x), logits)
    probs = net.predict(x)
    torch.testing.assert_close(probs, torch.softmax(logits, dim=1))
    assert not probs.requires_grad
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(8))


def test_linear_output_predicts_the_logits():
    net = _net(hidden=[5], output="linear", outputs=1)
    x = _x()
    torch.testing.assert_close(net.predict(x), net(x).detach())
    assert net.predict(x).shape == (8, 1)


def test_predict_uses_inference_mode_and_restores_the_flag():
    net = _net(hidden=[5], batch_norm="before", dropout=0.5)
    x = _x()
    moving = net.layers[1].moving_mean.clone()
    net.train()
    first = net.predict(x)
    assert net.training
    torch.testing.assert_close(net.predict(x), first)  # no dropout, no batch statistics
    assert torch.equal(net.layers[1].moving_mean, moving)
    net.eval()
    net.predict(x)
    assert not net.training


def test_output_dropout_acts_on_logits_in_training_only():
    net = _net(hidden=[5], output="linear", output_dropout=0.5, input_dim=6, outputs=40)
    x = _x()
    net.train()
    logits = net(x)
    clean = net.predict(x)
    dropped = logits == 0
    assert 0.3 < dropped.double().mean() < 0.7
    torch.testing.assert_close(logits[~dropped], 2 * clean[~dropped])


# --- initialisation ---


def test_same_seed_same_weights_other_seed_other_weights():
    a, b, c = (_net(seed=s, hidden=[5, 4]) for s in (1, 1, 2))
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name])
    assert not torch.equal(a.dense_layers[0].kernel, c.dense_layers[0].kernel)


def test_initialisation_draws_kernel_then_bias_in_layer_order():
    fields = {
        "hidden": [5, 4],
        "kernel_initializer": [{"name": "random_normal", "stddev": 0.062}, "he_normal"],
        "bias_initializer": "glorot_uniform",
        "output_kernel_initializer": "lecun_uniform",
        "output_bias_initializer": {"name": "random_uniform"},
    }
    net = _net(seed=5, **fields)
    generator = torch.Generator().manual_seed(5)
    plan = [
        ((6, 5), {"name": "random_normal", "stddev": 0.062}, "glorot_uniform"),
        ((5, 4), "he_normal", "glorot_uniform"),
        ((4, 3), "lecun_uniform", "random_uniform"),
    ]
    for dense, ((fan_in, fan_out), kernel_init, bias_init) in zip(
        net.dense_layers, plan, strict=True
    ):
        kernel, bias = torch.empty(fan_in, fan_out), torch.empty(fan_out)
        initialize(kernel, INIT(kernel_init), fan_in, fan_out, generator)
        initialize(bias, INIT(bias_init), fan_out, fan_out, generator)  # Keras: (units, units)
        assert torch.equal(dense.kernel, kernel)
        assert torch.equal(dense.bias, bias)


def test_default_biases_are_zero_and_bias_fans_are_units():
    net = _net(hidden=[5])
    assert all(torch.equal(d.bias, torch.zeros_like(d.bias)) for d in net.dense_layers)
    wide = _net(hidden=[2000], bias_initializer="glorot_uniform", input_dim=2)
    bias = wide.dense_layers[0].bias
    limit = math.sqrt(6 / (2000 + 2000))
    assert bias.abs().max() <= limit and bias.abs().max() > 0.99 * limit


# --- penalties ---


def _fixed(net: MLPNet) -> MLPNet:
    """Kernels and biases set to known values: kernel i is all (i+1)·0.5, bias i all −(i+1)."""
    with torch.no_grad():
        for i, dense in enumerate(net.dense_layers):
            dense.kernel.fill_((i + 1) * 0.5)
            dense.bias.fill_(-(i + 1.0))
    return net


# 2-3-2 network: kernels (2, 3) of 0.5 and (3, 2) of 1.0; biases (3,) of -1 and (2,) of -2
@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, 0.0),
        ({"kernel_regularizer": {"l2": 0.01}}, 0.01 * 6 * 0.25),
        ({"kernel_regularizer": {"l1": 0.1}}, 0.1 * 6 * 0.5),
        ({"kernel_regularizer": {"l1": 0.1, "l2": 0.01}}, 0.1 * 3.0 + 0.01 * 1.5),
        (
            {"kernel_regularizer": {"l2": 0.01}, "output_kernel_regularizer": {"l2": 0.01}},
            0.01 * 1.5 + 0.01 * 6 * 1.0,
        ),
        (
            {"kernel_regularizer": {"l2": 0.01}, "bias_regularizer": {"l2": 0.1}},
            0.01 * 1.5 + 0.1 * 3 * 1.0,
        ),
        ({"output_bias_regularizer": {"l1": 0.5}}, 0.5 * 2 * 2.0),
        ({"kernel_regularizer": {"l1": 0.0, "l2": 0.0}}, 0.0),
    ],
)
def test_penalty_is_keras_l1_l2(fields, expected):
    net = _fixed(_net(hidden=[3], input_dim=2, outputs=2, **fields))
    penalty = net.penalty()
    assert penalty.shape == ()
    assert float(penalty.detach()) == pytest.approx(expected, rel=1e-6)


def test_penalty_per_layer_regularizers():
    net = _fixed(
        _net(
            hidden=[3, 3],
            input_dim=2,
            outputs=2,
            kernel_regularizer=[None, {"l2": 0.1}],
            bias_regularizer=[{"l1": 0.2}, None],
        )
    )
    # hidden kernel 2: 9 entries of 1.0; hidden bias 1: 3 entries of -1
    assert float(net.penalty().detach()) == pytest.approx(0.1 * 9 * 1.0 + 0.2 * 3 * 1.0, rel=1e-6)


def test_penalty_gradient_is_keras_l2_without_a_half():
    net = _fixed(_net(hidden=[3], input_dim=2, outputs=2, kernel_regularizer={"l2": 0.01}))
    net.penalty().backward()
    kernel = net.dense_layers[0]
    torch.testing.assert_close(kernel.kernel.grad, torch.full((2, 3), 2 * 0.01 * 0.5))
    assert net.dense_layers[1].kernel.grad is None


# --- dropout generator ---


def test_dropout_masks_follow_the_model_generator():
    net = _net(hidden=[50], dropout=0.5, input_dropout=0.2)
    x = _x()
    net.train()
    net.set_generator(torch.Generator().manual_seed(9))
    a = net(x)
    net.set_generator(torch.Generator().manual_seed(9))
    b = net(x)
    c = net(x)  # the stream moved on
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    dropouts = [layer for layer in net.layers if isinstance(layer, Dropout)]
    assert len(dropouts) == 2 and all(d.generator is net.generator for d in dropouts)


def test_batchnorm_models_update_moving_statistics_in_training():
    net = _net(hidden=[4], batch_norm="after")
    assert isinstance(net.layers[1], Activation) and isinstance(net.layers[2], BatchNorm)
    net.train()
    net(_x())
    assert not torch.equal(net.layers[2].moving_mean, torch.zeros(4))
    assert isinstance(net.layers[0], Dense)
