"""Stacked training: M runs of one architecture trained as one `StackedMLP`, each as `fit` would.

`fit_stack(nets, train, specs, seeds=...)` gives each member exactly what `fit(net, train,
spec, seed=seed)` gives it alone, to float32 rounding: its own shuffle order and dropout
masks (from `RunSeeds.from_seed(seed)`), its own optimiser hyperparameters and learning-rate
schedule, its own History, divergence, early stopping and checkpoint. Members that shuffle
alike (same seed, or no shuffling) share each batch and the first layer is one GEMM; others
gather their own rows. A member that ends (diverged, stopped early, or out of epochs) is
frozen: its weights and statistics stop changing while the others go on.

What must agree between members is listed by `training_conflicts` (optimiser kind and its
switches, gradient clipping, loss, batch size, shuffling; schedules constant or exponential).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from mnistlab.errors import SpecError
from mnistlab.models.mlp import MLPNet
from mnistlab.models.stacked import (
    BatchGroups,
    StackedMLP,
    member_scalar,
    stack_conflicts,
    stack_models,
)
from mnistlab.runtime import configure_threads, default_threads, make_generator
from mnistlab.training.batches import pass_order
from mnistlab.training.callbacks import Callback, Events, callbacks_from_spec
from mnistlab.training.engines.lean import lean_supported
from mnistlab.training.history import History
from mnistlab.training.loop import EVAL_BATCH_SIZE, Member, run_epochs
from mnistlab.training.losses import KERAS_2_2_4_EPSILON
from mnistlab.training.optimizers import CLIPPING, OPTIMIZERS, OptimizerSpec
from mnistlab.training.schedules import ConstantSpec, ExponentialSpec, Schedule, make_schedule
from mnistlab.training.spec import TrainSpec
from mnistlab.training.state import (
    DIVERGENCE_CHECK_STEPS,
    RunSeeds,
    RunState,
    Split,
    check_monitors,
    epoch_logs,
    first_bad_per_member,
)

# --- what may differ ---

SHARED_TRAIN_FIELDS: tuple[str, ...] = (
    "loss",
    "clip_probabilities",
    "batch_size",
    "shuffle",
    "augment",  # a stack trains without augmentation or fixed-step epochs: see below
    "steps_per_epoch",
    "validation_steps",
    "evaluate_each_epoch",
)
"""`TrainSpec` fields every member must share (the others may differ per member)."""

STACKABLE_SCHEDULES = (ConstantSpec, ExponentialSpec)

GEMM_BOUND = 10_000_000
"""Multiply-adds per step of one model above which its GEMMs already keep the cores busy, so
a stack saves no overhead; for runs the lean step takes, one by one is then faster (A1 SGD,
60 M: a stack of 3 took 2.78 s/epoch, one at a time 3 × 0.755 s; docs/performance.md)."""


def stack_pays(net: MLPNet, spec: TrainSpec, train: Split | None = None) -> bool:
    """Whether a stack of runs like this one trains faster than the runs one by one.

    A stack runs the autograd step over all members. Against the lean single-model step
    (dense, no batch norm) it wins only in between: a model small enough for one thread
    (`runtime.default_threads`) takes ~0.1 ms a lean step, less than a member's share of
    a stacked step (784-30-10 at batch 10: 4 stacked 0.84 s per run-epoch, alone 0.54 s,
    two 1-thread workers 0.46 s), and a model whose GEMMs fill the cores (`GEMM_BOUND`)
    gains nothing from sharing a step.
    """
    if not lean_supported(net, spec, train):
        return True
    if default_threads(net, spec.batch_size) == 1:
        return False  # runner.auto_jobs gives such runs one 1-thread worker per core
    work = spec.batch_size * sum(p.numel() for p in net.parameters() if p.dim() == 2)
    return work < GEMM_BOUND


def training_conflicts(specs: Sequence[TrainSpec]) -> list[str]:
    """Why `specs` cannot train as one stack: one line per problem.

    Parameters
    ----------
    specs : the members' training specs, in stack order.

    Returns
    -------
    list of str, empty when they can stack, e.g.
    ``["training[1].batch_size: must equal training[0]'s 32 to stack, got 64"]``.
    """
    if not specs:
        return ["training: a stack needs at least one run, got none"]
    problems = []
    first = specs[0]
    for k, spec in enumerate(specs):
        for field in SHARED_TRAIN_FIELDS:
            want, got = getattr(first, field), getattr(spec, field)
            if want != got:
                problems.append(
                    f"training[{k}].{field}: must equal training[0]'s {want!r} to stack, "
                    f"got {got!r}"
                )
        for field in shared_optimizer_fields(first.optimizer):
            want = getattr(first.optimizer, field, None)
            got = getattr(spec.optimizer, field, None)
            if want != got:
                problems.append(
                    f"training[{k}].optimizer.{field}: must equal training[0]'s {want!r} "
                    f"to stack, got {got!r}"
                )
        if spec.augment is not None or spec.steps_per_epoch is not None:
            problems.append(
                f"training[{k}]: augmentation and steps_per_epoch train alone, not in a stack"
            )
        if not isinstance(spec.schedule, STACKABLE_SCHEDULES):
            problems.append(
                f"training[{k}].schedule: a stack supports constant and exponential schedules, "
                f"got {spec.schedule.kind!r}; train this run alone"
            )
    legacy_rmsprop = first.optimizer.name == "rmsprop" and getattr(first.optimizer, "legacy", False)
    if legacy_rmsprop and len({getattr(s.optimizer, "momentum", 0) > 0 for s in specs}) > 1:
        problems.append(
            "training[*].optimizer.momentum: legacy RMSprop puts epsilon elsewhere with "
            "momentum, so all members need momentum > 0 or all 0 to stack"
        )
    return problems


# --- optimiser over the flat (M, P) buffer ---


def shared_optimizer_fields(spec: OptimizerSpec) -> tuple[str, ...]:
    """The optimiser fields every member must share: its name, clipping and switches.

    The row's other (float) fields, its hyperparameters, may differ per member.
    """
    return ("name", *CLIPPING, *OPTIMIZERS[spec.name].switches)


class StackedOptimizer:
    """One Keras optimiser for the whole stack: the `OPTIMIZERS` row's rule on (M, P).

    Hyperparameters that differ between members are (M, 1) tensors, shared ones floats.

    Parameters
    ----------
    specs : M optimiser specs agreeing in `shared_optimizer_fields`.
    weights : the stack's flat Parameter of shape (M, P).
    sizes : element counts of the packed tensors in a row (for per-tensor `clipnorm`).
    """

    def __init__(self, specs: Sequence[OptimizerSpec], weights: Tensor, sizes: list[int]) -> None:
        first = specs[0]
        self.rule = OPTIMIZERS[first.name]
        self.weights, self.sizes = weights, sizes
        self.iterations = 0  # Keras's optimizer.iterations, shared: members step together
        self.clip = {k: getattr(first, k) for k in CLIPPING}
        self.settings = self.rule.settings(first)
        for f in self.rule.hyperparameters:  # float or (M, 1)
            self.settings[f] = member_scalar([getattr(s, f) for s in specs], weights.device)
        self.state = self.rule.init_state(weights, self.settings)  # each (M, P), like w

    @torch.no_grad()
    def step(self, lr: float | Tensor) -> None:
        """Apply one Keras update to every member from `weights.grad`.

        Parameters
        ----------
        lr : the learning rate, a float or a (M, 1) Tensor of per-member rates.
        """
        g = _clip_per_member(self.weights.grad, self.sizes, **self.clip)  # (M, P)
        self.iterations += 1
        if self.rule.begin_step is not None:
            self.rule.begin_step(self.settings, self.iterations)
        self.rule.update(self.weights, g, self.state, self.settings, self.iterations, lr)


def _clip_per_member(
    g: Tensor,
    sizes: list[int],
    *,
    clipnorm: float | None,
    clipvalue: float | None,
    global_clipnorm: float | None,
) -> Tensor:
    """Keras's clipping (see `clip_gradients`) within each member; g (M, P), in place."""
    if clipnorm:
        for part in g.split(sizes, dim=1):  # (M, size): one member's tensor per row
            norm = torch.linalg.vector_norm(part, dim=1, keepdim=True)  # (M, 1)
            part.mul_(clipnorm).div_(torch.clamp(norm, min=clipnorm))  # (M, size)
    elif global_clipnorm:
        squares = torch.stack([p.square().sum(1) for p in g.split(sizes, dim=1)])  # (T, M)
        norm = squares.sum(0).sqrt().unsqueeze(1)  # (M, 1)
        scale = global_clipnorm * torch.clamp(1.0 / norm, max=1.0 / global_clipnorm)  # (M, 1)
        g.mul_(scale + (norm - norm))  # (M, P); a non-finite norm gives NaN, as Keras
    elif clipvalue:
        g.clamp_(-clipvalue, clipvalue)  # (M, P)
    return g


