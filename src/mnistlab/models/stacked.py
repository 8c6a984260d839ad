"""Stacked MLPs: M independent MLPNets of one architecture run as one batched module.

`stack_models(nets)` copies M initialised `MLPNet`s into one `StackedMLP`. Its weights live
in one flat Parameter of shape (M, P), one row per member, so an optimiser updates the whole
stack with one call per rule; every Dense kernel is a (M, in, out) view of it. Members may
differ in per-model scalars (dropout rates, regulariser weights, BatchNorm momentum and
epsilon) and in how they were initialised, never in architecture (`stack_conflicts`).

Each member computes what its own `MLPNet` computes: Keras BatchNorm with its own statistics
and momentum, dropout masks drawn from its own generator in the order `MLPNet` draws them.
Scalars that every member shares stay Python floats, so the stacked arithmetic is the
single-model arithmetic; only the matrix products (one GEMM per distinct batch when members
share rows, `baddbmm` when every member has its own) and reductions may round differently,
at float32 precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from mnistlab.errors import SpecError
from mnistlab.models.layers import BatchNorm, Dense, activation_function, dropout_mask
from mnistlab.models.mlp import MLPNet
from mnistlab.models.spec import MLPSpec, ModelSpec

# --- members that share a batch ---


@dataclass(frozen=True)
class BatchGroups:
    """Members that read the same batch: G distinct batches, each read by one or more members.

    `batch_of[m]` is member m's batch; `members[g]` lists batch g's members in ascending
    order; `position[m]` is member m's row in the concatenation of `members`.
    """

    batch_of: Tensor  # (M,) int64
    members: tuple[Tensor, ...]  # G tensors (n_g,) int64
    position: Tensor  # (M,) int64

    @classmethod
    def from_batches(cls, batch_of: Sequence[int], device: torch.device) -> BatchGroups:
        """Groups from each member's batch index (0..G-1, every index used)."""
        count = max(batch_of) + 1
        members = [[m for m, b in enumerate(batch_of) if b == g] for g in range(count)]
        flat = [m for group in members for m in group]
        position = [flat.index(m) for m in range(len(batch_of))]

        def as_tensor(values: Sequence[int]) -> Tensor:
            return torch.tensor(values, dtype=torch.int64, device=device)

        return cls(
            as_tensor(batch_of), tuple(as_tensor(group) for group in members), as_tensor(position)
        )


# --- which spec fields may differ ---

ARCHITECTURE_FIELDS: tuple[str, ...] = (
    "kind",
    "hidden",
    "activation",
    "output",
    "outputs",
    "batch_norm",
)
"""`MLPSpec` fields every member of a stack must share."""

PER_MEMBER_FIELDS: tuple[str, ...] = (
    "kernel_initializer",
    "bias_initializer",
    "output_kernel_initializer",
    "output_bias_initializer",
    "kernel_regularizer",
    "bias_regularizer",
    "output_kernel_regularizer",
    "output_bias_regularizer",
    "batch_norm_momentum",
    "batch_norm_epsilon",
    "dropout",
    "input_dropout",
    "output_dropout",
)
"""`MLPSpec` fields that may differ between members (initialisers only act when building)."""


def _architecture(spec: MLPSpec, field: str) -> Any:
    """The value of an architecture field, per-layer values resolved (ReLU() == (ReLU(),))."""
    if field == "activation":
        return tuple(h.activation for h in spec.hidden_layers())
    return getattr(spec, field)


def stack_conflicts(specs: Sequence[ModelSpec]) -> list[str]:
    """Why `specs` cannot train as one stack: one line per differing architecture field.

    Parameters
    ----------
    specs : the members' model specs, in stack order.

    Returns
    -------
    list of str, empty when they can stack, e.g.
    ``["models[2].hidden: must equal models[0]'s (16,) to stack, got (32,)"]``.
    """
    if not specs:
        return ["models: a stack needs at least one model, got none"]
    other_kinds = [
        f"models[{k}]: kind {spec.kind!r} cannot stack (MLPs only)"
        for k, spec in enumerate(specs)
        if spec.kind != "mlp"
    ]
    if other_kinds:
        return other_kinds
    first = specs[0]
    problems = []
    for k, spec in enumerate(specs[1:], start=1):
        for field in ARCHITECTURE_FIELDS:
            want, got = _architecture(first, field), _architecture(spec, field)
            if want != got:
                problems.append(
                    f"models[{k}].{field}: must equal models[0]'s {want!r} to stack, got {got!r}"
                )
    return problems


