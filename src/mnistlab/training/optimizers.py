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

The current learning rate lives in `param_groups[i]["lr"]` (a Python float) and may change
between steps. Each rule is a function of tensors and hyperparameters; the hyperparameters
may be Python floats or tensors that broadcast against the weights (e.g. `[K, 1]` for K
stacked models), so a stacked optimiser can reuse the same math.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import BeforeValidator, Field, NonNegativeFloat, PositiveFloat, model_validator

from mnistlab.spec import Spec

Scalar = float | torch.Tensor  # a hyperparameter: a float, or a tensor broadcasting to w
FUSED_DTYPES = (torch.float32, torch.float64)  # what torch's fused Adam kernel accepts here
FUSED_DEVICES = ("cpu", "cuda")

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
        given = [k for k in ("clipnorm", "clipvalue", "global_clipnorm") if getattr(self, k)]
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


class AdamSpec(_BaseOptimizerSpec):
    """Keras Adam (ε 1e-7 added to sqrt(v), not to sqrt(v̂) as in torch)."""

    name: Literal["adam"] = "adam"
    learning_rate: PositiveFloat = 0.001
    beta_1: Decay = 0.9
    beta_2: Decay = 0.999
    epsilon: PositiveFloat = 1e-7
    amsgrad: bool = False


class AdamWSpec(_BaseOptimizerSpec):
    """Keras 3 AdamW: Adam after a decoupled decay `w −= w·weight_decay·lr`."""

    name: Literal["adamw"] = "adamw"
    learning_rate: PositiveFloat = 0.001
    weight_decay: NonNegativeFloat = Field(
        default=0.004, description="per step, multiplied by the current learning rate"
    )
    beta_1: Decay = 0.9
    beta_2: Decay = 0.999
    epsilon: PositiveFloat = 1e-7
    amsgrad: bool = False


class NadamSpec(_BaseOptimizerSpec):
    """Keras Nadam: Adam with Nesterov momentum and Dozat's momentum schedule."""

    name: Literal["nadam"] = "nadam"
    learning_rate: PositiveFloat = 0.001
    beta_1: Decay = 0.9
    beta_2: Decay = 0.999
    epsilon: PositiveFloat = 1e-7
    legacy: bool = Field(
        default=False,
        description="tf.keras <= 2.10 / Keras 2.2.4 schedule: 0.96^(0.004·t), not 0.96^t",
    )


class RMSpropSpec(_BaseOptimizerSpec):
    """Keras RMSprop: ε inside the square root; the momentum buffer holds lr·g/sqrt(...)."""

    name: Literal["rmsprop"] = "rmsprop"
    learning_rate: PositiveFloat = 0.001
    rho: Decay = 0.9
    momentum: Decay = 0.0
    epsilon: PositiveFloat = 1e-7
    centered: bool = False
    legacy: bool = Field(
        default=False,
        description="tf.keras <= 2.10: without momentum, ε outside the root: g/(sqrt(ms)+ε)",
    )


class AdagradSpec(_BaseOptimizerSpec):
    """Keras Adagrad: the accumulator starts at 0.1."""

    name: Literal["adagrad"] = "adagrad"
    learning_rate: PositiveFloat = 0.001
    initial_accumulator_value: NonNegativeFloat = 0.1
    epsilon: PositiveFloat = 1e-7
    legacy: bool = Field(
        default=False, description="tf.keras <= 2.10: lr·g/(sqrt(acc)+ε), not lr·g/sqrt(acc+ε)"
    )


class AdadeltaSpec(_BaseOptimizerSpec):
    """Keras Adadelta: Zeiler's rule, its step scaled by the learning rate."""

    name: Literal["adadelta"] = "adadelta"
    learning_rate: PositiveFloat = 0.001
    rho: Decay = 0.95
    epsilon: PositiveFloat = 1e-7


_SPECS: tuple[type[_BaseOptimizerSpec], ...] = (
    SGDSpec,
    AdamSpec,
    AdamWSpec,
    NadamSpec,
    RMSpropSpec,
    AdagradSpec,
    AdadeltaSpec,
)
OPTIMIZER_NAMES: tuple[str, ...] = tuple(cls.model_fields["name"].default for cls in _SPECS)


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
    if _fused_adam(w, g, m, v, v_max, step, lr, beta_1, beta_2, epsilon):
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
    w: torch.Tensor,
    g: torch.Tensor,
    m: torch.Tensor,
    v: torch.Tensor,
    v_max: torch.Tensor | None,
    step: int,
    lr: Scalar,
    beta_1: Scalar,
    beta_2: Scalar,
    epsilon: Scalar,
) -> bool:
    """Keras's Adam step through torch's one-pass fused kernel, when it can express it.

    torch divides by sqrt(v)/sqrt(1 − β2ᵗ) + ε' where Keras divides by sqrt(v) + ε after
    scaling the rate by sqrt(1 − β2ᵗ): the two agree exactly in real arithmetic when
    ε' = ε/sqrt(1 − β2ᵗ) (float rounding differs in the last bits). The kernel reads and
    writes each weight once instead of six times (docs/performance.md). It takes one
    learning rate per call, so per-member rates of a stack, (M, 1) against (M, P)
    weights, go row by row; per-member betas or ε fall back to the tensor-op rule.

    Returns
    -------
    True when the update was done here; False leaves it to the caller.
    """
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


