"""Keras optimisers in torch: Keras's defaults, Keras's update rules, one small function each.

Every rule below follows Keras 3 (`keras/src/optimizers/*.py`), which tf.keras 2.11+ shares;
the fixture `tests/fixtures/keras/optimizers.json` pins each one against real Keras. Where
tf.keras 2.0-2.10 (`optimizers.legacy`, the optimizer_v2 code) computed something else, the
spec has a `legacy` flag that selects the old rule:

- RMSprop without momentum: epsilon OUTSIDE the square root, `lr·g / (sqrt(ms) + ε)`;
- Adagrad: `lr·g / (sqrt(acc) + ε)` instead of `lr·g / sqrt(acc + ε)`;
- Nadam: momentum schedule `β1·(1 − ½·0.96^(0.004·t))` (Keras 2.2.4's `schedule_decay`)
  instead of `β1·(1 − ½·0.96^t)`.

None of torch's built-in optimisers is used: each differs from Keras somewhere (SGD keeps
lr outside its momentum buffer, Adam adds ε to the bias-corrected sqrt(v̂), RMSprop puts ε
outside the root, Adagrad starts its accumulator at 0, Adadelta and Nadam use other
defaults and schedules). Adam alone runs through torch's fused kernel, with ε rescaled per
step so that it computes Keras's rule (see `_fused_adam`).

`OPTIMIZERS` holds one row per optimiser (its spec, state names, state and update rule); the
single `KerasOptimizer`, the stacked optimiser and the compiled engine all read it. Each rule
is a function of tensors and settings; the hyperparameters may be Python floats or tensors
that broadcast against the weights (e.g. `[K, 1]` for K stacked models), so a stack runs
the same math.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import torch
from pydantic import BeforeValidator, Field, NonNegativeFloat, PositiveFloat, model_validator
from torch import Tensor

from mnistlab.spec import Spec

Scalar = float | torch.Tensor  # a hyperparameter: a float, or a tensor broadcasting to w
FUSED_DTYPES = (torch.float32, torch.float64)  # what torch's fused Adam kernel accepts here
FUSED_DEVICES = ("cpu", "cuda")
CLIPPING: tuple[str, ...] = ("clipnorm", "clipvalue", "global_clipnorm")  # Keras allows one

# --- specs ---

Decay = Annotated[float, Field(ge=0.0, lt=1.0)]  # a moving-average factor in [0, 1)


class _BaseOptimizerSpec(Spec):
    """Fields every Keras optimiser has: the rate and the (at most one) gradient clipping."""

    name: str
    learning_rate: PositiveFloat
    clipnorm: PositiveFloat | None = Field(
        default=None, description="clip each gradient tensor to this L2 norm (Keras clipnorm)"
    )
    clipvalue: PositiveFloat | None = Field(
        default=None, description="clip each gradient element to [-clipvalue, clipvalue]"
    )
    global_clipnorm: PositiveFloat | None = Field(
        default=None, description="clip all gradients together to this global L2 norm"
    )

    @model_validator(mode="after")
    def _one_clipping(self) -> _BaseOptimizerSpec:
        given = [k for k in CLIPPING if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(
                f"set at most one of clipnorm, clipvalue, global_clipnorm (Keras allows one),"
                f" got {' and '.join(given)}"
            )
        return self


class SGDSpec(_BaseOptimizerSpec):
    """Keras SGD: plain, with momentum, or Nesterov momentum."""

    name: Literal["sgd"] = "sgd"
    learning_rate: PositiveFloat = 0.01
    momentum: float = Field(default=0.0, ge=0.0, le=1.0)
    nesterov: bool = False


class _AdaptiveSpec(_BaseOptimizerSpec):
    """Fields of the per-weight adaptive rules: Keras's rate 0.001 and ε 1e-7."""

    learning_rate: PositiveFloat = 0.001
    epsilon: PositiveFloat = 1e-7


def _legacy(rule: str) -> Any:
    """The `legacy` switch: tf.keras <= 2.10's rule, `rule`, instead of Keras 3's."""
    return Field(default=False, description=f"tf.keras <= 2.10: {rule}")