# --- learning rates ---


class StackedRates:
    """Per-step learning rates of constant / exponential schedules, as `Schedule` gives them.

    A float when every member has the same schedule and rate (then it is that `Schedule`);
    otherwise a (M, 1) float32 Tensor computed on the device in float64 from Keras's
    formula lr0 · decay_rate^p, so no step waits on the host.

    Parameters
    ----------
    specs : the members' training specs (schedules constant or exponential).
    device : where the rates are needed.
    """

    def __init__(self, specs: Sequence[TrainSpec], device: torch.device) -> None:
        self.schedules: list[Schedule] = [
            make_schedule(s.schedule, s.optimizer.learning_rate) for s in specs
        ]
        keys = {(s.schedule, s.optimizer.learning_rate) for s in specs}
        self.shared = self.schedules[0] if len(keys) == 1 else None
        exp = [s.schedule if isinstance(s.schedule, ExponentialSpec) else None for s in specs]

        def col(values: list[float]) -> Tensor:
            return torch.tensor(values, dtype=torch.float64, device=device).unsqueeze(1)  # (M, 1)

        self.lr0 = col([s.optimizer.learning_rate for s in specs])  # (M, 1)
        self.rate = col([e.decay_rate if e else 1.0 for e in exp])  # (M, 1); 1: constant
        self.steps = col([e.decay_steps if e else 1.0 for e in exp])  # (M, 1)
        self.staircase = col([1.0 if e and e.staircase else 0.0 for e in exp]).bool()  # (M, 1)
        self.constant = all(e is None for e in exp)
        self._lr0 = self.lr0.float()  # (M, 1)

    def at(self, step: int) -> float | Tensor:
        """The rate for the next update, `step` updates having been done (float or (M, 1))."""
        if self.shared is not None:
            return self.shared.learning_rate(step)
        if self.constant:
            return self._lr0  # (M, 1)
        p = step / self.steps  # (M, 1)
        p = torch.where(self.staircase, p.floor(), p)  # (M, 1)
        return (self.lr0 * self.rate**p).float()  # (M, 1)


