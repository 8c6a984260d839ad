"""Where mnistlab's training step spends its time, for workloads (a) and (b) of run.py.

    .venv/bin/python benchmarks/profile_steps.py [--only a,b] [--threads 1,2] [--no-profiler]

For each workload and torch thread count it prints, in microseconds per step:

1. phases of mnistlab's autograd step, replayed with mnistlab's own objects in the order of
   `training/loop.py::_train_epoch` (schedule + batch gather, forward + loss, zero_grad +
   backward, optimizer.step, loss/accuracy bookkeeping), and the same for a plain loop
   (SGD runs such as (b) now take `training/lean.py` instead, see 4.);
2. the GEMM floor: only the step's matrix products (3 forward, per layer a weight-gradient
   product, an input-gradient product for all layers but the first), back to back;
3. a hand-written step (no autograd: forward, analytic backward, fused Keras update on one
   flat parameter buffer), checked against `mnistlab.training.loop.fit` after one epoch from
   the same initial weights and shuffle order, and timed over a whole epoch;
4. mnistlab `fit` per-epoch time (median of 2 epochs after 1 warm-up) at each thread count,
   with its default engine ("auto": the lean step for SGD) and with engine="autograd";
5. optionally torch.profiler's top operators for 300 steps of `fit` (self CPU time).

Numbers are medians or means over whole epochs on a noisy 2-core machine; see
docs/performance.md for what they mean.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (  # (benchmarks/run.py, this folder)
    CLASSES,
    INPUT_DIM,
    WORKLOAD_A,
    WORKLOAD_B,
    LoadMeter,
    Workload,
    mnistlab_specs,
    torch_model,
    torch_optimizer,
    wait_for_quiet,
)

from mnistlab.data import DataSpec, Split, load_data
from mnistlab.models import build_mlp
from mnistlab.runtime import configure_threads, make_generator
from mnistlab.training.loop import fit
from mnistlab.training.losses import batch_loss, correct_count
from mnistlab.training.optimizers import KerasOptimizer
from mnistlab.training.schedules import make_schedule
from mnistlab.training.state import RunSeeds

pc = time.perf_counter


def fresh_net(w: Workload, seed: int = 0) -> Any:
    model_spec, _ = mnistlab_specs(w, 1)
    return build_mlp(model_spec, INPUT_DIM, CLASSES, make_generator(RunSeeds.from_seed(seed).init))


def epoch_order(n: int, seed: int = 0) -> torch.Tensor:
    """The first epoch's shuffle order `fit(seed=seed)` draws."""
    return torch.randperm(n, generator=make_generator(RunSeeds.from_seed(seed).shuffle))


# --- 1. phases ---