class _MomentsSpec(_AdaptiveSpec):
    """Fields of the Adam family: two moving moments."""

    beta_1: Decay = 0.9
    beta_2: Decay = 0.999


class AdamSpec(_MomentsSpec):
    """Keras Adam (ε 1e-7 added to sqrt(v), not to sqrt(v̂) as in torch)."""

    name: Literal["adam"] = "adam"
    amsgrad: bool = False


class AdamWSpec(AdamSpec):
    """Keras 3 AdamW: Adam after a decoupled decay `w −= w·weight_decay·lr`."""

    name: Literal["adamw"] = "adamw"  # type: ignore[assignment]
    weight_decay: NonNegativeFloat = Field(
        default=0.004, description="per step, multiplied by the current learning rate"
    )


class NadamSpec(_MomentsSpec):
    """Keras Nadam: Adam with Nesterov momentum and Dozat's momentum schedule."""

    name: Literal["nadam"] = "nadam"
    legacy: bool = _legacy("Keras 2.2.4's schedule 0.96^(0.004·t), not 0.96^t")


class RMSpropSpec(_AdaptiveSpec):
    """Keras RMSprop: ε inside the square root; the momentum buffer holds lr·g/sqrt(...)."""

    name: Literal["rmsprop"] = "rmsprop"
    rho: Decay = 0.9
    momentum: Decay = 0.0
    centered: bool = False
    legacy: bool = _legacy("without momentum, ε outside the root: g/(sqrt(ms)+ε)")


class AdagradSpec(_AdaptiveSpec):
    """Keras Adagrad: the accumulator starts at 0.1."""

    name: Literal["adagrad"] = "adagrad"
    initial_accumulator_value: NonNegativeFloat = 0.1
    legacy: bool = _legacy("lr·g/(sqrt(acc)+ε), not lr·g/sqrt(acc+ε)")


class AdadeltaSpec(_AdaptiveSpec):
    """Keras Adadelta: Zeiler's rule, its step scaled by the learning rate."""

    name: Literal["adadelta"] = "adadelta"
    rho: Decay = 0.95


def _named(value: Any) -> Any:
    """Accept a bare name ("adam") for the defaults; check the name before the union does."""
    allowed = ", ".join(OPTIMIZER_NAMES)
    if isinstance(value, str):
        if value.lower() not in OPTIMIZER_NAMES:
            raise ValueError(f"unknown optimizer, expected one of {allowed}")  # + got 'x'
        return {"name": value.lower()}
    if not isinstance(value, dict):
        return value  # a spec instance, or something pydantic reports itself
    name = value.get("name")
    if name is None:
        raise ValueError(f"name is required: one of {allowed}")
    if not isinstance(name, str) or name.lower() not in OPTIMIZER_NAMES:
        raise ValueError(f"unknown optimizer {name!r}, expected one of {allowed}")
    return {**value, "name": name.lower()}


OptimizerSpec = Annotated[
    SGDSpec | AdamSpec | AdamWSpec | NadamSpec | RMSpropSpec | AdagradSpec | AdadeltaSpec,
    Field(discriminator="name"),
    BeforeValidator(_named),
]
"""Any optimiser spec, told apart by `name`; a bare name gives that optimiser's defaults."""


# --- the update rules (Keras's math; in place on w and the state tensors) ---


def sgd_update(
    w: torch.Tensor,
    g: torch.Tensor,
    velocity: torch.Tensor | None,
    *,
    lr: Scalar,
    momentum: Scalar,
    nesterov: bool,
) -> None:
    """Keras SGD: v = μ·v − lr·g; w += v (Nesterov: w += μ·v − lr·g); no momentum: w −= lr·g.

    The velocity holds lr·g, so a learning-rate change affects only new gradients.

    Parameters
    ----------
    w, g : Tensor, the weight (updated in place) and its gradient, same shape.
    velocity : Tensor like w (updated in place), or None when momentum is 0.
    lr, momentum : float, or Tensor broadcasting to w (e.g. (K, 1) for K stacked models).
    nesterov : use Nesterov momentum.
    """
    if velocity is None:
        if isinstance(lr, torch.Tensor):
            w.sub_(g * lr)
        else:
            w.add_(g, alpha=-lr)  # one kernel, no temporary: the lean step's hot path
        return
    velocity.mul_(momentum).sub_(g * lr)
    if nesterov:
        w.add_(velocity * momentum - g * lr)
    else:
        w.add_(velocity)