# --- losses and evaluation ---


def member_losses(
    logits: Tensor, y: Tensor, spec: TrainSpec, softmax_output: bool, reduction: str = "mean"
) -> Tensor:
    """Each member's batch loss before penalties, as `batch_loss` computes it alone.

    Parameters
    ----------
    logits : Tensor of shape (M, B, C).
    y : Tensor of shape (B,) or (M, B) int64 class ids, or (B, C) / (M, B, C) float
        regression targets; (B, ...) is shared by every member.
    spec : the training spec (loss name, Keras 2.2.4 clipping).
    softmax_output : whether the output activation is softmax.
    reduction : "mean" or "sum" over the batch.

    Returns
    -------
    Tensor of shape (M,).
    """
    members, batch, classes = logits.shape
    flat = logits.reshape(members * batch, classes)  # (M·B, C)
    if spec.is_classification:
        targets = y.expand(members, batch).reshape(-1)  # (M·B,)
        if spec.clip_probabilities and softmax_output:
            probs = flat.softmax(dim=1).clamp(KERAS_2_2_4_EPSILON, 1 - KERAS_2_2_4_EPSILON)
            per_sample = F.nll_loss(probs.log(), targets, reduction="none")  # (M·B,)
        else:
            per_sample = F.cross_entropy(flat, targets, reduction="none")  # (M·B,)
    else:
        if y.dtype == torch.int64:  # MSE on class ids means MSE on their one-hot codes
            y = F.one_hot(y, classes)
        y = y.to(logits.dtype).reshape(-1, batch, classes)  # (1 or M, B, C)
        targets = y.expand(members, batch, classes).reshape(flat.shape)  # (M·B, C)
        error = flat - targets  # (M·B, C)
        per_sample = (error.square() if spec.loss == "mse" else error.abs()).mean(dim=1)
    per_member = per_sample.view(members, batch)  # (M, B)
    return per_member.mean(dim=1) if reduction == "mean" else per_member.sum(dim=1)  # (M,)