def can_stack(specs: Sequence[ModelSpec]) -> bool:
    """Whether `specs` differ only in `PER_MEMBER_FIELDS` (see `stack_conflicts` for why not)."""
    return not stack_conflicts(specs)


# --- the stacked module ---


def member_scalar(values: Sequence[float], device: torch.device) -> float | Tensor:
    """One scalar per member: a float when all agree, so the arithmetic is a single model's.

    Parameters
    ----------
    values : M floats, in stack order.
    device : where a tensor goes.

    Returns
    -------
    float, or float32 Tensor of shape (M, 1) broadcasting against (M, ...) tensors.
    """
    if all(v == values[0] for v in values):
        return float(values[0])
    return torch.tensor(values, dtype=torch.float32, device=device).unsqueeze(1)  # (M, 1)


class StackedMLP(nn.Module):
    """M `MLPNet`s of one architecture as one module: logits (M, B, outputs) in one pass.

    Build it with `stack_models`. The layer sequence follows `MLPNet` (Keras order); a
    dropout slot exists when any member's rate there is > 0, and a member whose rate is 0
    draws no mask, as its `MLPNet` has no Dropout layer there.

    Parameters
    ----------
    nets : M initialised `MLPNet`s whose specs pass `stack_conflicts`, with equal
        `input_dim` and `outputs`; their weights, BatchNorm statistics and dropout
        generators are copied (the nets are not changed).

    Attributes
    ----------
    members : int, M.
    specs : tuple of MLPSpec, one per member.
    spec : MLPSpec, the first member's (the architecture all share).
    input_dim, outputs : int.
    weights : Parameter of shape (M, P): every kernel, bias, gamma and beta of a member in
        one row, in `MLPNet` parameter order.
    slot_names, slot_shapes, slot_sizes : the tensors packed in a row: stack names
        ("dense0.kernel", "bn0.gamma", ...), per-member shapes, element counts.
    generators : list of torch.Generator or None, each member's dropout stream.
    """

    def __init__(self, nets: Sequence[MLPNet]) -> None:
        super().__init__()
        problems = stack_conflicts([net.spec for net in nets])
        dims = {(net.input_dim, net.outputs) for net in nets}
        if len(dims) > 1:
            problems.append(f"models: input_dim and outputs must agree to stack, got {dims}")
        if problems:
            raise SpecError("; ".join(problems))
        first = nets[0]
        device = first.dense_layers[0].kernel.device
        self.members = len(nets)
        self.specs = tuple(net.spec for net in nets)
        self.spec = first.spec
        self.input_dim, self.outputs = first.input_dim, first.outputs
        self.generators: list[torch.Generator | None] = [net.generator for net in nets]
        depth = len(self.spec.hidden)
        self._rates = [  # per dropout slot: 0 the inputs, j + 1 after hidden j, depth + 1 logits
            tuple(s.input_dropout for s in self.specs),
            *(tuple(s.hidden_layers()[j].dropout for s in self.specs) for j in range(depth)),
            tuple(s.output_dropout for s in self.specs),
        ]
        self._activations = [activation_function(h.activation) for h in self.spec.hidden_layers()]
        self._plan = self._layer_plan()
        # stack name -> each member's state-dict prefix ("layers.3"), from the nets themselves
        self._prefixes = [_prefixes(net) for net in nets]
        self._keys = [list(net.state_dict()) for net in nets]  # each member's key order
        self.slot_names, self.slot_shapes = _slots(first)
        self.slot_sizes = [int(torch.Size(shape).numel()) for shape in self.slot_shapes]
        rows = [
            torch.cat([_member_tensor(net, n).reshape(-1) for n in self.slot_names]) for net in nets
        ]
        self.weights = nn.Parameter(torch.stack(rows).detach().clone())  # (M, P)
        self._norms = [n.removesuffix(".gamma") for n in self.slot_names if n.endswith(".gamma")]
        for bn in self._norms:
            for stat in ("moving_mean", "moving_variance"):
                stacked = torch.stack([_member_tensor(net, f"{bn}.{stat}") for net in nets])
                self.register_buffer(f"{bn}_{stat}", stacked.detach().clone())  # (M, F)
        self.bn_momentum: float | Tensor
        self.bn_epsilon: float | Tensor
        self._scalar("bn_momentum", [s.batch_norm_momentum for s in self.specs], device)
        self._scalar("bn_epsilon", [s.batch_norm_epsilon for s in self.specs], device)
        self._regularized, l1, l2 = self._penalty_terms()
        self._l1_used = [any(row) for row in l1]
        self._l2_used = [any(row) for row in l2]
        self.register_buffer("l1", torch.tensor(l1, device=device), persistent=False)  # (R, M)
        self.register_buffer("l2", torch.tensor(l2, device=device), persistent=False)  # (R, M)

    # --- construction helpers ---

    def _layer_plan(self) -> list[tuple[str, int]]:
        """(op, index) in Keras order; dropout slots: 0 inputs, j+1 after hidden j, L+1 logits."""
        spec, depth = self.spec, len(self.spec.hidden)
        plan: list[tuple[str, int]] = [("dropout", 0)]
        for j in range(depth):
            plan.append(("dense", j))
            order = {"none": ["act"], "before": ["bn", "act"], "after": ["act", "bn"]}
            plan.extend((op, j) for op in order[spec.batch_norm])
            plan.append(("dropout", j + 1))
        plan.extend([("dense", depth), ("dropout", depth + 1)])
        return [(op, i) for op, i in plan if op != "dropout" or any(r > 0 for r in self._rates[i])]

    def _scalar(self, name: str, values: Sequence[float], device: torch.device) -> None:
        """Set a per-member scalar: a float when shared, else a (M, 1) buffer (moves with .to)."""
        value = member_scalar(values, device)
        if isinstance(value, Tensor):
            self.register_buffer(name, value, persistent=False)  # (M, 1)
        else:
            setattr(self, name, value)

    def _penalty_terms(self) -> tuple[list[str], list[list[float]], list[list[float]]]:
        """Regularised slots (any member's weight > 0) and their per-member l1 and l2 rows."""
        names: list[str] = []
        l1: list[list[float]] = []
        l2: list[list[float]] = []
        for j in range(len(self.spec.hidden) + 1):
            for part in ("kernel", "bias"):
                regs = [_regularizer(s, j, part) for s in self.specs]
                if any(r is not None and r.active for r in regs):
                    names.append(f"dense{j}.{part}")
                    l1.append([r.l1 if r is not None else 0.0 for r in regs])
                    l2.append([r.l2 if r is not None else 0.0 for r in regs])
        return names, l1, l2

    # --- forward ---

    def views(self) -> dict[str, Tensor]:
        """Each packed tensor as a (M, *shape) view of `weights` (split: one cat backward)."""
        chunks = self.weights.split(self.slot_sizes, dim=1)  # (M, size) each
        return {
            name: chunk.view(self.members, *shape)  # (M, *shape)
            for name, shape, chunk in zip(self.slot_names, self.slot_shapes, chunks, strict=True)
        }

    def forward(self, x: Tensor, groups: BatchGroups | None = None) -> Tensor:
        """Every member's logits (after its output dropout in training).

        Parameters
        ----------
        x : Tensor of shape (B, input_dim) when every member sees the same rows (the first
            Dense is then one GEMM over the members' kernels side by side); (G, B,
            input_dim) with `groups`, when members share G distinct batches (one GEMM per
            batch); or (M, B, input_dim), member m's rows in `x[m]`.
        groups : which members read which batch of a (G, B, input_dim) `x`.

        Returns
        -------
        Tensor of shape (M, B, outputs).
        """
        weights = self.views()
        if groups is not None and self._plan[0][0] != "dense":  # input dropout: masks per member
            x, groups = x[groups.batch_of], None  # (M, B, D)
        for op, j in self._plan:
            if op == "dense":
                kernel, bias = weights[f"dense{j}.kernel"], weights[f"dense{j}.bias"]
                x = (
                    _dense(x, kernel, bias)
                    if groups is None
                    else _grouped_dense(x, groups, kernel, bias)
                )
                groups = None  # (M, B, U) from here on
            elif op == "act":
                x = self._activations[j](x)  # (M, B, U)
            elif op == "bn":
                x = self._batch_norm(x, f"bn{j}", weights)  # (M, B, U)
            else:
                x = self._dropout(x, self._rates[j])  # (M, B, U)
        return x

    def _batch_norm(self, x: Tensor, bn: str, weights: dict[str, Tensor]) -> Tensor:
        """Keras BatchNormalization per member (see `BatchNorm`), x (M, B, F)."""
        moving_mean = getattr(self, f"{bn}_moving_mean")  # (M, F)
        moving_variance = getattr(self, f"{bn}_moving_variance")  # (M, F)
        if self.training:
            variance, mean = torch.var_mean(x, dim=-2, correction=0)  # (M, F) over the batch
            with torch.no_grad():
                _moving_update(moving_mean, mean.detach(), self.bn_momentum)  # (M, F)
                _moving_update(moving_variance, variance.detach(), self.bn_momentum)  # (M, F)
        else:
            mean, variance = moving_mean, moving_variance  # (M, F)
        scale = torch.rsqrt(variance + self.bn_epsilon) * weights[f"{bn}.gamma"]  # (M, F)
        shift = weights[f"{bn}.beta"] - mean * scale  # (M, F)
        return x * scale.unsqueeze(1) + shift.unsqueeze(1)  # (M, B, F), tf's order

    def _dropout(self, x: Tensor, rates: tuple[float, ...]) -> Tensor:
        """Each member's inverted-dropout mask from its own generator; x (B, U) or (M, B, U)."""
        if not self.training:
            return x
        like = x[0] if x.dim() == 3 else x  # (B, U): one member's activations
        masks = []
        for rate, generator in zip(rates, self.generators, strict=True):
            if rate == 0.0:  # its MLPNet has no Dropout here: draw nothing
                masks.append(torch.ones_like(like))
                continue
            masks.append(dropout_mask(like, rate, generator))
        return x * torch.stack(masks)  # (M, B, U)

    def output_activation(self, logits: Tensor) -> Tensor:
        """Softmax over the last axis, or the identity: logits (M, B, outputs) -> same shape."""
        return torch.softmax(logits, dim=-1) if self.spec.output == "softmax" else logits

    def penalty(self) -> Tensor:
        """Each member's L1/L2 penalty with Keras semantics: l1·Σ|w| + l2·Σw² per tensor.

        Returns
        -------
        Tensor of shape (M,): differentiable; zeros when no member is regularised.
        """
        weights = self.views()
        total = torch.zeros(self.members, dtype=self.weights.dtype, device=self.weights.device)
        for i, name in enumerate(self._regularized):
            w = weights[name].flatten(1)  # (M, n)
            if self._l1_used[i]:  # skip unused terms, as MLPNet does (0·inf would be NaN)
                total = total + self.l1[i] * w.abs().sum(1)  # (M,)
            if self._l2_used[i]:
                total = total + self.l2[i] * w.square().sum(1)  # (M,)
        return total

    def set_generators(self, generators: Sequence[torch.Generator | None]) -> None:
        """Use `generators[m]` for member m's dropout masks (e.g. on the inputs' device).

        Parameters
        ----------
        generators : M generators (or None for torch's global one), in stack order.
        """
        if len(generators) != self.members:
            raise ValueError(f"need {self.members} generators, got {len(generators)}")
        self.generators = list(generators)

    # --- members in and out ---

    def member_state_dict(self, m: int) -> dict[str, Tensor]:
        """Member m's weights and BatchNorm statistics under its own `MLPNet` names.

        Parameters
        ----------
        m : member index, 0 <= m < M.

        Returns
        -------
        dict of Tensor copies, the keys of `MLPNet(specs[m], ...).state_dict()`
        ("layers.0.kernel" (in, out), ...).
        """
        state = {
            _member_key(self._prefixes[m], name): view[m].detach().clone()
            for name, view in self.views().items()
        }
        for bn in self._norms:
            for stat in ("moving_mean", "moving_variance"):
                key = _member_key(self._prefixes[m], f"{bn}.{stat}")
                state[key] = getattr(self, f"{bn}_{stat}")[m].detach().clone()
        return {key: state[key] for key in self._keys[m]}

    @torch.no_grad()
    def load_member_state_dict(self, m: int, state: dict[str, Tensor]) -> None:
        """Overwrite member m from an `MLPNet` state dict (the inverse of `member_state_dict`)."""
        for name, view in self.views().items():
            view[m].copy_(state[_member_key(self._prefixes[m], name)])
        for bn in self._norms:
            for stat in ("moving_mean", "moving_variance"):
                key = _member_key(self._prefixes[m], f"{bn}.{stat}")
                getattr(self, f"{bn}_{stat}")[m].copy_(state[key])

    def unstack(self, m: int) -> MLPNet:
        """Member m as a plain `MLPNet` on the stack's device, with its dropout generator.

        Parameters
        ----------
        m : member index, 0 <= m < M.

        Returns
        -------
        MLPNet mapping (B, input_dim) to (B, outputs), equal to member m.
        """
        net = MLPNet(self.specs[m], self.input_dim, self.outputs).to(self.weights.device)
        net.load_state_dict(self.member_state_dict(m))
        net.set_generator(self.generators[m])
        net.train(self.training)
        return net

    def save_members(self, members: Tensor) -> list[Tensor]:
        """Copies of the given members' weights and statistics (to undo a step for them).

        Parameters
        ----------
        members : int64 Tensor of shape (F,), member indices, on the stack's device.

        Returns
        -------
        list of Tensor, for `load_members`.
        """
        with torch.no_grad():
            return [self.weights[members]] + [b[members] for b in self._statistics()]  # (F, ...)

    @torch.no_grad()
    def load_members(self, members: Tensor, saved: list[Tensor]) -> None:
        """Put back what `save_members(members)` copied: frozen members stay unchanged."""
        for tensor, copy in zip([self.weights, *self._statistics()], saved, strict=True):
            tensor[members] = copy  # (F, ...)

    def _statistics(self) -> list[Tensor]:
        """The BatchNorm moving statistics, each (M, F)."""
        return [
            getattr(self, f"{bn}_{s}")
            for bn in self._norms
            for s in ("moving_mean", "moving_variance")
        ]

    def extra_repr(self) -> str:
        return (
            f"members={self.members}, hidden={self.spec.hidden}, parameters={self.weights.shape[1]}"
        )