def adam_update(
    w: torch.Tensor,
    g: torch.Tensor,
    m: torch.Tensor,
    v: torch.Tensor,
    v_max: torch.Tensor | None,
    *,
    step: int,
    lr: Scalar,
    beta_1: Scalar,
    beta_2: Scalar,
    epsilon: Scalar,
) -> None:
    """Keras Adam: w −= lr_t·m / (sqrt(v) + ε), lr_t = lr·sqrt(1 − β2ᵗ)/(1 − β1ᵗ), t = `step`.

    Parameters
    ----------
    w, g : Tensor, the weight (updated in place) and its gradient, same shape.
    m, v : Tensor like w, first and second moments (updated in place).
    v_max : Tensor like w, AMSGrad's running maximum of v (replaces v in the denominator),
        or None.
    step : t, the number of this update (1 for the first).
    lr, beta_1, beta_2, epsilon : float, or Tensor broadcasting to w.
    """
    if _fused_adam((w, g, m, v), v_max, step, lr, (beta_1, beta_2, epsilon)):
        return
    alpha = lr * (1 - beta_2**step) ** 0.5 / (1 - beta_1**step)
    # lerp computes m + (1 − β)(g − m), Keras's exact form, without temporaries
    m.lerp_(g, 1 - beta_1)
    v.lerp_(g.square(), 1 - beta_2)
    if v_max is not None:
        torch.maximum(v_max, v, out=v_max)
        v = v_max
    denominator = v.sqrt().add_(epsilon)
    if isinstance(alpha, torch.Tensor):
        w.sub_(m.div(denominator).mul_(alpha))
    else:
        w.addcdiv_(m, denominator, value=-alpha)


def _fused_adam(
    tensors: tuple[Tensor, Tensor, Tensor, Tensor],
    v_max: Tensor | None,
    step: int,
    lr: Scalar,
    betas: tuple[Scalar, Scalar, Scalar],
) -> bool:
    """Keras's Adam step through torch's one-pass fused kernel, when it can express it.

    torch divides by sqrt(v)/sqrt(1 − β2ᵗ) + ε' where Keras divides by sqrt(v) + ε after
    scaling the rate by sqrt(1 − β2ᵗ): the two agree exactly in real arithmetic when
    ε' = ε/sqrt(1 − β2ᵗ) (float rounding differs in the last bits). The kernel reads and
    writes each weight once instead of six times (docs/performance.md). It takes one
    learning rate per call, so per-member rates of a stack, (M, 1) against (M, P)
    weights, go row by row; per-member betas or ε fall back to the tensor-op rule.

    Parameters
    ----------
    tensors : (w, g, m, v) as `adam_update` takes them; betas : (β1, β2, ε).

    Returns
    -------
    True when the update was done here; False leaves it to the caller.
    """
    w, g, m, v = tensors
    beta_1, beta_2, epsilon = betas
    if any(isinstance(h, torch.Tensor) for h in (beta_1, beta_2, epsilon)):
        return False
    if w.dtype not in FUSED_DTYPES or w.device.type not in FUSED_DEVICES:
        return False
    per_row = isinstance(lr, torch.Tensor)
    if per_row and (w.dim() != 2 or lr.shape != (w.shape[0], 1)):
        return False
    options = {
        "amsgrad": v_max is not None,
        "beta1": beta_1,
        "beta2": beta_2,
        "weight_decay": 0.0,
        "eps": epsilon / (1 - beta_2**step) ** 0.5,
        "maximize": False,
    }
    steps = [torch.full((), float(step), device=w.device)]
    if not per_row:
        torch._fused_adam_(
            [w], [g], [m], [v], [] if v_max is None else [v_max], steps, lr=lr, **options
        )
        return True
    for row in range(w.shape[0]):  # one call per member: the kernel has one rate per call
        maxima = [] if v_max is None else [v_max[row]]
        torch._fused_adam_(
            [w[row]], [g[row]], [m[row]], [v[row]], maxima, steps, lr=lr[row], **options
        )
    return True


