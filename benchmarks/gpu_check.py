"""GPU check: mnistlab's benchmark workloads on CUDA against the CPU engine, timed per epoch.

    .venv/bin/python benchmarks/gpu_check.py [--epochs 2] [--cnn-rows 10000]
    benchmarks/gpu_check.sh                  # the same, from anywhere, with the GPU named

Workloads (full MNIST, from benchmarks/run.py unless said):
  a      784-512-128-10 ReLU, Adam 1e-3, batch 128
  b      784-30-10 sigmoid, SGD 0.1, batch 10
  cnn    the CNN of studies/best-digit-classifier.yaml (augmentation, schedule and all),
         on the first `--cnn-rows` training images, validated on the test set
  stack  32 models 784-50-30-10 ReLU, Adam, batch 128 (run.py's workload c grid), stacked

Two comparisons per workload. One step: the same initial model on CPU and on CUDA, one batch,
outputs and gradients equal within ONE_STEP_RTOL of their largest value (TF32 is turned off,
so the gap is float32 reordering only). Training: the final test accuracy within
ACCURACY_GAP of the CPU's (thousands of steps amplify the reordering; equal is not expected).
Prints each engine's per-epoch times; exits 1 if a comparison fails, 2 without CUDA.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from run import (  # (benchmarks/run.py, this folder)
    CLASSES,
    INPUT_DIM,
    ROOT,
    WORKLOAD_A,
    WORKLOAD_B,
    WORKLOAD_C,
    Result,
    Workload,
    mnistlab_specs,
    run_mnistlab,
    run_stack,
)
from torch import nn

from mnistlab.data import Data, DataSpec, load_data
from mnistlab.data.cache import DataCache
from mnistlab.data.spec import SubsetHead
from mnistlab.models import build_mlp, build_model
from mnistlab.runtime import make_generator
from mnistlab.studies.execute import RunTask, execute
from mnistlab.studies.expand import expand
from mnistlab.studies.loading import load_study
from mnistlab.training.state import RunSeeds

CNN_STUDY = ROOT / "studies" / "best-digit-classifier.yaml"
STACK_MEMBERS = 32
ONE_STEP_BATCH = 128
ONE_STEP_RTOL = 1e-4
"""Largest CPU-CUDA gap of one step's outputs and gradients, relative to their largest value."""
ACCURACY_GAP = 0.01
"""Largest CPU-CUDA gap of the final test accuracy after training (1 percentage point)."""
NO_CUDA = 2


@dataclass
class Check:
    """One workload on the CPU and on the target: one-step gap, each one's training result."""

    workload: str
    step_gap: float
    cpu: Result
    target: Result

    @property
    def accuracy_gap(self) -> float:
        return abs((self.cpu.accuracy or 0.0) - (self.target.accuracy or 0.0))

    @property
    def ok(self) -> bool:
        return self.step_gap <= ONE_STEP_RTOL and self.accuracy_gap <= ACCURACY_GAP


def one_step_gap(net: nn.Module, x: torch.Tensor, target: torch.device) -> float:
    """Largest gap between CPU and `target` of a model's outputs and gradients on one batch,
    relative to the largest magnitude of each (inference mode: no dropout draws)."""
    net.eval()
    twin = copy.deepcopy(net).to(target)
    weights = torch.randn(net(x[:1]).shape[1:], generator=make_generator(0))
    grads = []
    for model, device in ((net, torch.device("cpu")), (twin, target)):
        model.zero_grad()
        out = model(x.to(device))
        (out * weights.to(device)).sum().backward()
        tensors = [out.detach(), *(p.grad for p in model.parameters() if p.grad is not None)]
        grads.append([t.double().cpu() for t in tensors])
    gaps = [
        float((a - b).abs().max() / a.abs().max().clamp_min(1e-12))
        for a, b in zip(*grads, strict=True)
    ]
    return max(gaps)


def _mlp(w: Workload, seed: int = 0) -> nn.Module:
    model_spec, _ = mnistlab_specs(w, 1)
    return build_mlp(model_spec, INPUT_DIM, CLASSES, make_generator(RunSeeds.from_seed(seed).init))


def check_mlp(w: Workload, data: tuple[Data, Data], epochs: int, target: torch.device) -> Check:
    """An MLP workload of run.py, by `run.run_mnistlab` (`fit`) on each device."""
    gap = one_step_gap(_mlp(w), data[0].train.x[:ONE_STEP_BATCH], target)
    return Check(w.key, gap, *(run_mnistlab(d, w, epochs) for d in data))