def stack_models(nets: Sequence[MLPNet]) -> StackedMLP:
    """Stack M initialised `MLPNet`s, so the stack starts exactly where they start.

    Parameters
    ----------
    nets : M nets of one architecture (`can_stack` on their specs), equal `input_dim` and
        `outputs`, on one device.

    Returns
    -------
    StackedMLP mapping (B, D) or (M, B, D) to logits (M, B, outputs).

    Raises
    ------
    SpecError
        When the nets differ in architecture; the message names every conflict.
    """
    return StackedMLP(nets)


# --- helpers ---


def _dense(x: Tensor, kernel: Tensor, bias: Tensor) -> Tensor:
    """Affine map per member: x (B, D) shared or (M, B, D), kernel (M, D, U), bias (M, U)."""
    if x.dim() == 2:  # the members see the same rows: one GEMM over their kernels side by side
        members, d, units = kernel.shape
        wide = kernel.permute(1, 0, 2).reshape(d, members * units)  # (D, M·U)
        out = torch.addmm(bias.reshape(members * units), x, wide)  # (B, M·U)
        return out.view(-1, members, units).transpose(0, 1)  # (M, B, U)
    return torch.baddbmm(bias.unsqueeze(1), x, kernel)  # (M, B, U)


def _grouped_dense(x: Tensor, groups: BatchGroups, kernel: Tensor, bias: Tensor) -> Tensor:
    """Affine map per member when members share G batches: x (G, B, D) -> (M, B, U).

    Each batch goes through one GEMM over its members' kernels side by side, instead of a
    (M, B, D) gather and a batched product per member.
    """
    d, units = kernel.shape[1:]
    parts = []
    for batch, members in enumerate(groups.members):
        count = len(members)
        wide = kernel.index_select(0, members).permute(1, 0, 2).reshape(d, count * units)
        out = torch.addmm(bias.index_select(0, members).reshape(-1), x[batch], wide)  # (B, n·U)
        parts.append(out.view(-1, count, units).transpose(0, 1))  # (n, B, U)
    return torch.cat(parts).index_select(0, groups.position)  # (M, B, U), member order