def nadam_momentum(step: int, beta_1: Scalar, legacy: bool = False) -> Scalar:
    """Dozat's momentum schedule u_t = β1·(1 − ½·0.96^t) (legacy: 0.96^(0.004·t)).

    Parameters
    ----------
    step : t (1 for the first update).
    beta_1 : float, or Tensor.
    legacy : tf.keras <= 2.10 / Keras 2.2.4 exponent.

    Returns
    -------
    u_t, of beta_1's type.
    """
    return beta_1 * (1.0 - 0.5 * 0.96 ** ((0.004 if legacy else 1.0) * step))


def nadam_update(
    w: torch.Tensor,
    g: torch.Tensor,
    m: torch.Tensor,
    v: torch.Tensor,
    *,
    step: int,
    u_product: Scalar,
    lr: Scalar,
    beta_1: Scalar,
    beta_2: Scalar,
    epsilon: Scalar,
    legacy: bool = False,
) -> None:
    """Keras Nadam at step t: `u_product` = u_1·…·u_t (already including this step's u_t).

    m̂ = u_{t+1}·m/(1 − u_product·u_{t+1}) + (1 − u_t)·g/(1 − u_product), v̂ = v/(1 − β2ᵗ),
    w −= lr·m̂ / (sqrt(v̂) + ε).

    Parameters
    ----------
    w, g : Tensor, the weight (updated in place) and its gradient, same shape.
    m, v : Tensor like w, first and second moments (updated in place).
    step : t, the number of this update (1 for the first).
    u_product : float or Tensor, u_1·…·u_t (see `nadam_momentum`).
    lr, beta_1, beta_2, epsilon : float, or Tensor broadcasting to w.
    legacy : the tf.keras <= 2.10 momentum schedule.
    """
    u_t = nadam_momentum(step, beta_1, legacy)
    u_next = nadam_momentum(step + 1, beta_1, legacy)
    m.add_((g - m) * (1 - beta_1))
    v.add_((g * g - v) * (1 - beta_2))
    m_hat = u_next * m / (1 - u_product * u_next) + (1 - u_t) * g / (1 - u_product)
    v_hat = v / (1 - beta_2**step)
    w.sub_(m_hat * lr / (v_hat.sqrt() + epsilon))


def rmsprop_update(
    w: torch.Tensor,
    g: torch.Tensor,
    ms: torch.Tensor,
    mg: torch.Tensor | None,
    mom: torch.Tensor | None,
    *,
    lr: Scalar,
    rho: Scalar,
    momentum: Scalar,
    epsilon: Scalar,
    legacy: bool = False,
) -> None:
    """Keras RMSprop: ms = ρ·ms + (1−ρ)·g²; inc = lr·g / sqrt(ms − mg² + ε); w −= inc.

    `mg` (centered only) is the mean gradient, ρ·mg + (1−ρ)·g; with momentum the buffer
    holds mom = μ·mom + inc and w −= mom. `legacy` (tf.keras ≤ 2.10, no momentum only):
    inc = lr·g / (sqrt(ms − mg²) + ε).

    Parameters
    ----------
    w, g : Tensor, the weight (updated in place) and its gradient, same shape.
    ms : Tensor like w, the mean square (updated in place).
    mg : Tensor like w, the mean gradient (centered), or None.
    mom : Tensor like w, the momentum buffer (momentum > 0), or None.
    lr, rho, momentum, epsilon : float, or Tensor broadcasting to w.
    legacy : tf.keras <= 2.10's ε outside the root (only without momentum, as there).
    """
    ms.mul_(rho).add_(g * g * (1 - rho))
    denominator = ms
    if mg is not None:
        mg.mul_(rho).add_(g * (1 - rho))
        denominator = ms - mg * mg
    if legacy and mom is None:
        increment = lr * g / (denominator.sqrt() + epsilon)
    else:
        increment = lr * g / (denominator + epsilon).sqrt()
    if mom is None:
        w.sub_(increment)
    else:
        mom.mul_(momentum).add_(increment)
        w.sub_(mom)


