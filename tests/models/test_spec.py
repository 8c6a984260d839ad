"""MLPSpec and its parts: Keras defaults, bare names, per-layer values and one-line errors."""

import pytest
from pydantic import TypeAdapter, ValidationError

from mnistlab.errors import SpecError
from mnistlab.models.spec import (
    ActivationSpec,
    InitializerSpec,
    MLPSpec,
    ModelSpec,
    RegularizerSpec,
)
from mnistlab.spec import parse_spec

INITIALIZERS = TypeAdapter(InitializerSpec)
ACTIVATIONS = TypeAdapter(ActivationSpec)


def _error(data: dict) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(MLPSpec, data, "study.yaml")
    return str(info.value)


# --- defaults ---


def test_defaults_are_keras_dense_defaults():
    spec = MLPSpec()
    assert spec.kind == "mlp"
    assert spec.hidden == (128,)
    assert spec.activation.name == "relu"
    assert spec.output == "softmax" and spec.outputs is None
    assert spec.kernel_initializer.name == "glorot_uniform"
    assert spec.bias_initializer.name == "zeros"
    assert spec.output_kernel_initializer.name == "glorot_uniform"
    assert spec.output_bias_initializer.name == "zeros"
    assert spec.kernel_regularizer is None and spec.output_kernel_regularizer is None
    assert (spec.batch_norm, spec.batch_norm_momentum, spec.batch_norm_epsilon) == (
        "none",
        0.99,
        1e-3,
    )
    assert (spec.dropout, spec.input_dropout, spec.output_dropout) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("random_normal", {"mean": 0.0, "stddev": 0.05}),
        ("random_uniform", {"minval": -0.05, "maxval": 0.05}),
        ("truncated_normal", {"mean": 0.0, "stddev": 0.05}),
        ("constant", {"value": 0.0}),
    ],
)
def test_bare_initializer_name_takes_keras_defaults(name, fields):
    spec = INITIALIZERS.validate_python(name)
    assert spec.model_dump() == {"name": name, **fields}


def test_activation_defaults_follow_keras_layers():
    assert ACTIVATIONS.validate_python("leaky_relu").negative_slope == 0.3  # torch: 0.01
    assert ACTIVATIONS.validate_python("elu").alpha == 1.0
    assert ACTIVATIONS.validate_python(
        {"name": "leaky_relu", "negative_slope": 0.1}
    ).model_dump() == {
        "name": "leaky_relu",
        "negative_slope": 0.1,
    }


@pytest.mark.parametrize(
    "name",
    [
        "glorot_uniform",
        "glorot_normal",
        "he_normal",
        "he_uniform",
        "lecun_normal",
        "lecun_uniform",
        "random_normal",
        "random_uniform",
        "truncated_normal",
        "zeros",
        "ones",
        "constant",
    ],
)
def test_every_initializer_name_validates_from_string_and_mapping(name):
    assert INITIALIZERS.validate_python(name) == INITIALIZERS.validate_python({"name": name})


def test_spec_round_trips_through_its_dump():
    spec = parse_spec(
        MLPSpec,
        {
            "hidden": [50, 30],
            "activation": ["relu", {"name": "leaky_relu", "negative_slope": 0.2}],
            "output": "linear",
            "kernel_initializer": [{"name": "random_normal", "stddev": 0.062}, "he_normal"],
            "kernel_regularizer": [{"l2": 0.01}, None],
            "dropout": [0.21, 0.0],
            "output_dropout": 0.21,
        },
    )
    assert MLPSpec.model_validate(spec.model_dump()) == spec
    assert MLPSpec.model_validate_json(spec.model_dump_json()) == spec


def test_spec_is_frozen():
    with pytest.raises(ValidationError):
        MLPSpec().hidden = (4,)


# --- per-layer values ---


def test_hidden_layers_resolves_shared_and_per_layer_values():
    spec = MLPSpec(
        hidden=(512, 256, 64),
        activation="sigmoid",
        kernel_initializer=(
            {"name": "random_normal", "stddev": 0.039},
            {"name": "random_normal", "stddev": 0.051},
            {"name": "random_normal", "stddev": 0.079},
        ),
        kernel_regularizer={"l2": 0.01},
        bias_regularizer=(None, {"l1": 0.1}, None),
        dropout=(0.5, 0.0, 0.25),
    )
    layers = spec.hidden_layers()
    assert [layer.units for layer in layers] == [512, 256, 64]
    assert [layer.activation.name for layer in layers] == ["sigmoid"] * 3
    assert [layer.kernel_initializer.stddev for layer in layers] == [0.039, 0.051, 0.079]
    assert [layer.bias_initializer.name for layer in layers] == ["zeros"] * 3
    assert [layer.kernel_regularizer for layer in layers] == [RegularizerSpec(l2=0.01)] * 3
    assert [layer.bias_regularizer for layer in layers] == [None, RegularizerSpec(l1=0.1), None]
    assert [layer.dropout for layer in layers] == [0.5, 0.0, 0.25]


