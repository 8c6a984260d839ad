"""Where and how computations run: device choice, thread counts and seeded generators."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from mnistlab.errors import SpecError


def flush_denormals() -> None:
    """Compute float denormals as zero on the CPU, as TensorFlow does (Keras-faithful, faster).

    Adam's moments of rarely-updated weights decay through the denormal range, where x86
    arithmetic takes a 10-40× slower path (docs/performance.md). OpenMP worker threads copy
    the setting when they start, so it must run before torch's first parallel operation:
    importing mnistlab does it; a program that used torch before must call it first.
    """
    torch.set_flush_denormal(True)


def select_device(name: str = "auto") -> torch.device:
    """CUDA when present (or when asked), else CPU; `name` is "auto", "cpu" or "cuda[:i]"."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(f"device: CUDA was asked for but is not available, got {name!r}")
    return device


@contextmanager
def run_stream(device: torch.device) -> Iterator[None]:
    """On CUDA, one run's work on a CUDA stream of its own, ordered after what came before
    and before what follows: runs in one process never share a stream. Elsewhere nothing."""
    if device.type != "cuda":
        yield
        return
    before = torch.cuda.current_stream(device)
    stream = torch.cuda.Stream(device)
    stream.wait_stream(before)
    with torch.cuda.stream(stream):
        yield
    before.wait_stream(stream)


SMALL_GEMM = 1_000_000
"""Multiply-adds of a step's largest GEMM below which one thread beats two: handing such a
GEMM to OpenMP costs more than it saves (784-30-10 at batch 10, 235,200: 0.65 s/epoch on 1
thread, 0.80 s on 2; docs/performance.md), and one thread leaves the other core free."""


def default_threads(model: torch.nn.Module, batch_size: int) -> int | None:
    """One thread for dense models whose largest GEMM is small, else None (every core).

    Only for models whose weights are all matrices or vectors (MLPs): a convolution's GEMM
    is larger than its kernel says, so those keep every core.
    """
    shapes = [p.shape for p in model.parameters()]
    if not shapes or any(len(shape) > 2 for shape in shapes):
        return None
    largest = max(shape.numel() for shape in shapes)  # in·out of the widest Dense kernel
    return 1 if batch_size * largest < SMALL_GEMM else None


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads (default: every core this process may use); return it."""
    count = threads or len(os.sched_getaffinity(0))
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


def make_generator(seed: int, device: torch.device | None = None) -> torch.Generator:
    """A torch generator seeded for one run, so runs never share hidden global RNG state."""
    generator = torch.Generator(device=device or "cpu")
    generator.manual_seed(seed)
    return generator


def available_memory() -> int | None:
    """Bytes of memory this machine can give now (Linux MemAvailable), None when unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None