def adagrad_update(
    w: torch.Tensor,
    g: torch.Tensor,
    acc: torch.Tensor,
    *,
    lr: Scalar,
    epsilon: Scalar,
    legacy: bool = False,
) -> None:
    """Keras Adagrad: acc += g²; w −= lr·g / sqrt(acc + ε) (legacy: / (sqrt(acc) + ε)).

    Parameters
    ----------
    w, g : Tensor, the weight (updated in place) and its gradient, same shape.
    acc : Tensor like w, the accumulator (starts at initial_accumulator_value).
    lr, epsilon : float, or Tensor broadcasting to w.
    legacy : tf.keras <= 2.10's ε outside the root.
    """
    acc.add_(g * g)
    denominator = acc.sqrt() + epsilon if legacy else (acc + epsilon).sqrt()
    w.sub_(lr * g / denominator)


def adadelta_update(
    w: torch.Tensor,
    g: torch.Tensor,
    acc_grad: torch.Tensor,
    acc_delta: torch.Tensor,
    *,
    lr: Scalar,
    rho: Scalar,
    epsilon: Scalar,
) -> None:
    """Keras Adadelta: Δ = −sqrt(E[Δ²] + ε)·g / sqrt(E[g²] + ε); w += lr·Δ.

    E[g²] = ρ·E[g²] + (1−ρ)·g² is updated before Δ, E[Δ²] = ρ·E[Δ²] + (1−ρ)·Δ² after it.

    Parameters
    ----------
    w, g : Tensor, the weight (updated in place) and its gradient, same shape.
    acc_grad, acc_delta : Tensor like w, E[g²] and E[Δ²] (updated in place).
    lr, rho, epsilon : float, or Tensor broadcasting to w.
    """
    acc_grad.mul_(rho).add_(g * g * (1 - rho))
    delta = -((acc_delta + epsilon).sqrt() * g) / (acc_grad + epsilon).sqrt()
    acc_delta.mul_(rho).add_(delta * delta * (1 - rho))
    w.add_(lr * delta)


def clip_gradients(
    grads: list[torch.Tensor],
    *,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
) -> list[torch.Tensor]:
    """Keras's gradient clipping (new tensors; at most one option is set).

    Parameters
    ----------
    grads : the gradients, one tensor per weight.
    clipnorm : each tensor becomes g·c / max(‖g‖, c).
    clipvalue : each element is clipped to [−c, c].
    global_clipnorm : all tensors are scaled by c·min(1/‖G‖, 1/c), ‖G‖ the norm of all of
        them together; a non-finite ‖G‖ makes every gradient NaN, as in Keras.

    Returns
    -------
    list of Tensor, the clipped gradients.
    """
    if clipnorm:
        return [
            g * clipnorm / torch.clamp(torch.linalg.vector_norm(g), min=clipnorm) for g in grads
        ]
    if global_clipnorm:
        norm = torch.stack([g.square().sum() for g in grads]).sum().sqrt()
        scale = global_clipnorm * torch.clamp(1.0 / norm, max=1.0 / global_clipnorm)
        scale = scale + (norm - norm)  # inf or NaN norm: NaN scale, as Keras
        return [g * scale for g in grads]
    if clipvalue:
        return [g.clamp(-clipvalue, clipvalue) for g in grads]
    return grads


# --- the table: one row per Keras optimiser ---

Settings = Mapping[str, Any]
"""An optimiser's settings at one step, by Keras name: its float hyperparameters (floats, or
(M, 1) tensors for M stacked members), its switches (bools) and its per-step counters."""


def _nonzero(value: Scalar) -> bool:
    """Whether a hyperparameter (a float, or per member a tensor) is non-zero anywhere."""
    if isinstance(value, Tensor):
        return bool(value.ne(0).any())
    return value != 0