# --- torch.optim.Optimizer subclasses ---


class KerasOptimizer(torch.optim.Optimizer):
    """Common part of the Keras optimisers: clipping, weight decay, the iteration count.

    Each param group holds its hyperparameters under Keras's names, except the learning
    rate, `"lr"`. `group["step"]` counts the updates done, as Keras's `optimizer.iterations`
    (one count for the whole optimiser: a weight without a gradient is skipped, the count
    still advances). Subclasses define `_init_state` and `_update`.
    """

    _clipping: ClassVar[tuple[str, ...]] = ("clipnorm", "clipvalue", "global_clipnorm")

    def __init__(
        self, params: Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]], **defaults: Any
    ) -> None:
        clip = {k: defaults.pop(k, None) for k in self._clipping}
        if sum(v is not None for v in clip.values()) > 1:
            raise ValueError("set at most one of clipnorm, clipvalue, global_clipnorm")
        self.clip = clip
        defaults.setdefault("weight_decay", None)
        super().__init__(params, {**defaults, "step": 0})

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _update(self, p: torch.Tensor, g: torch.Tensor, state: dict, group: dict) -> None:
        raise NotImplementedError

    def _begin_step(self, group: dict[str, Any]) -> None:
        """Per-group work before the weights are updated (Nadam's momentum product)."""

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
            raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
        grads = clip_gradients([p.grad for _, p in todo], **self.clip)
        for group in self.param_groups:
            group["step"] += 1
            self._begin_step(group)
        for (group, p), g in zip(todo, grads, strict=True):
            state = self.state[p]
            if not state:
                state.update(self._init_state(p, group))
            if group["weight_decay"]:
                # Keras applies the decoupled decay before the update, at the current rate
                p.sub_(p * group["weight_decay"] * group["lr"])
            self._update(p, g, state, group)
        return loss


