"""The compiled engine: whole chunks of dense-MLP steps in one numba call (`compiled_kernels`).

For small networks at small batches a torch step is a dozen operator calls of ~10 µs each
around a fraction of a MFLOP; here the step is a loop inside one compiled function. The
engine packs the model's kernels and biases and the optimiser's state into flat float32
buffers, trains a chunk of steps, and writes weights, the last step's gradients and the
state back, so the torch model, its optimiser and every callback see what the torch
engines leave. Same batches (the run's `BatchStream`), same learning rate per step (the
schedule), same dropout masks (the same `torch.rand` draws from the model's generator, drawn
for a whole chunk at once: torch's CPU generator yields one float per element in order),
same Keras updates, History and divergence check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from torch import nn

from mnistlab.models.layers import Activation, BatchNorm, Dense, Dropout
from mnistlab.models.mlp import MLPNet
from mnistlab.training.batches import pass_order
from mnistlab.training.engines import compiled_kernels as kernels
from mnistlab.training.engines.lean import dense_mlp_unsupported
from mnistlab.training.optimizers import OPTIMIZERS, KerasOptimizer
from mnistlab.training.spec import TrainSpec
from mnistlab.training.state import DIVERGENCE_CHECK_STEPS, RunState, Split, weighted_logs

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mnistlab.training.callbacks import Callback, Events
    from mnistlab.training.schedules import Schedule

DRAW_BUDGET = 1 << 22  # dropout draws per chunk (16 MiB of float32)
OPTIMIZER_CODES = {
    "sgd": kernels.SGD,
    "adam": kernels.ADAM,
    "adamw": kernels.ADAM,
    "nadam": kernels.NADAM,
    "rmsprop": kernels.RMSPROP,
    "adagrad": kernels.ADAGRAD,
    "adadelta": kernels.ADADELTA,
}
HYPER_FIELDS = {  # param-group key -> index in the kernels' `hyper`
    "momentum": kernels.MOMENTUM,
    "nesterov": kernels.NESTEROV,
    "beta_1": kernels.BETA_1,
    "beta_2": kernels.BETA_2,
    "epsilon": kernels.EPSILON,
    "rho": kernels.RHO,
    "centered": kernels.CENTERED,
    "legacy": kernels.LEGACY,
    "amsgrad": kernels.AMSGRAD,
    "weight_decay": kernels.WEIGHT_DECAY,
}
LOSS_CODES = {"mse": kernels.MSE, "mae": kernels.MAE}


class NormProbe(Protocol):
    """A callback that averages per-tensor gradient norms over the steps it samples.

    The compiled engine sums the norm of every parameter tensor every `every_n_steps` steps
    inside the kernels and hands each epoch's sums over, keyed by parameter name.
    """

    every_n_steps: int

    def add_gradient_norms(self, sums: dict[str, float], steps: int) -> None: ...


def callbacks_unsupported(callbacks: Iterable[Callback]) -> str | None:
    """Why the compiled engine cannot serve these callbacks, or None when it can.

    It calls no callback per step: those that need steps must be gradient-norm probes
    (`NormProbe`), all sampling at one period.
    """
    stepped = [c for c in callbacks if c.every_n_steps > 0]
    for callback in stepped:
        if not hasattr(callback, "add_gradient_norms"):
            return f"callback {type(callback).__name__} runs every {callback.every_n_steps} steps"
    if len({c.every_n_steps for c in stepped}) > 1:
        return "gradient-norm probes sampling at different periods"
    return None


def compiled_unsupported(model: nn.Module, spec: TrainSpec, train: Split) -> str | None:
    """Why the compiled engine cannot train this run, or None when it can.

    Supported: an `MLPNet` on the CPU, hidden activations linear, sigmoid, tanh, relu,
    leaky_relu or elu, batch normalisation before or after them, any dropout, softmax or
    linear output, cross-entropy (int64 class ids) or MSE/MAE from the logits, L1/L2,
    every Keras optimiser and clipping option, any schedule, `steps_per_epoch`; no
    augmentation.
    """
    problem = dense_mlp_unsupported(model, kernels.ACTIVATION_CODES, batch_norm=True)
    if problem is not None:
        return problem
    if spec.augment is not None:
        return "augmentation"
    if spec.clip_probabilities and model.spec.output == "softmax":
        return "clip_probabilities (Keras 2.2.4 clipping)"
    if train.x.device.type != "cpu":
        return f"device {train.x.device.type} (the compiled engine runs on the CPU)"
    if train.x.ndim != 2 or train.x.dtype != torch.float32:
        return f"inputs of shape {tuple(train.x.shape)} and {train.x.dtype}, not float32 (N, D)"
    if spec.is_classification and (train.y.dtype != torch.int64 or train.y.ndim != 1):
        return "labels that are not int64 class ids of shape (N,)"
    return None


@dataclass
class ChunkResult:
    """What one call of the kernels did: steps trained and the epoch index of the first bad one."""

    done: int
    first_bad: int | None


class CompiledNet:
    """An `MLPNet` and its Keras optimiser as flat buffers for `compiled_kernels.train_steps`.

    Parameters
    ----------
    model : the run's model (`compiled_unsupported` is None for it).
    optimizer : the run's Keras optimiser (one param group over `model.parameters()`).
    spec : the training spec (optimiser name, loss, divergence bound).
    """

    def __init__(self, model: MLPNet, optimizer: KerasOptimizer, spec: TrainSpec) -> None:
        self.model, self.optimizer, self.spec = model, optimizer, spec
        # kernel, bias per Dense layer and gamma, beta per BatchNorm, in layer order
        self.params = list(model.parameters())
        self.names = [name for name, _ in model.named_parameters()]
        index = {id(p): i for i, p in enumerate(self.params)}
        self.group = optimizer.param_groups[0]
        dense = model.dense_layers
        self.widths = np.array([dense[0].in_features] + [d.out_features for d in dense])
        # each kernel stored with its longer side contiguous (see compiled_kernels)
        self.transposed = self.widths[:-1] >= self.widths[1:]
        self.tensor_transposed = [False] * len(self.params)
        self.layout = np.full((len(dense), 2), -1, dtype=np.int64)
        for i, layer in enumerate(dense):
            self.layout[i, 0] = index[id(layer.kernel)]
            self.tensor_transposed[self.layout[i, 0]] = bool(self.transposed[i])
        self.norms: list[BatchNorm] = []
        self.activations = np.zeros(len(dense) - 1, dtype=np.int64)
        self.activation_parameters = np.zeros(len(dense) - 1, dtype=np.float32)
        self.keep = np.ones(len(dense) + 1, dtype=np.float32)
        seen = 0  # Dense layers so far
        for layer in model.layers:
            if isinstance(layer, Dense):
                seen += 1
            elif isinstance(layer, BatchNorm):
                self.layout[seen - 1, 1] = index[id(layer.gamma)]
                self.norms.append(layer)
            elif isinstance(layer, Activation):
                activation = layer.spec
                self.activations[seen - 1] = kernels.ACTIVATION_CODES[activation.name]
                parameter = getattr(activation, "negative_slope", getattr(activation, "alpha", 0))
                self.activation_parameters[seen - 1] = parameter
            elif isinstance(layer, Dropout) and layer.rate > 0:
                self.keep[seen] = 1.0 - layer.rate
        # draws per sample and step: every masked position's width
        self.draws_per_row = int(
            sum(w for w, k in zip(self.widths, self.keep, strict=True) if k < 1)
        )
        tensors = len(self.params)
        self.l1, self.l2 = np.zeros(tensors), np.zeros(tensors)
        index = {id(p): i for i, p in enumerate(self.params)}
        for i, name, reg in model.regularized:
            t = index[id(getattr(model.layers[i], name))]
            self.l1[t], self.l2[t] = reg.l1, reg.l2
        self.optimizer_code = OPTIMIZER_CODES[spec.optimizer.name]
        self.slot_names = OPTIMIZERS[spec.optimizer.name].state
        self.hyper = np.zeros(kernels.HYPER)
        for key, at in HYPER_FIELDS.items():
            self.hyper[at] = float(self.group.get(key) or 0.0)
        self.clip = np.zeros(3)
        for key, at in (
            ("clipnorm", kernels.CLIPNORM),
            ("clipvalue", kernels.CLIPVALUE),
            ("global_clipnorm", kernels.GLOBAL_CLIPNORM),
        ):
            self.clip[at] = float(spec.optimizer.model_dump().get(key) or 0.0)
        self.norm_order = kernels.NORM_CODES[model.spec.batch_norm]
        self.norm_momentum = float(model.spec.batch_norm_momentum)
        self.norm_epsilon = float(model.spec.batch_norm_epsilon)
        # where each hidden layer's units start among all hidden units, and their count
        self.features = np.concatenate([[0], np.cumsum(self.widths[1:-1])]).astype(np.int64)
        self.moving = np.zeros((2, self.features[-1] if self.norms else 0), np.float32)
        self.loss_kind = LOSS_CODES.get(spec.loss, kernels.CROSS_ENTROPY)
        bound = spec.divergence_threshold
        self.threshold = np.float32(np.inf if bound is None else bound)
        sizes = [p.numel() for p in self.params]
        self.bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        total = int(self.bounds[-1])
        self.flat = np.empty(total, dtype=np.float32)
        self.grads = np.zeros(total, dtype=np.float32)
        self.slots = np.zeros((kernels.SLOTS, total), dtype=np.float32)
        self.counters = np.zeros(1, dtype=np.int64)
        self.scalars = np.ones(1)

    # --- torch <-> flat buffers ---

    def _flat(self, t: torch.Tensor, index: int) -> np.ndarray:
        """Tensor `index` of the model (or its state) in the buffers' layout, flat."""
        if self.tensor_transposed[index]:
            t = t.t()
        return t.reshape(-1).numpy()

    def _unflat(self, piece: np.ndarray, index: int) -> torch.Tensor:
        """The inverse of `_flat`: a buffer piece shaped as the model's tensor `index`."""
        like = self.params[index]
        t = torch.from_numpy(piece)
        if self.tensor_transposed[index]:
            return t.reshape(like.shape[1], like.shape[0]).t()
        return t.reshape(like.shape)

    def _moving(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each BatchNorm's (moving mean, moving variance) in the `moving` buffer."""
        spans = zip(self.features[:-1], self.features[1:], strict=True) if self.norms else []
        return [(self.moving[0, a:b], self.moving[1, a:b]) for a, b in spans]

    def _pieces(self, flat: np.ndarray) -> list[np.ndarray]:
        return [flat[a:b] for a, b in zip(self.bounds[:-1], self.bounds[1:], strict=True)]

    def load(self) -> None:
        """Copy the weights, moving statistics, optimiser state and counters into the buffers."""
        for i, (p, piece) in enumerate(zip(self.params, self._pieces(self.flat), strict=True)):
            piece[:] = self._flat(p.detach(), i)
        for norm, (mean, variance) in zip(self.norms, self._moving(), strict=True):
            mean[:], variance[:] = norm.moving_mean.numpy(), norm.moving_variance.numpy()
        slots = zip(self.params, *(self._pieces(s) for s in self.slots), strict=True)
        for i, (p, *pieces) in enumerate(slots):
            state = self.optimizer.state_of(p)
            for name, piece in zip(self.slot_names, pieces, strict=False):
                if name in state:
                    piece[:] = self._flat(state[name], i)
        self.counters[kernels.ITERATIONS] = self.group["step"]
        self.scalars[kernels.U_PRODUCT] = self.group.get("u_product", 1.0)

    def store(self) -> None:
        """Write the weights, the last gradients, the optimiser's state and counters back."""
        with torch.no_grad():
            weights = zip(
                self.params, self._pieces(self.flat), self._pieces(self.grads), strict=True
            )
            for i, (p, piece, grad) in enumerate(weights):
                p.copy_(self._unflat(piece, i))
                if p.grad is None:
                    p.grad = torch.empty_like(p)
                p.grad.copy_(self._unflat(grad, i))
            for norm, (mean, variance) in zip(self.norms, self._moving(), strict=True):
                norm.moving_mean.copy_(torch.from_numpy(mean))
                norm.moving_variance.copy_(torch.from_numpy(variance))
            slots = zip(self.params, *(self._pieces(s) for s in self.slots), strict=True)
            for i, (p, *pieces) in enumerate(slots):
                state = self.optimizer.state[p]
                for name, piece in zip(self.slot_names, pieces, strict=False):
                    if name in state:
                        state[name].copy_(self._unflat(piece, i))
        self.group["step"] = int(self.counters[kernels.ITERATIONS])
        if "u_product" in self.group:
            self.group["u_product"] = float(self.scalars[kernels.U_PRODUCT])

    # --- training ---

    def train(
        self,
        data: tuple[np.ndarray, np.ndarray, np.ndarray],
        rows: np.ndarray,
        starts: np.ndarray,
        lrs: np.ndarray,
        draws: np.ndarray,
        position: tuple[int, int],
        out: tuple[np.ndarray, np.ndarray, np.ndarray],
        probe: tuple[int, int],
    ) -> ChunkResult:
        """Train the steps whose rows `starts` delimits, on the buffers (after `load`).

        Parameters
        ----------
        data : inputs float32 (N, D), labels int64 (N,), targets float32 (N, K) or (0, 0).
        rows, starts : step s reads rows[starts[s]:starts[s + 1]].
        lrs : float64, each step's learning rate; draws : float32, the chunk's dropout draws.
        position : (index of the chunk's first step in its epoch, the epoch's steps).
        out : losses float32 and correct counts int64 per step, gradient-norm sums float64
            per parameter tensor.
        probe : (the run's steps before the chunk, sampling period): gradient norms of every
            step whose count is a multiple of the period (0: none) are added to out[2].
        """
        network = (
            self.widths,
            self.transposed,
            self.activations,
            self.activation_parameters,
            self.keep,
            self.l1,
            self.l2,
            self.bounds,
            self.layout,
            (self.norm_order, self.norm_momentum, self.norm_epsilon, self.features, self.moving),
        )
        optimizer = (
            self.flat,
            self.grads,
            self.slots,
            self.optimizer_code,
            self.hyper,
            self.clip,
            self.counters,
            self.scalars,
        )
        run = (self.loss_kind, self.threshold, *position, DIVERGENCE_CHECK_STEPS, *probe)
        done, bad = kernels.train_steps(
            data, (rows, starts, lrs, draws), network, optimizer, run, out
        )
        return ChunkResult(int(done), None if bad < 0 else int(bad))


def _labels_and_targets(
    train: Split, spec: TrainSpec, outputs: int
) -> tuple[np.ndarray, np.ndarray]:
    """Class ids for cross-entropy, or float32 (N, K) targets (one-hot codes of class ids)."""
    if spec.is_classification:
        return train.y.numpy(), np.zeros((0, 0), dtype=np.float32)
    y = train.y
    if y.dtype == torch.int64:
        targets = torch.nn.functional.one_hot(y, outputs).float()
    else:
        targets = y.reshape(len(y), outputs).float()
    return np.zeros(0, dtype=np.int64), np.ascontiguousarray(targets.numpy())


def chunk_steps(draws_per_step: int) -> int:
    """Steps per kernel call: a multiple of the check period, holding DRAW_BUDGET draws at most."""
    if draws_per_step == 0:
        return 1 << 30
    period = DIVERGENCE_CHECK_STEPS
    return max(period, DRAW_BUDGET // draws_per_step // period * period)


def epoch_rows(run: RunState, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows of the epoch's steps, flat, and where each step starts (len steps + 1).

    The same draws as `BatchStream.epoch` (one `randperm` per pass from the run's shuffle
    generator), without building a tensor per batch.
    """
    stream = run.batches
    if stream.steps is not None:
        batches = stream.epoch()
        sizes = [stream.size(rows) for rows in batches]
        flat = [np.arange(n)[r] if isinstance(r, slice) else r.numpy() for r in batches]
        rows = np.concatenate(flat).astype(np.int64)
    else:
        if stream.shuffle:
            rows = pass_order(n, stream.generator).numpy()
        else:
            rows = np.arange(n, dtype=np.int64)
        sizes = np.full(math.ceil(n / stream.batch), stream.batch)
        sizes[-1] = n - stream.batch * (len(sizes) - 1)
    return rows, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def train_epoch_compiled(
    run: RunState, schedule: Schedule, train: Split, events: Events
) -> tuple[dict[str, float], int | None]:
    """`train_epoch_autograd` through the kernels: same batches, updates, logs and divergence.

    Parameters
    ----------
    run : the run's state; `compiled_unsupported` is None for its model and spec.
    schedule : gives the learning rate of every step.
    train : `x` float32 (N, D), `y` int64 class ids (N,) or regression targets.
    events : gradient-norm probes (`NormProbe`) get the epoch's per-tensor sums; no
        callback is called per step (`callbacks_unsupported` is None for them).

    Returns
    -------
    Keras's epoch logs (`loss`, and `accuracy` for classification) and the index of the
    first bad batch, or None.
    """
    model, spec = run.model, run.spec
    net = CompiledNet(model, run.optimizer, spec)
    net.load()
    rows, starts = epoch_rows(run, len(train.x))
    sizes = np.diff(starts)
    steps = len(sizes)
    lrs = np.array([schedule.learning_rate(run.step + i) for i in range(steps)])
    labels, targets = _labels_and_targets(train, spec, int(net.widths[-1]))
    data = (train.x.numpy(), labels, targets)
    losses = np.zeros(steps, dtype=np.float32)
    correct = np.zeros(steps, dtype=np.int64)
    norm_sums = np.zeros(len(net.params))
    probes: list[NormProbe] = [c for c in events.callbacks if c.every_n_steps > 0]
    every = probes[0].every_n_steps if probes else 0
    first = run.step
    chunk = chunk_steps(net.draws_per_row * int(sizes.max()))
    done, bad = 0, None
    while done < steps and bad is None:
        end = min(steps, done + chunk)
        count = net.draws_per_row * int(starts[end] - starts[done])
        draws = torch.rand(count, generator=model.generator).numpy()
        out = (losses[done:end], correct[done:end], norm_sums)
        steps_in = (starts[done : end + 1], lrs[done:end], draws)
        result = net.train(data, rows, *steps_in, (done, steps), out, (first + done, every))
        done += result.done
        bad = result.first_bad
    net.store()
    run.step += done
    run.optimizer.param_groups[0]["lr"] = float(lrs[done - 1])
    sampled = (first + done) // every - first // every if every else 0
    sums = dict(zip(net.names, norm_sums.tolist(), strict=True))
    for callback in probes:
        callback.add_gradient_norms(sums, sampled)
    hits = torch.tensor(int(correct[:done].sum()))
    logs = weighted_logs(
        torch.from_numpy(losses), hits, torch.from_numpy(sizes[:done]).float(), spec
    )
    return logs, bad