def member_correct(logits: Tensor, y: Tensor) -> Tensor:
    """Per member, the samples whose arg-max is the class id: logits (M, B, C) -> (M,)."""
    return (logits.argmax(dim=-1) == y).sum(dim=-1)  # (M,)


@torch.no_grad()
def evaluate_stack(stack: StackedMLP, split: Split, spec: TrainSpec) -> list[dict[str, float]]:
    """`evaluate` for every member in one pass: loss (penalties included) and accuracy.

    Parameters
    ----------
    stack : the models, evaluated in inference mode (the mode is restored).
    split : `x` float32 (N, D), `y` (N,) int64 (or regression targets).
    spec : the training spec (loss).

    Returns
    -------
    list of M dicts with `loss` and, for classification, `accuracy`.
    """
    was_training = stack.training
    stack.eval()
    x, y = split.x, split.y
    softmax = stack.spec.output == "softmax"
    total = torch.zeros(stack.members, dtype=torch.float64, device=x.device)  # (M,)
    correct = torch.zeros(stack.members, dtype=torch.int64, device=x.device)  # (M,)
    for start in range(0, len(x), EVAL_BATCH_SIZE):
        yb = y[start : start + EVAL_BATCH_SIZE]
        logits = stack(x[start : start + EVAL_BATCH_SIZE])  # (M, B, C): shared rows
        total += member_losses(logits, yb, spec, softmax, reduction="sum")  # (M,)
        if spec.is_classification:
            correct += member_correct(logits, yb)  # (M,)
    stack.train(was_training)
    n = len(x)
    losses = (total / n + stack.penalty()).tolist()  # (M,)
    results: list[dict[str, float]] = [{"loss": loss} for loss in losses]
    if spec.is_classification:
        for result, hits in zip(results, correct.tolist(), strict=True):
            result["accuracy"] = hits / n
    return results


# --- the loop ---


class _MemberView:
    """Member m of a stack as callbacks see a model: `state_dict()` / `load_state_dict()`."""

    def __init__(self, stack: StackedMLP, m: int) -> None:
        self.stack, self.m = stack, m

    def state_dict(self) -> dict[str, Tensor]:
        return self.stack.member_state_dict(self.m)

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.stack.load_member_state_dict(self.m, state)