def _moving_update(moving: Tensor, batch: Tensor, momentum: float | Tensor) -> None:
    """Keras's moving = momentum·moving + (1 − momentum)·batch, in place; moving (M, F)."""
    if isinstance(momentum, Tensor):  # per-member momentum (M, 1)
        moving.mul_(momentum).add_(batch * (1.0 - momentum))  # (M, F)
    else:  # BatchNorm's own arithmetic
        moving.mul_(momentum).add_(batch, alpha=1.0 - momentum)  # (M, F)


def _regularizer(spec: MLPSpec, j: int, part: str) -> Any:
    """The regulariser of Dense j's kernel or bias (j = len(hidden): the output layer)."""
    if j == len(spec.hidden):
        return spec.output_kernel_regularizer if part == "kernel" else spec.output_bias_regularizer
    layer = spec.hidden_layers()[j]
    return layer.kernel_regularizer if part == "kernel" else layer.bias_regularizer


def _prefixes(net: MLPNet) -> dict[str, str]:
    """Stack layer names ("dense0", "bn0") -> the net's module prefix ("layers.1")."""
    prefixes, dense, norm = {}, 0, 0
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Dense):
            prefixes[f"dense{dense}"], dense = f"layers.{i}", dense + 1
        elif isinstance(layer, BatchNorm):
            prefixes[f"bn{norm}"], norm = f"layers.{i}", norm + 1
    return prefixes


def _member_key(prefixes: dict[str, str], name: str) -> str:
    """ "dense1.kernel" -> "layers.3.kernel" for one member."""
    layer, _, attribute = name.partition(".")
    return f"{prefixes[layer]}.{attribute}"


def _member_tensor(net: MLPNet, name: str) -> Tensor:
    """A net's tensor by stack name ("bn0.moving_mean")."""
    return net.state_dict()[_member_key(_prefixes(net), name)]


def _slots(net: MLPNet) -> tuple[list[str], list[tuple[int, ...]]]:
    """Stack names and shapes of a member's parameters, in `MLPNet.parameters()` order."""
    names, shapes = [], []
    dense = norm = 0
    for layer in net.layers:
        if isinstance(layer, Dense):
            names += [f"dense{dense}.kernel", f"dense{dense}.bias"]
            shapes += [tuple(layer.kernel.shape), tuple(layer.bias.shape)]
            dense += 1
        elif isinstance(layer, BatchNorm):
            names += [f"bn{norm}.gamma", f"bn{norm}.beta"]
            shapes += [tuple(layer.gamma.shape), tuple(layer.beta.shape)]
            norm += 1
    return names, shapes
