"""Model building blocks shared by every kind: initialisers, activations, regularisers.

Every spec is frozen and rejects unknown fields. Initialisers and activations are unions
told apart by `name`; a bare string (``"he_normal"``) stands for that variant with its
defaults. `_one_or_per_layer` makes a type that takes one value for every layer or a
tuple with one value per layer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Discriminator,
    Field,
    NonNegativeFloat,
    Tag,
    ValidationError,
    WrapValidator,
    model_validator,
)
from pydantic_core import InitErrorDetails

from mnistlab.spec import Spec

# --- initialisers ---


class GlorotUniform(Spec):
    """U(-l, l) with l = sqrt(6 / (fan_in + fan_out)): Keras's default Dense kernel."""

    name: Literal["glorot_uniform"] = "glorot_uniform"


class GlorotNormal(Spec):
    """Truncated normal (cut at 2 std), std = sqrt(2 / (fan_in + fan_out)) / 0.87962566."""

    name: Literal["glorot_normal"] = "glorot_normal"


class HeNormal(Spec):
    """Truncated normal (cut at 2 std), std = sqrt(2 / fan_in) / 0.87962566."""

    name: Literal["he_normal"] = "he_normal"


class HeUniform(Spec):
    """U(-l, l) with l = sqrt(6 / fan_in)."""

    name: Literal["he_uniform"] = "he_uniform"


class LecunNormal(Spec):
    """Truncated normal (cut at 2 std), std = sqrt(1 / fan_in) / 0.87962566."""

    name: Literal["lecun_normal"] = "lecun_normal"


class LecunUniform(Spec):
    """U(-l, l) with l = sqrt(3 / fan_in)."""

    name: Literal["lecun_uniform"] = "lecun_uniform"


class RandomNormal(Spec):
    """Plain (untruncated) normal N(mean, stddev²), Keras's RandomNormal."""

    name: Literal["random_normal"] = "random_normal"
    mean: float = 0.0
    stddev: NonNegativeFloat = 0.05


class RandomUniform(Spec):
    """U(minval, maxval), Keras's RandomUniform."""

    name: Literal["random_uniform"] = "random_uniform"
    minval: float = -0.05
    maxval: float = 0.05

    @model_validator(mode="after")
    def _ordered(self) -> RandomUniform:
        if self.minval > self.maxval:
            raise ValueError(f"minval {self.minval} must not exceed maxval {self.maxval}")
        return self


class TruncatedNormal(Spec):
    """N(mean, stddev²) redrawn outside mean ± 2·stddev (not rescaled), Keras's TruncatedNormal."""

    name: Literal["truncated_normal"] = "truncated_normal"
    mean: float = 0.0
    stddev: NonNegativeFloat = 0.05


class Zeros(Spec):
    """All zeros: Keras's default bias."""

    name: Literal["zeros"] = "zeros"


class Ones(Spec):
    """All ones."""

    name: Literal["ones"] = "ones"


class Constant(Spec):
    """Every entry set to `value`."""

    name: Literal["constant"] = "constant"
    value: float = 0.0


_INITIALIZERS = (
    GlorotUniform,
    GlorotNormal,
    HeNormal,
    HeUniform,
    LecunNormal,
    LecunUniform,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    Zeros,
    Ones,
    Constant,
)

# --- activations ---


class Linear(Spec):
    """Identity: Keras's `activation=None` / "linear"."""

    name: Literal["linear"] = "linear"


class Sigmoid(Spec):
    """1 / (1 + exp(-x))."""

    name: Literal["sigmoid"] = "sigmoid"


class Tanh(Spec):
    """Hyperbolic tangent."""

    name: Literal["tanh"] = "tanh"


class ReLU(Spec):
    """max(x, 0)."""

    name: Literal["relu"] = "relu"


class LeakyReLU(Spec):
    """x for x > 0, else negative_slope·x; 0.3 is Keras's LeakyReLU layer default (torch: 0.01)."""

    name: Literal["leaky_relu"] = "leaky_relu"
    negative_slope: NonNegativeFloat = 0.3


class ELU(Spec):
    """x for x > 0, else alpha·(exp(x) − 1)."""

    name: Literal["elu"] = "elu"
    alpha: float = 1.0


_ACTIVATIONS = (Linear, Sigmoid, Tanh, ReLU, LeakyReLU, ELU)


def _names(variants: tuple[type[Spec], ...]) -> tuple[str, ...]:
    """The `name` tag of each variant, in declaration order."""
    return tuple(v.model_fields["name"].default for v in variants)