def fit_stack(
    nets: Sequence[MLPNet],
    train: Split,
    specs: Sequence[TrainSpec],
    *,
    val: Split | None = None,
    seeds: Sequence[int],
    threads: int | None = None,
    callbacks: Sequence[Sequence[Callback]] = (),
    evaluate_on: Mapping[str, Split] | None = None,
) -> list[History]:
    """Train M nets as one stack, each as `fit(nets[m], train, specs[m], seed=seeds[m])`.

    The nets are trained in place, as `fit` does: at the end each holds its member's
    weights and its dropout generator.

    Parameters
    ----------
    nets : M initialised `MLPNet`s of one architecture (`stack_conflicts`).
    train, val : splits with `x` float32 of shape (N, D) and `y` int64 of shape (N,).
    specs : M training specs agreeing as `training_conflicts` requires; epochs, optimiser
        hyperparameters, schedules, early stopping, checkpoints and divergence bounds
        may differ.
    seeds : M run seeds: each fixes its member's shuffling and dropout masks.
    threads : torch intra-op threads; default every core this process may use.
    callbacks : per member, extra listeners called after its spec's own (empty: none).
    evaluate_on : name -> split evaluated for every member after each epoch, as `fit`'s.

    Returns
    -------
    list of M History, as `fit` records them; `time` is the stack's epoch time.

    Raises
    ------
    SpecError
        When the nets or specs cannot stack; the message names every conflict.
    """
    if not len(nets) == len(specs) == len(seeds):
        raise ValueError(f"need one spec and seed per net: {len(nets)}, {len(specs)}, {len(seeds)}")
    problems = stack_conflicts([net.spec for net in nets]) + training_conflicts(specs)
    if problems:
        raise SpecError("; ".join(problems))
    for spec in specs:
        check_monitors(spec, has_val=val is not None)
    configure_threads(threads)
    device = train.x.device
    stack = stack_models([net.to(device) for net in nets])
    run_seeds = [RunSeeds.from_seed(seed) for seed in seeds]
    stack.set_generators([make_generator(r.dropout, device) for r in run_seeds])
    optimizer = StackedOptimizer([s.optimizer for s in specs], stack.weights, stack.slot_sizes)
    rates = StackedRates(specs, device)
    members = [
        Member(
            run=RunState(
                model=_MemberView(stack, m),  # type: ignore[arg-type]
                optimizer=optimizer,  # type: ignore[arg-type]
                spec=spec,
                history=History(engine=f"stacked ({len(nets)} members, autograd)"),
                seed=seed,
                shuffle_generator=make_generator(r.shuffle),
            ),
            events=Events(
                [
                    *callbacks_from_spec(spec.early_stopping, spec.checkpoint),
                    *(callbacks[m] if callbacks else ()),
                ]
            ),
            schedule=rates.schedules[m],
        )
        for m, (spec, seed, r) in enumerate(zip(specs, seeds, run_seeds, strict=True))
    ]
    engine = _StackEngine(stack, optimizer, rates, members, train, val)
    run_epochs(members, engine, evaluate_on or {})
    for m, net in enumerate(nets):
        net.load_state_dict(stack.member_state_dict(m))
        net.set_generator(stack.generators[m])
    return [member.run.history for member in members]


