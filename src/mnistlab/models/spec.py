"""Model specifications: the MLP, and `ModelSpec`, the union of every model kind by `kind`.

Per-layer options of `MLPSpec` take one value for every hidden layer or a tuple with one
value per hidden layer; `MLPSpec.hidden_layers()` resolves them. The building blocks
(initialisers, activations, regularisers) live in `models.components` and are re-exported
here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationInfo,
    WrapValidator,
    field_validator,
)

from mnistlab.models.classic import ESTIMATOR_NAMES, NumpySpec, SklearnSpec
from mnistlab.models.cnn_spec import CNNSpec
from mnistlab.models.components import (
    ELU,
    ActivationSpec,
    Constant,
    DropoutRate,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    InitializerSpec,
    LeakyReLU,
    LecunNormal,
    LecunUniform,
    Linear,
    Ones,
    PerLayerActivation,
    PerLayerDropout,
    PerLayerInitializer,
    PerLayerRegularizer,
    RandomNormal,
    RandomUniform,
    RegularizerSpec,
    ReLU,
    Sigmoid,
    Tanh,
    TruncatedNormal,
    Zeros,
    drop_tags,
)
from mnistlab.spec import Spec

__all__ = [
    "ELU",
    "ActivationSpec",
    "CNNSpec",
    "Constant",
    "DropoutRate",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "HiddenLayer",
    "InitializerSpec",
    "LeakyReLU",
    "LecunNormal",
    "LecunUniform",
    "Linear",
    "MLPSpec",
    "ModelSpec",
    "Ones",
    "RandomNormal",
    "RandomUniform",
    "ReLU",
    "RegularizerSpec",
    "Sigmoid",
    "Tanh",
    "TruncatedNormal",
    "Zeros",
]

# --- the MLP ---


@dataclass(frozen=True)
class HiddenLayer:
    """One hidden layer of an `MLPSpec` with every per-layer option resolved."""

    units: int
    activation: ActivationSpec
    kernel_initializer: InitializerSpec
    bias_initializer: InitializerSpec
    kernel_regularizer: RegularizerSpec | None
    bias_regularizer: RegularizerSpec | None
    dropout: float


HIDDEN_LAYER_FIELDS = (  # settings an MLP gives each hidden layer (one value, or one each)
    "activation",
    "kernel_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "bias_regularizer",
    "dropout",
)


class MLPSpec(Spec):
    """A Keras Sequential of Dense layers: hidden layers, then one output layer.

    Each hidden layer is Dense → activation, or with `batch_norm` "before"
    Dense → BatchNormalization → Activation, or "after" Dense → activation →
    BatchNormalization; then Dropout when its rate is > 0. Per-layer fields take one
    value for every hidden layer or a tuple of `len(hidden)` values.
    """

    kind: Literal["mlp"] = "mlp"
    hidden: tuple[PositiveInt, ...] = Field(
        (128,), description="units of each hidden layer; empty = softmax regression"
    )
    activation: PerLayerActivation = Field(
        ReLU(), description="hidden-layer activation: one for all, or one per hidden layer"
    )
    output: Literal["softmax", "linear"] = Field(
        "softmax", description="output activation; the loss always uses the pre-activation"
    )
    outputs: PositiveInt | None = Field(
        None, description="output units; None = the data's class count, given at build time"
    )
    kernel_initializer: PerLayerInitializer = GlorotUniform()
    bias_initializer: PerLayerInitializer = Zeros()
    output_kernel_initializer: InitializerSpec = GlorotUniform()
    output_bias_initializer: InitializerSpec = Zeros()
    kernel_regularizer: PerLayerRegularizer = Field(
        None, description="hidden kernels' penalty, added to the loss (Keras: l1·Σ|w| + l2·Σw²)"
    )
    bias_regularizer: PerLayerRegularizer = None
    output_kernel_regularizer: RegularizerSpec | None = None
    output_bias_regularizer: RegularizerSpec | None = None
    batch_norm: Literal["none", "before", "after"] = Field(
        "none", description="before: Dense → BN → activation; after: Dense → activation → BN"
    )
    batch_norm_momentum: float = Field(
        0.99, ge=0.0, le=1.0, description="share of the moving statistics kept per batch (Keras)"
    )
    batch_norm_epsilon: PositiveFloat = Field(1e-3, description="added to the variance")
    dropout: PerLayerDropout = Field(
        0.0, description="rate after each hidden layer (after its BN); 0 = none there"
    )
    input_dropout: DropoutRate = Field(0.0, description="rate applied to the inputs")
    output_dropout: DropoutRate = Field(
        0.0, description="rate on the output logits in training; output 'linear' only"
    )

    @field_validator(*HIDDEN_LAYER_FIELDS)
    @classmethod
    def _one_per_hidden_layer(cls, value: Any, info: ValidationInfo) -> Any:
        hidden = info.data.get("hidden")
        if isinstance(value, tuple) and hidden is not None and len(value) != len(hidden):
            raise ValueError(
                f"needs one entry per hidden layer: {len(value)} given "
                f"for {len(hidden)} hidden layers {list(hidden)}"
            )
        return value

    @field_validator("output_dropout")
    @classmethod
    def _logits_only(cls, value: float, info: ValidationInfo) -> float:
        output = info.data.get("output")
        if value > 0 and output is not None and output != "linear":
            raise ValueError(
                f"dropout on the output needs output 'linear' (it acts on the logits), "
                f"not {output!r}"
            )
        return value

    def hidden_layers(self) -> tuple[HiddenLayer, ...]:
        """Resolve the per-layer fields into one record per hidden layer.

        Returns
        -------
        tuple of HiddenLayer, length `len(hidden)`, in input-to-output order.
        """

        def pick(value: Any, i: int) -> Any:
            return value[i] if isinstance(value, tuple) else value

        return tuple(
            HiddenLayer(
                units=units,
                activation=pick(self.activation, i),
                kernel_initializer=pick(self.kernel_initializer, i),
                bias_initializer=pick(self.bias_initializer, i),
                kernel_regularizer=pick(self.kernel_regularizer, i),
                bias_regularizer=pick(self.bias_regularizer, i),
                dropout=pick(self.dropout, i),
            )
            for i, units in enumerate(self.hidden)
        )


# --- every kind ---

DEFAULT_KIND = "mlp"


def _default_kind(value: Any) -> Any:
    """A model mapping without `kind` is an MLP, so study files written before kinds still load."""
    if isinstance(value, dict) and "kind" not in value:
        return {"kind": DEFAULT_KIND, **value}
    return value


_TAGS = ("mlp", "cnn", "numpy", "sklearn", *ESTIMATOR_NAMES)  # union tags, left out of error paths

ModelSpec = Annotated[
    Annotated[MLPSpec | CNNSpec | NumpySpec | SklearnSpec, Field(discriminator="kind")],
    BeforeValidator(_default_kind),
    WrapValidator(drop_tags(_TAGS)),
]
"""A model of any kind, told apart by `kind` ("mlp" when absent)."""