@dataclass(frozen=True)
class OptimizerRule:
    """One Keras optimiser: its spec, its state (Keras's slot names), its update rule.

    `update(w, g, state, settings, step, lr)` changes w and the state in place; `step` is
    Keras's iteration count (1 for the first update) and `lr` a float or a (M, 1) Tensor.
    `begin_step(settings, step)` does the per-step work shared by all weights before any of
    them moves (Nadam's momentum product); `counters` are its starting values. The float
    fields of `spec` are the hyperparameters a stack may vary per member, its bool fields
    the switches every member must share.
    """

    spec: type[_BaseOptimizerSpec]
    state: tuple[str, ...]
    init_state: Callable[[Tensor, Settings], dict[str, Tensor]]
    update: Callable[[Tensor, Tensor, Mapping[str, Tensor], Settings, int, Scalar], None]
    begin_step: Callable[[dict[str, Any], int], None] | None = None
    counters: Mapping[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.model_fields["name"].default

    @property
    def hyperparameters(self) -> tuple[str, ...]:
        """The float fields besides the learning rate (the clipping bounds are optional)."""
        fields = self.spec.model_fields.items()
        return tuple(f for f, info in fields if info.annotation is float and f != "learning_rate")

    @property
    def switches(self) -> tuple[str, ...]:
        return tuple(f for f, info in self.spec.model_fields.items() if info.annotation is bool)

    def settings(self, spec: _BaseOptimizerSpec) -> dict[str, Any]:
        """`spec`'s hyperparameters and switches, and the counters at their start."""
        names = (*self.hyperparameters, *self.switches)
        return {**{f: getattr(spec, f) for f in names}, **self.counters}


def _pick(settings: Settings, *names: str) -> dict[str, Any]:
    """The named settings, as keyword arguments of an update rule."""
    return {name: settings[name] for name in names}


def _sgd_state(w: Tensor, h: Settings) -> dict[str, Tensor]:
    return {"momentum": torch.zeros_like(w)} if _nonzero(h["momentum"]) else {}


def _sgd_step(w: Tensor, g: Tensor, s: Mapping, h: Settings, step: int, lr: Scalar) -> None:
    sgd_update(w, g, s.get("momentum"), lr=lr, momentum=h["momentum"], nesterov=h["nesterov"])


def _adam_state(w: Tensor, h: Settings) -> dict[str, Tensor]:
    state = {"momentum": torch.zeros_like(w), "velocity": torch.zeros_like(w)}
    if h["amsgrad"]:
        state["velocity_hat"] = torch.zeros_like(w)
    return state


def _adam_step(w: Tensor, g: Tensor, s: Mapping, h: Settings, step: int, lr: Scalar) -> None:
    betas = _pick(h, "beta_1", "beta_2", "epsilon")
    adam_update(
        w, g, s["momentum"], s["velocity"], s.get("velocity_hat"), step=step, lr=lr, **betas
    )


def _adamw_step(w: Tensor, g: Tensor, s: Mapping, h: Settings, step: int, lr: Scalar) -> None:
    if _nonzero(h["weight_decay"]):  # Keras: the decoupled decay first, at the current rate
        w.sub_(w * h["weight_decay"] * lr)
    _adam_step(w, g, s, h, step, lr)


def _moments(w: Tensor, h: Settings) -> dict[str, Tensor]:
    return {"momentum": torch.zeros_like(w), "velocity": torch.zeros_like(w)}


def _nadam_begin(h: dict[str, Any], step: int) -> None:
    # Keras multiplies the product by u_t once per step, before any weight moves
    h["u_product"] = h["u_product"] * nadam_momentum(step, h["beta_1"], h["legacy"])


def _nadam_step(w: Tensor, g: Tensor, s: Mapping, h: Settings, step: int, lr: Scalar) -> None:
    settings = _pick(h, "u_product", "beta_1", "beta_2", "epsilon", "legacy")
    nadam_update(w, g, s["momentum"], s["velocity"], step=step, lr=lr, **settings)


def _rmsprop_state(w: Tensor, h: Settings) -> dict[str, Tensor]:
    state = {"velocity": torch.zeros_like(w)}
    if _nonzero(h["momentum"]):
        state["momentum"] = torch.zeros_like(w)
    if h["centered"]:
        state["average_gradient"] = torch.zeros_like(w)
    return state


def _rmsprop_step(w: Tensor, g: Tensor, s: Mapping, h: Settings, step: int, lr: Scalar) -> None:
    slots = s["velocity"], s.get("average_gradient"), s.get("momentum")
    rmsprop_update(w, g, *slots, lr=lr, **_pick(h, "rho", "momentum", "epsilon", "legacy"))


def _adagrad_state(w: Tensor, h: Settings) -> dict[str, Tensor]:
    return {"accumulator": torch.zeros_like(w).add_(h["initial_accumulator_value"])}


def _adagrad_step(w: Tensor, g: Tensor, s: Mapping, h: Settings, step: int, lr: Scalar) -> None:
    adagrad_update(w, g, s["accumulator"], lr=lr, epsilon=h["epsilon"], legacy=h["legacy"])


def _adadelta_state(w: Tensor, h: Settings) -> dict[str, Tensor]:
    return {"accumulated_grad": torch.zeros_like(w), "accumulated_delta_var": torch.zeros_like(w)}


def _adadelta_step(w: Tensor, g: Tensor, s: Mapping, h: Settings, step: int, lr: Scalar) -> None:
    adadelta_update(
        w,
        g,
        s["accumulated_grad"],
        s["accumulated_delta_var"],
        lr=lr,
        rho=h["rho"],
        epsilon=h["epsilon"],
    )


ADAM_SLOTS = ("momentum", "velocity", "velocity_hat")
OPTIMIZERS: dict[str, OptimizerRule] = {
    rule.name: rule
    for rule in (
        OptimizerRule(SGDSpec, ("momentum",), _sgd_state, _sgd_step),
        OptimizerRule(AdamSpec, ADAM_SLOTS, _adam_state, _adam_step),
        OptimizerRule(AdamWSpec, ADAM_SLOTS, _adam_state, _adamw_step),
        OptimizerRule(
            NadamSpec,
            ("momentum", "velocity"),
            _moments,
            _nadam_step,
            begin_step=_nadam_begin,
            counters={"u_product": 1.0},
        ),
        OptimizerRule(
            RMSpropSpec, ("velocity", "momentum", "average_gradient"), _rmsprop_state, _rmsprop_step
        ),
        OptimizerRule(AdagradSpec, ("accumulator",), _adagrad_state, _adagrad_step),
        OptimizerRule(
            AdadeltaSpec,
            ("accumulated_grad", "accumulated_delta_var"),
            _adadelta_state,
            _adadelta_step,
        ),
    )
}
"""Every Keras optimiser, by name: adding one means a spec class, in `OptimizerSpec`, and a row."""
OPTIMIZER_NAMES: tuple[str, ...] = tuple(OPTIMIZERS)


# --- the torch optimiser ---


class KerasOptimizer(torch.optim.Optimizer):
    """The Keras optimiser `spec` describes, over `params`, as a `torch.optim.Optimizer`.

    Each param group holds the row's settings under Keras's names, the learning rate as
    `"lr"` (a Python float the loop may overwrite before any step, for schedules) and
    `"step"`, the number of updates done, as Keras's `optimizer.iterations` (one count for
    the whole optimiser: a weight without a gradient is skipped, the count still advances).
    """

    def __init__(
        self, spec: OptimizerSpec, params: Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]]
    ) -> None:
        self.rule = OPTIMIZERS[spec.name]
        self.clip = {k: getattr(spec, k) for k in CLIPPING}
        defaults = {"lr": spec.learning_rate, "step": 0, **self.rule.settings(spec)}
        super().__init__(params, defaults)

    def state_of(self, p: Tensor) -> dict[str, Tensor]:
        """The state of weight `p`, created on first use as Keras builds its slots."""
        group = next(g for g in self.param_groups if any(q is p for q in g["params"]))
        return self._state(p, group)

    def _state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        state = self.state[p]
        if not state:
            state.update(self.rule.init_state(p, group))
        return state

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Apply one Keras update to every parameter that has a gradient.

        Parameters
        ----------
        closure : optional callable that re-evaluates the model and returns the loss.

        Returns
        -------
        the closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        todo = [
            (group, p) for group in self.param_groups for p in group["params"] if p.grad is not None
        ]
        if any(p.grad.is_sparse for _, p in todo):
            raise RuntimeError(f"Keras {self.rule.name} does not support sparse gradients")
        grads = clip_gradients([p.grad for _, p in todo], **self.clip)
        for group in self.param_groups:
            group["step"] += 1
            if self.rule.begin_step is not None:
                self.rule.begin_step(group, group["step"])
        for (group, p), g in zip(todo, grads, strict=True):
            self.rule.update(p, g, self._state(p, group), group, group["step"], group["lr"])
        return loss