class _StackEngine:
    """`EpochEngine` for a stack: every live member's step at once, frozen ones undone."""

    def __init__(
        self,
        stack: StackedMLP,
        optimizer: StackedOptimizer,
        rates: StackedRates,
        members: list[Member],
        train: Split,
        val: Split | None,
    ) -> None:
        self.stack, self.optimizer, self.rates = stack, optimizer, rates
        self.members, self.train, self.val = members, train, val
        self.spec = members[0].run.spec  # the fields evaluation reads are shared
        device = train.x.device
        bounds = [[member.run.spec.divergence_threshold or math.inf] for member in members]
        self.thresholds = torch.tensor(bounds, device=device)  # (M, 1)

    def validate(self) -> list[dict[str, float]] | None:
        return None if self.val is None else self.evaluate(self.val)

    def evaluate(self, split: Split) -> list[dict[str, float]]:
        return evaluate_stack(self.stack, split, self.spec)

    def learning_rate(self, m: int) -> float:
        return self.rates.schedules[m].learning_rate(self.members[m].run.step - 1)

    def train_epoch(self, live: Sequence[int]) -> dict[int, tuple[dict[str, float], int | None]]:
        """One pass over `train` for the members `live`: each one's logs and first bad batch."""
        stack, optimizer, rates, members, spec = (
            self.stack,
            self.optimizer,
            self.rates,
            self.members,
            self.spec,
        )
        x, y, device = self.train.x, self.train.y, self.train.x.device
        n, batch = len(x), spec.batch_size
        steps = math.ceil(n / batch)
        running = set(live)
        order, groups = (
            member_orders(
                [
                    mb.run.shuffle_generator if m in running else None
                    for m, mb in enumerate(members)
                ],
                n,
                device,
            )
            if spec.shuffle
            else (None, None)
        )  # order None: in order; (N,) shared; (G, N) with groups; (M, N) per member
        frozen = set(range(stack.members)) - running
        still = _index(frozen, device)  # (F,) members whose updates are undone
        bad: dict[int, int] = {}  # member -> first bad batch
        done = dict.fromkeys(live, steps)
        losses = torch.zeros(stack.members, steps, device=device)  # (M, steps)
        correct = torch.zeros(stack.members, steps, dtype=torch.int64, device=device)  # (M, steps)
        softmax = stack.spec.output == "softmax"
        stack.train()
        checked = 0
        for i in range(steps):
            span = slice(i * batch, (i + 1) * batch)
            rows = span if order is None else order[..., span]  # (B,) shared, (G, B) or (M, B)
            xb = x[rows]  # (B, D) shared, (G, B, D) per distinct order, or (M, B, D) per member
            yb = y[rows] if groups is None else y[rows[groups.batch_of]]  # (B,) or (M, B)
            saved = stack.save_members(still) if still is not None else None  # (F, ...)
            logits = stack(xb, groups)  # (M, B, C)
            loss = member_losses(logits, yb, spec, softmax) + stack.penalty()  # (M,)
            stack.zero_grad(set_to_none=True)
            loss.sum().backward()  # members share no weights: the sum gives each its own gradient
            optimizer.step(rates.at(optimizer.iterations))
            if saved is not None:
                stack.load_members(still, saved)  # ended members stay as they were
            losses[:, i] = loss.detach()  # (M,)
            if spec.is_classification:
                correct[:, i] = member_correct(logits.detach(), yb)  # (M,)
            if i + 1 - checked == DIVERGENCE_CHECK_STEPS or i + 1 == steps:
                found = first_bad_per_member(
                    losses[:, checked : i + 1], self.thresholds
                )  # one sync
                for m in found.keys() - frozen:  # diverged: frozen from the next step, as fit stops
                    bad[m], done[m] = checked + found[m], i + 1
                    frozen.add(m)
                    still = _index(frozen, device)
                checked = i + 1
                if len(frozen) == stack.members:  # `fit` returns at the check that finds it
                    break
        results = {}
        for m, count in done.items():
            members[m].run.step += count
            logs = epoch_logs(losses[m], correct[m, :count].sum(), count, batch, n, spec)
            results[m] = (logs, bad.get(m))
        return results


def member_orders(
    generators: Sequence[torch.Generator | None], n: int, device: torch.device
) -> tuple[Tensor, BatchGroups | None]:
    """One epoch's shuffled row order per member, each distinct order kept once.

    Each member draws `randperm(n)` from its own (CPU) shuffle generator, as `fit` does;
    a None generator (a member that has ended) draws nothing and takes the first drawn
    order, so it never keeps the others off a shared path. Members with equal seeds draw
    equal orders and then read one batch through one GEMM.

    Parameters
    ----------
    generators : M shuffle generators (None for ended members; at least one given).
    n : rows in the split.
    device : where the orders are used.

    Returns
    -------
    (order, groups): order (N,) and None when every member drew the same order; (G, N)
    and the `BatchGroups` when 1 < G < M distinct orders were drawn; (M, N) and None when
    every member drew its own.
    """
    perms = [None if g is None else pass_order(n, g) for g in generators]
    distinct: list[Tensor] = []
    batch_of = []
    for perm in perms:  # compared on the CPU: no device sync
        if perm is None:
            batch_of.append(0)
            continue
        found = next((b for b, seen in enumerate(distinct) if torch.equal(seen, perm)), None)
        if found is None:
            distinct.append(perm)
            found = len(distinct) - 1
        batch_of.append(found)
    if len(distinct) == 1:
        return distinct[0].to(device), None  # (N,)
    if len(distinct) == len(perms):
        return torch.stack(distinct).to(device), None  # (M, N)
    return torch.stack(distinct).to(device), BatchGroups.from_batches(batch_of, device)  # (G, N)


def _index(members: set[int], device: torch.device) -> Tensor | None:
    """Sorted member indices as an int64 Tensor (F,), or None when there are none."""
    return torch.tensor(sorted(members), device=device) if members else None