def check_stack(data: tuple[Data, Data], epochs: int, target: torch.device) -> Check:
    """run.py's workload c grid of `STACK_MEMBERS` models, by `run.run_stack` (`fit_stack`)."""
    gap = one_step_gap(_mlp(WORKLOAD_C), data[0].train.x[:ONE_STEP_BATCH], target)
    results = (run_stack(d, WORKLOAD_C, epochs, STACK_MEMBERS) for d in data)
    return Check(f"stack of {STACK_MEMBERS}", gap, *results)


def check_cnn(epochs: int, rows: int, target: torch.device) -> Check:
    """The study's CNN run, trimmed to `epochs` on `rows` images, through `execute`."""
    cache = DataCache()
    spec = load_study(CNN_STUDY)
    run = expand(spec, cache.fingerprint)[0]
    config = run.config.model_copy(
        update={
            "data": run.config.data.model_copy(update={"train_subset": SubsetHead(n=rows)}),
            "training": run.config.training.model_copy(update={"epochs": epochs}),
        }
    )
    run = replace(run, config=config)
    data = cache.data(config.data, torch.device("cpu"))
    init = make_generator(RunSeeds.from_seed(run.seed).init)
    net = build_model(config.model, data.input_shape, data.n_classes, init)
    gap = one_step_gap(net, data.train.x[:ONE_STEP_BATCH], target)
    results = []
    with tempfile.TemporaryDirectory(prefix="mnistlab-gpu-check-") as tmp:
        for device in ("cpu", str(target)):
            task = RunTask((run,), Path(tmp) / device, device=device)
            (result,) = execute(task, cache)
            if result.error:
                raise RuntimeError(f"the CNN failed on {device}: {result.error}")
            results.append(
                Result(
                    "cnn",
                    f"mnistlab {device}",
                    result.history["time"],
                    result.metrics["val_accuracy"],
                )
            )
    return Check(f"cnn, {rows} rows", gap, *results)


def _times(r: Result) -> str:
    median = statistics.median(r.measured)
    return f"{median:7.3f} s/epoch (each: {', '.join(f'{t:.3f}' for t in r.epoch_times)})"


def report(checks: Sequence[Check]) -> bool:
    """Print one block per workload; return whether every comparison held."""
    for c in checks:
        mark = "ok" if c.ok else "FAILED"
        print(f"\n{c.workload}: {mark}")
        print(f"  one step: largest gap {c.step_gap:.2e} (limit {ONE_STEP_RTOL:.0e})")
        for name, r in (("cpu   ", c.cpu), ("target", c.target)):
            print(f"  {name} {_times(r)}  test acc {r.accuracy:.4f}")
        print(f"  accuracy gap {c.accuracy_gap:.4f} (limit {ACCURACY_GAP})")
        print(f"  speed-up over cpu {c.cpu.median / c.target.median:.1f}x")
    return all(c.ok for c in checks)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="epochs per workload (>= 2)")
    parser.add_argument("--cnn-rows", type=int, default=10_000, help="CNN training images")
    parser.add_argument("--only", default="a,b,cnn,stack", help="comma-separated workloads")
    parser.add_argument(
        "--target", default="cuda", help="device checked against the CPU (cpu: test this script)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    target = torch.device(args.target)
    if target.type == "cuda" and not torch.cuda.is_available():
        print(
            f"gpu_check: CUDA is not available (torch {torch.__version__}, built for CUDA "
            f"{torch.version.cuda or 'none'}): nothing to check on this machine",
            file=sys.stderr,
        )
        return NO_CUDA
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 on both sides: gaps are reordering
    torch.backends.cudnn.allow_tf32 = False
    name = torch.cuda.get_device_name(target) if target.type == "cuda" else str(target)
    print(f"target: {name}, torch {torch.__version__}")
    wanted = set(args.only.split(","))
    spec = DataSpec(dataset="mnist")
    data = (load_data(spec), load_data(spec, device=target))
    checks = []
    for w in (WORKLOAD_A, WORKLOAD_B):
        if w.key in wanted:
            checks.append(check_mlp(w, data, args.epochs, target))
    if "cnn" in wanted:
        checks.append(check_cnn(args.epochs, args.cnn_rows, target))
    if "stack" in wanted:
        checks.append(check_stack(data, args.epochs, target))
    return 0 if report(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