class SGD(KerasOptimizer):
    """Keras SGD (velocity v = μ·v − lr·g: lr lives inside the buffer)."""

    def __init__(
        self,
        params: Iterable,
        lr: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(params, lr=lr, momentum=momentum, nesterov=nesterov, **options)

    def _init_state(self, p: torch.Tensor, group: dict) -> dict:
        return {"momentum": torch.zeros_like(p)} if group["momentum"] != 0 else {}

    def _update(self, p: torch.Tensor, g: torch.Tensor, state: dict, group: dict) -> None:
        sgd_update(
            p,
            g,
            state.get("momentum"),
            lr=group["lr"],
            momentum=group["momentum"],
            nesterov=group["nesterov"],
        )


class Adam(KerasOptimizer):
    """Keras Adam, AMSGrad, and (with `weight_decay`) Keras 3 AdamW."""

    def __init__(
        self,
        params: Iterable,
        lr: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(
            params, lr=lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, amsgrad=amsgrad, **options
        )

    def _init_state(self, p: torch.Tensor, group: dict) -> dict:
        state = {"momentum": torch.zeros_like(p), "velocity": torch.zeros_like(p)}
        if group["amsgrad"]:
            state["velocity_hat"] = torch.zeros_like(p)
        return state

    def _update(self, p: torch.Tensor, g: torch.Tensor, state: dict, group: dict) -> None:
        adam_update(
            p,
            g,
            state["momentum"],
            state["velocity"],
            state.get("velocity_hat"),
            step=group["step"],
            lr=group["lr"],
            beta_1=group["beta_1"],
            beta_2=group["beta_2"],
            epsilon=group["epsilon"],
        )


class Nadam(KerasOptimizer):
    """Keras Nadam; `group["u_product"]` is the product of the momentum schedule so far."""

    def __init__(
        self,
        params: Iterable,
        lr: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        legacy: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            legacy=legacy,
            u_product=1.0,
            **options,
        )

    def _begin_step(self, group: dict) -> None:
        # Keras multiplies the product by u_t once per step, before any weight moves
        group["u_product"] *= nadam_momentum(group["step"], group["beta_1"], group["legacy"])

    def _init_state(self, p: torch.Tensor, group: dict) -> dict:
        return {"momentum": torch.zeros_like(p), "velocity": torch.zeros_like(p)}

    def _update(self, p: torch.Tensor, g: torch.Tensor, state: dict, group: dict) -> None:
        nadam_update(
            p,
            g,
            state["momentum"],
            state["velocity"],
            step=group["step"],
            u_product=group["u_product"],
            lr=group["lr"],
            beta_1=group["beta_1"],
            beta_2=group["beta_2"],
            epsilon=group["epsilon"],
            legacy=group["legacy"],
        )


class RMSprop(KerasOptimizer):
    """Keras RMSprop, plain, centered and/or with momentum."""

    def __init__(
        self,
        params: Iterable,
        lr: float = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        legacy: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            rho=rho,
            momentum=momentum,
            epsilon=epsilon,
            centered=centered,
            legacy=legacy,
            **options,
        )

    def _init_state(self, p: torch.Tensor, group: dict) -> dict:
        state = {"velocity": torch.zeros_like(p)}
        if group["momentum"] > 0:
            state["momentum"] = torch.zeros_like(p)
        if group["centered"]:
            state["average_gradient"] = torch.zeros_like(p)
        return state

    def _update(self, p: torch.Tensor, g: torch.Tensor, state: dict, group: dict) -> None:
        rmsprop_update(
            p,
            g,
            state["velocity"],
            state.get("average_gradient"),
            state.get("momentum"),
            lr=group["lr"],
            rho=group["rho"],
            momentum=group["momentum"],
            epsilon=group["epsilon"],
            legacy=group["legacy"],
        )


class Adagrad(KerasOptimizer):
    """Keras Adagrad (accumulator starts at `initial_accumulator_value`, 0.1)."""

    def __init__(
        self,
        params: Iterable,
        lr: float = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        legacy: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            initial_accumulator_value=initial_accumulator_value,
            epsilon=epsilon,
            legacy=legacy,
            **options,
        )

    def _init_state(self, p: torch.Tensor, group: dict) -> dict:
        return {"accumulator": torch.full_like(p, group["initial_accumulator_value"])}

    def _update(self, p: torch.Tensor, g: torch.Tensor, state: dict, group: dict) -> None:
        adagrad_update(
            p,
            g,
            state["accumulator"],
            lr=group["lr"],
            epsilon=group["epsilon"],
            legacy=group["legacy"],
        )


class Adadelta(KerasOptimizer):
    """Keras Adadelta (lr 0.001 by default: the step is scaled by the learning rate)."""

    def __init__(
        self,
        params: Iterable,
        lr: float = 0.001,
        rho: float = 0.95,
        epsilon: float = 1e-7,
        **options: Any,
    ) -> None:
        super().__init__(params, lr=lr, rho=rho, epsilon=epsilon, **options)

    def _init_state(self, p: torch.Tensor, group: dict) -> dict:
        return {
            "accumulated_grad": torch.zeros_like(p),
            "accumulated_delta_var": torch.zeros_like(p),
        }

    def _update(self, p: torch.Tensor, g: torch.Tensor, state: dict, group: dict) -> None:
        adadelta_update(
            p,
            g,
            state["accumulated_grad"],
            state["accumulated_delta_var"],
            lr=group["lr"],
            rho=group["rho"],
            epsilon=group["epsilon"],
        )


# --- factory ---


def make_optimizer(
    spec: OptimizerSpec, params: Iterable[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    """Build the Keras optimiser that `spec` describes over `params`.

    Parameters
    ----------
    spec : a validated optimiser spec (`SGDSpec`, `AdamSpec`, ...).
    params : the model's parameters (or torch param-group dicts).

    Returns
    -------
    torch.optim.Optimizer whose `param_groups[i]["lr"]` is the current learning rate; the
    training loop may overwrite it before any step (schedules).
    """
    fields = spec.model_dump(exclude={"name", "learning_rate"})
    lr = spec.learning_rate
    if isinstance(spec, SGDSpec):
        return SGD(params, lr=lr, **fields)
    if isinstance(spec, AdamSpec | AdamWSpec):
        return Adam(params, lr=lr, **fields)
    if isinstance(spec, NadamSpec):
        return Nadam(params, lr=lr, **fields)
    if isinstance(spec, RMSpropSpec):
        return RMSprop(params, lr=lr, **fields)
    if isinstance(spec, AdagradSpec):
        return Adagrad(params, lr=lr, **fields)
    if isinstance(spec, AdadeltaSpec):
        return Adadelta(params, lr=lr, **fields)
    raise TypeError(f"not an optimizer spec: {spec!r}")
