"""Where and how computations run: device choice, thread counts and seeded generators."""

from __future__ import annotations

import os

import torch

from mnistlab.errors import SpecError


def select_device(name: str = "auto") -> torch.device:
    """CUDA when present (or when asked), else CPU; `name` is "auto", "cpu" or "cuda[:i]"."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(f"device: CUDA was asked for but is not available, got {name!r}")
    return device


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