def mnistlab_phases(data: Any, w: Workload, steps: int) -> dict[str, float]:
    """µs per step of each phase of mnistlab's step (mirrors loop.py `_train_epoch`)."""
    _, spec = mnistlab_specs(w, 1)
    net = fresh_net(w)
    net.train()
    optimizer = KerasOptimizer(spec.optimizer, net.parameters())
    schedule = make_schedule(spec.schedule, spec.optimizer.learning_rate)
    x, y, batch = data.train.x, data.train.y, w.batch_size
    n = len(x)
    order = epoch_order(n)
    losses = torch.empty(steps)
    correct = torch.zeros((), dtype=torch.int64)
    spent: dict[str, float] = defaultdict(float)
    warm = 50
    for i in range(-warm, steps):
        j = i % (n // batch)
        t0 = pc()
        lr = schedule.learning_rate(i)
        for group in optimizer.param_groups:
            group["lr"] = lr
        rows = order[j * batch : (j + 1) * batch]
        xb, yb = x[rows], y[rows]
        t1 = pc()
        logits = net(xb)
        loss = batch_loss(logits, yb, spec, True) + net.penalty()
        t2 = pc()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t3 = pc()
        optimizer.step()
        t4 = pc()
        losses[max(i, 0)] = loss.detach()
        correct += correct_count(logits.detach(), yb)
        if i % 32 == 31:
            bool((~torch.isfinite(losses[max(i - 31, 0) : i + 1])).any())
        t5 = pc()
        if i >= 0:
            for name, a, b in (
                ("gather", t0, t1),
                ("forward+loss", t1, t2),
                ("backward", t2, t3),
                ("optimizer", t3, t4),
                ("bookkeeping", t4, t5),
            ):
                spent[name] += b - a
    return {k: v / steps * 1e6 for k, v in spent.items()}


def torch_phases(data: Any, w: Workload, steps: int) -> dict[str, float]:
    """µs per step of each phase of the plain loop of run.py (without .item() syncs)."""
    torch.manual_seed(0)
    model = torch_model(w)
    optimizer = torch_optimizer(w, model)
    x, y, batch = data.train.x, data.train.y, w.batch_size
    n = len(x)
    perm = torch.randperm(n)
    spent: dict[str, float] = defaultdict(float)
    for i in range(-50, steps):
        j = i % (n // batch)
        t0 = pc()
        idx = perm[j * batch : (j + 1) * batch]
        xb, yb = x[idx], y[idx]
        t1 = pc()
        logits = model(xb)
        loss = F.cross_entropy(logits, yb)
        t2 = pc()
        optimizer.zero_grad()
        loss.backward()
        t3 = pc()
        optimizer.step()
        t4 = pc()
        if i >= 0:
            for name, a, b in (
                ("gather", t0, t1),
                ("forward+loss", t1, t2),
                ("backward", t2, t3),
                ("optimizer", t3, t4),
            ):
                spent[name] += b - a
    return {k: v / steps * 1e6 for k, v in spent.items()}


# --- 2. GEMM floor ---


def gemm_floor(w: Workload, steps: int) -> float:
    """µs per step of the step's matrix products alone, on preallocated outputs."""
    dims, batch = w.dims, w.batch_size
    layers = list(itertools.pairwise(dims))
    acts = [torch.randn(batch, i) for i, _ in layers]
    grads = [torch.randn(batch, o) for _, o in layers]
    kernels = [torch.randn(i, o) for i, o in layers]
    biases = [torch.randn(o) for _, o in layers]
    outs = [torch.empty(batch, o) for _, o in layers]
    dws = [torch.empty(i, o) for i, o in layers]
    dxs = [torch.empty(batch, i) for i, _ in layers]

    def step() -> None:
        for a, k, b, o in zip(acts, kernels, biases, outs, strict=True):
            torch.addmm(b, a, k, out=o)
        for li in reversed(range(len(layers))):
            torch.mm(acts[li].T, grads[li], out=dws[li])
            if li > 0:
                torch.mm(grads[li], kernels[li].T, out=dxs[li])

    for _ in range(50):
        step()
    started = pc()
    for _ in range(steps):
        step()
    return (pc() - started) / steps * 1e6


# --- 3. hand-written step ---


class HandStep:
    """Forward, analytic backward and Keras's update with no autograd and no per-tensor loop.

    Weights live in one flat buffer (kernels (in, out) and biases as views), gradients in a
    second one, so Adam is five elementwise kernels over all P weights; SGD needs no
    gradient buffer at all: each update is fused into its GEMM (`addmm_` with alpha = −lr).
    The arithmetic is Keras's (and mnistlab's): mean cross-entropy from the logits, SGD
    w −= lr·g, Adam with ε added to sqrt(v) and the bias correction folded into the rate.
    """

    def __init__(self, net: Any, w: Workload) -> None:
        dense = net.dense_layers
        sizes = [t.numel() for d in dense for t in (d.kernel, d.bias)]
        self.flat = torch.cat([t.detach().reshape(-1) for d in dense for t in (d.kernel, d.bias)])
        self.grad = torch.zeros_like(self.flat)
        views = self.flat.split(sizes)
        gviews = self.grad.split(sizes)
        self.kernels = [
            views[2 * k].view(d.in_features, d.out_features) for k, d in enumerate(dense)
        ]
        self.biases = [views[2 * k + 1] for k in range(len(dense))]
        self.dkernels = [gviews[2 * k].view_as(self.kernels[k]) for k in range(len(dense))]
        self.dbiases = [gviews[2 * k + 1] for k in range(len(dense))]
        self.relu = w.activation == "relu"
        self.adam = w.optimizer == "adam"
        self.lr = w.learning_rate
        self.m = torch.zeros_like(self.flat)
        self.v = torch.zeros_like(self.flat)
        self.t = 0

    def step(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        acts = [xb]
        h = xb
        last = len(self.kernels) - 1
        for k in range(last):
            h = torch.addmm(self.biases[k], h, self.kernels[k])
            h = h.relu_() if self.relu else h.sigmoid_()
            acts.append(h)
        logits = torch.addmm(self.biases[last], h, self.kernels[last])
        correct = (logits.argmax(1) == yb).sum()
        dz = torch.log_softmax(logits, 1)
        loss = F.nll_loss(dz, yb)
        dz.exp_()
        dz[torch.arange(len(yb)), yb] -= 1.0
        dz.div_(len(yb))
        for k in range(last, -1, -1):
            upstream = torch.mm(dz, self.kernels[k].T) if k > 0 else None  # before W moves
            if self.adam:
                torch.mm(acts[k].T, dz, out=self.dkernels[k])
                torch.sum(dz, 0, out=self.dbiases[k])
            else:  # SGD fused: W −= lr · aᵀ·dz in one GEMM
                self.kernels[k].addmm_(acts[k].T, dz, alpha=-self.lr)
                self.biases[k].sub_(dz.sum(0), alpha=self.lr)
            if upstream is not None:
                a = acts[k]
                dz = upstream.mul_(a > 0) if self.relu else upstream.mul_(a * (1 - a))
        if self.adam:
            self.t += 1
            b1, b2, eps = 0.9, 0.999, 1e-7
            alpha = self.lr * (1 - b2**self.t) ** 0.5 / (1 - b1**self.t)
            self.m.lerp_(self.grad, 1 - b1)
            self.v.lerp_(self.grad.square(), 1 - b2)
            self.flat.addcdiv_(self.m, self.v.sqrt().add_(eps), value=-alpha)
        return loss, correct


def hand_check(data: Any, w: Workload, steps: int = 50) -> float:
    """Max |w_hand − w_fit| after `steps` steps from the same weights and batches.

    Checked over a few steps: over a whole epoch Adam amplifies float32 rounding chaotically
    (its update is ~lr·sign(g) for tiny gradients), so two correct orders of summation
    drift apart by ~1e-2 there while agreeing to ~1e-7 over the first 50 steps.
    """
    rows = steps * w.batch_size
    subset = Split(data.train.x[:rows], data.train.y[:rows])
    _, spec = mnistlab_specs(w, 1)
    reference = fresh_net(w)
    fit(reference, subset, spec, seed=0, threads=torch.get_num_threads())  # keep the count
    hand = HandStep(fresh_net(w), w)
    order = epoch_order(rows)
    for i in range(steps):
        batch = order[i * w.batch_size : (i + 1) * w.batch_size]
        hand.step(subset.x[batch], subset.y[batch])
    fitted = torch.cat(
        [t.detach().reshape(-1) for d in reference.dense_layers for t in (d.kernel, d.bias)]
    )
    return float((fitted - hand.flat).abs().max())


def hand_epoch(data: Any, w: Workload) -> float:
    """µs per step of `HandStep` over one epoch, with fit's bookkeeping (loss, accuracy)."""
    hand = HandStep(fresh_net(w), w)
    x, y, batch = data.train.x, data.train.y, w.batch_size
    n = len(x)
    order = epoch_order(n)
    steps = -(-n // batch)
    losses = torch.empty(steps)
    correct = torch.zeros((), dtype=torch.int64)
    started = pc()
    for i in range(steps):
        rows = order[i * batch : (i + 1) * batch]
        loss, hits = hand.step(x[rows], y[rows])
        losses[i] = loss
        correct += hits
    return (pc() - started) / steps * 1e6


# --- optimiser alternatives ---


def adam_alternatives(w: Workload) -> dict[str, float]:
    """µs per Adam step over the workload's parameters (warm), and the fused rule's error.

    torch's fused Adam adds ε to sqrt(v̂); Keras adds it to sqrt(v) and folds the bias
    correction into the rate. They are the same rule when torch's ε is set each step to
    ε_keras / sqrt(1 − β2ᵗ), which `torch.optim.Adam(fused=True)` allows through its
    param_group.
    """
    from mnistlab.training.optimizers import KerasOptimizer as make

    _, spec = mnistlab_specs(w, 1)
    keras_net, torch_net = fresh_net(w), fresh_net(w)
    keras_opt = make(spec.optimizer, keras_net.parameters())
    fused = torch.optim.Adam(torch_net.parameters(), lr=w.learning_rate, fused=True)
    gen = torch.Generator().manual_seed(0)
    grads = [
        [torch.randn(p.shape, generator=gen) * 1e-2 for p in keras_net.parameters()]
        for _ in range(20)
    ]

    def fused_step() -> None:
        group = fused.param_groups[0]
        t = int(fused.state[group["params"][0]].get("step", 0)) + 1 if fused.state else 1
        group["eps"] = 1e-7 / (1 - 0.999**t) ** 0.5
        fused.step()

    for g in grads:  # same gradients into both: the rules must agree
        for p, q, gi in zip(keras_net.parameters(), torch_net.parameters(), g, strict=True):
            p.grad, q.grad = gi.clone(), gi.clone()
        keras_opt.step()
        fused_step()
    error = max(
        float((p - q).detach().abs().max())
        for p, q in zip(keras_net.parameters(), torch_net.parameters(), strict=True)
    )

    def timed(step: Any, n: int = 200) -> float:
        for _ in range(10):
            step()
        started = pc()
        for _ in range(n):
            step()
        return (pc() - started) / n * 1e6

    return {
        "mnistlab Adam.step": timed(keras_opt.step),
        "torch Adam(fused=True), Keras ε": timed(fused_step),
        "max |Δw| after 20 steps": error,
    }


# --- 4. fit per epoch ---


def fit_epochs(data: Any, w: Workload, threads: int, engine: str = "auto") -> list[float]:
    _, spec = mnistlab_specs(w, 3)
    net = fresh_net(w)
    history = fit(net, data.train, spec, seed=0, threads=threads, engine=engine)  # type: ignore[arg-type]
    return history.history["time"]


# --- 5. profiler ---


def profile_fit(data: Any, w: Workload, steps: int = 300) -> None:
    from torch.profiler import ProfilerActivity, profile

    rows = steps * w.batch_size
    subset = Split(data.train.x[:rows], data.train.y[:rows])
    _, spec = mnistlab_specs(w, 1)
    net = fresh_net(w)
    fit(net, subset, spec, seed=0)  # warm
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        started = pc()
        fit(net, subset, spec, seed=0)
        wall = pc() - started
    events = prof.key_averages()
    print(events.table(sort_by="self_cpu_time_total", row_limit=14))
    total_self = sum(e.self_cpu_time_total for e in events) / 1e6
    print(
        f"profiled fit: {wall / steps * 1e6:.0f} µs/step wall (profiler on), "
        f"{total_self / steps * 1e6:.0f} µs/step inside operators, "
        f"{(wall - total_self) / steps * 1e6:.0f} µs/step outside (Python, autograd engine, "
        "profiler itself)"
    )


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--only", default="a,b")
    p.add_argument("--threads", default="1,2", help="torch thread counts to compare")
    p.add_argument("--no-profiler", action="store_true")
    args = p.parse_args()
    data = load_data(DataSpec(dataset="mnist"))
    workloads = {"a": WORKLOAD_A, "b": WORKLOAD_B}
    for key in args.only.split(","):
        w = workloads[key]
        steps = 1000 if key == "a" else 6000
        print(f"\n=== ({key}) {w.title}: {len(data.train.x) // w.batch_size} steps per epoch ===")
        for threads in (int(t) for t in args.threads.split(",")):
            configure_threads(threads)
            wait_for_quiet()
            with LoadMeter() as meter:
                ml = mnistlab_phases(data, w, steps)
                pt = torch_phases(data, w, steps)
                floor = gemm_floor(w, steps)
                diff = hand_check(data, w)
                hand_us = hand_epoch(data, w)
                epochs = fit_epochs(data, w, threads)
                autograd = fit_epochs(data, w, threads, "autograd") if w.optimizer == "sgd" else []
                adam = adam_alternatives(w) if w.optimizer == "adam" else {}
            print(f"-- threads {threads} (other processes used {meter.foreign or 0:.2f} cores)")
            print(
                "  mnistlab autograd step µs: "
                + ", ".join(f"{k} {v:.0f}" for k, v in ml.items())
                + f"; total {sum(ml.values()):.0f}"
            )
            print(
                "  plain torch step µs: "
                + ", ".join(f"{k} {v:.0f}" for k, v in pt.items())
                + f"; total {sum(pt.values()):.0f}"
            )
            print(f"  GEMMs alone: {floor:.0f} µs/step")
            print(
                f"  hand-written step: {hand_us:.0f} µs/step over one epoch; "
                f"max |w - fit's w| after 50 steps {diff:.1e}"
            )
            steps_per_epoch = -(-len(data.train.x) // w.batch_size)
            print(
                f"  mnistlab fit epochs: {', '.join(f'{t:.2f}' for t in epochs)} s "
                f"(median after warm-up {statistics.median(epochs[1:]):.2f} s = "
                f"{statistics.median(epochs[1:]) / steps_per_epoch * 1e6:.0f} µs/step)"
            )
            if autograd:
                print(
                    f"  mnistlab fit(engine='autograd') epochs: "
                    f"{', '.join(f'{t:.2f}' for t in autograd)} s"
                )
            if adam:
                print("  Adam alone: " + ", ".join(f"{k} {v:.3g}" for k, v in adam.items()))
        if not args.no_profiler:
            configure_threads(int(args.threads.split(",")[-1]))
            wait_for_quiet()
            profile_fit(data, w)
    return 0


if __name__ == "__main__":
    sys.exit(main())