def test_softmax_regression_has_no_hidden_layers():
    spec = MLPSpec(hidden=(), activation=())
    assert spec.hidden_layers() == ()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("activation", ["relu"]),
        ("kernel_initializer", ["he_normal", "he_normal", "he_normal"]),
        ("bias_initializer", ["zeros"]),
        ("kernel_regularizer", [None]),
        ("bias_regularizer", [None, None, None]),
        ("dropout", [0.1, 0.2, 0.3]),
    ],
)
def test_per_layer_tuple_must_match_hidden(field, value):
    message = _error({"hidden": [4, 5], field: value})
    assert message == (
        f"study.yaml: {field}: needs one entry per hidden layer: "
        f"{len(value)} given for 2 hidden layers [4, 5]"
    )


# --- errors ---


def test_unknown_activation_lists_the_allowed_names():
    assert _error({"activation": "swish"}) == (
        "study.yaml: activation: unknown activation, expected one of: "
        "linear, sigmoid, tanh, relu, leaky_relu, elu, got 'swish'"
    )


def test_unknown_initializer_in_a_mapping_is_named():
    message = _error({"kernel_initializer": {"name": "orthogonal"}})
    assert message.startswith("study.yaml: kernel_initializer: unknown initializer 'orthogonal'")
    assert "glorot_uniform, glorot_normal, he_normal, he_uniform, lecun_normal" in message
    assert message.endswith("random_uniform, truncated_normal, zeros, ones, constant")


def test_error_in_a_per_layer_entry_points_at_its_index():
    message = _error({"hidden": [4, 5], "activation": ["relu", "swish"]})
    assert message.startswith("study.yaml: activation[1]: unknown activation, expected one of")
    assert _error({"hidden": [4, 5], "dropout": [0.2, 1.0]}) == (
        "study.yaml: dropout[1]: Input should be less than 1, got 1.0"
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"dropout": 1.0}, "dropout: Input should be less than 1, got 1.0"),
        ({"input_dropout": -0.1}, "input_dropout: Input should be greater than or equal to 0"),
        ({"hidden": [0]}, "hidden[0]: Input should be greater than 0, got 0"),
        ({"kernel_regularizer": {"l2": -1}}, "kernel_regularizer.l2: Input should be greater"),
        (
            {"kernel_regularizer": {"l3": 1}},
            "kernel_regularizer.l3: Extra inputs are not permitted",
        ),
        (
            {"kernel_initializer": {"name": "random_normal", "stddev": -1}},
            "kernel_initializer.random_normal.stddev: Input should be greater than or equal to 0",
        ),
        (
            {"kernel_initializer": {"name": "random_uniform", "minval": 1, "maxval": 0}},
            "kernel_initializer.random_uniform: minval 1.0 must not exceed maxval 0.0",
        ),
        ({"batch_norm": "middle"}, "batch_norm: Input should be 'none', 'before' or 'after'"),
        ({"widths": [4]}, "widths: Extra inputs are not permitted"),
    ],
)
def test_messages_name_the_field(data, expected):
    assert _error(data).startswith(f"study.yaml: {expected}")


def test_output_dropout_needs_a_linear_output():
    assert _error({"output_dropout": 0.21}) == (
        "study.yaml: output_dropout: dropout on the output needs output 'linear' "
        "(it acts on the logits), not 'softmax', got 0.21"
    )
    assert parse_spec(MLPSpec, {"output": "linear", "output_dropout": 0.21}).output_dropout == 0.21


# --- model kinds ---

MODELS = TypeAdapter(ModelSpec)


def test_a_model_without_kind_is_an_mlp():
    spec = MODELS.validate_python({"hidden": [7]})
    assert isinstance(spec, MLPSpec)
    assert spec.hidden == (7,)
    assert MODELS.validate_python({"kind": "mlp", "hidden": [7]}) == spec


def test_an_unknown_kind_is_named():
    with pytest.raises(ValidationError) as info:
        MODELS.validate_python({"kind": "transformer"})
    assert "transformer" in str(info.value)
    assert "'mlp'" in str(info.value)