def _by_name(kind: str, names: tuple[str, ...]) -> Callable[[Any], Any]:
    """A before-validator: a bare name becomes `{"name": ...}`; unknown names list the allowed."""
    allowed = ", ".join(names)

    def before(value: Any) -> Any:
        if isinstance(value, str):
            if value not in names:
                raise ValueError(f"unknown {kind}, expected one of: {allowed}")
            return {"name": value}
        if isinstance(value, dict):
            if "name" not in value:
                raise ValueError(f"{kind} needs a 'name', one of: {allowed}")
            if value["name"] not in names:
                raise ValueError(f"unknown {kind} {value['name']!r}, expected one of: {allowed}")
        elif not isinstance(value, Spec):
            raise ValueError(f"expected {kind} name or mapping, one of: {allowed}")
        return value

    return before


InitializerSpec = Annotated[
    Annotated[
        GlorotUniform
        | GlorotNormal
        | HeNormal
        | HeUniform
        | LecunNormal
        | LecunUniform
        | RandomNormal
        | RandomUniform
        | TruncatedNormal
        | Zeros
        | Ones
        | Constant,
        Field(discriminator="name"),
    ],
    BeforeValidator(_by_name("initializer", _names(_INITIALIZERS))),
]
"""A weight initialiser, by `name`; a bare string takes that initialiser's defaults."""

ActivationSpec = Annotated[
    Annotated[Linear | Sigmoid | Tanh | ReLU | LeakyReLU | ELU, Field(discriminator="name")],
    BeforeValidator(_by_name("activation", _names(_ACTIVATIONS))),
]
"""A hidden-layer activation, by `name`; a bare string takes that activation's defaults."""


# --- regularisers ---


class RegularizerSpec(Spec):
    """Keras's L1L2 regulariser: penalty = l1·Σ|w| + l2·Σw² (no ½, unlike tf.nn.l2_loss)."""

    l1: NonNegativeFloat = 0.0
    l2: NonNegativeFloat = 0.0

    @property
    def active(self) -> bool:
        """Whether the penalty can be non-zero."""
        return self.l1 > 0 or self.l2 > 0


# --- one value, or one per hidden layer ---

_ALL, _PER_LAYER = "all", "per_layer"


def _route(value: Any) -> str:
    """Lists and tuples are per-layer values; anything else applies to every layer."""
    return _PER_LAYER if isinstance(value, list | tuple) else _ALL


def _drop_route_tag(value: Any, handler: Callable[[Any], Any]) -> Any:
    """Validate; report errors as `dropout[1]`, not `dropout.per_layer[1]`."""
    try:
        return handler(value)
    except ValidationError as exc:
        raise _relocated(exc, _untagged) from None


def _relocated(
    exc: ValidationError, untag: Callable[[tuple[str | int, ...]], tuple[str | int, ...]]
) -> ValidationError:
    """The same errors with each `loc` passed through `untag` (itself when pydantic refuses)."""
    try:
        details = [
            InitErrorDetails(
                type=err["type"],
                loc=untag(err["loc"]),
                input=err["input"],
                **({"ctx": err["ctx"]} if "ctx" in err else {}),
            )
            for err in exc.errors(include_url=False)
        ]
        return ValidationError.from_exception_data(exc.title, details)
    except (KeyError, TypeError, ValueError):  # an error type pydantic cannot rebuild
        return exc


def drop_tags(tags: Sequence[str]) -> Callable[[Any, Callable[[Any], Any]], Any]:
    """A wrap validator reporting `model.hidden`, not `model.mlp.hidden`: leading `tags` go."""
    known = frozenset(tags)

    def untag(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
        while loc[:1] and loc[0] in known:
            loc = loc[1:]
        return loc

    def wrap(value: Any, handler: Callable[[Any], Any]) -> Any:
        try:
            return handler(value)
        except ValidationError as exc:
            raise _relocated(exc, untag) from None

    return wrap


def _untagged(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """`loc` without the leading routing tag."""
    return loc[1:] if loc[:1] in ((_ALL,), (_PER_LAYER,)) else loc


def _one_or_per_layer(item: Any) -> Any:
    """The type `item | tuple[item, ...]`, routed by the input's shape so errors stay short."""
    return Annotated[
        Annotated[item, Tag(_ALL)] | Annotated[tuple[item, ...], Tag(_PER_LAYER)],
        Discriminator(_route),
        WrapValidator(_drop_route_tag),
    ]


DropoutRate = Annotated[float, Field(ge=0.0, lt=1.0)]
"""A dropout rate: the fraction of units zeroed in training, in [0, 1)."""

PerLayerActivation = _one_or_per_layer(ActivationSpec)
PerLayerInitializer = _one_or_per_layer(InitializerSpec)
PerLayerRegularizer = _one_or_per_layer(RegularizerSpec | None)
PerLayerDropout = _one_or_per_layer(DropoutRate)
