"""Which rows each training step reads, and the run's augmentation of them.

By default an epoch is one pass over the data, reshuffled (Keras's `fit`). With
`steps_per_epoch` it is that many batches of an endless stream, as Keras's
`fit_generator` reads a `flow(shuffle=True)` iterator: each pass over the data is a new
permutation, its last batch may be partial, and the stream goes on across epochs.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mnistlab.data.augment import AugmentSpec, augment_batch

Rows = slice | Tensor
"""One batch's rows: a slice (no shuffling) or an index tensor."""


def pass_order(n: int, generator: torch.Generator) -> Tensor:
    """The row order of one shuffled pass over `n` examples: one `randperm` from the run's
    shuffle generator. Every engine and the stack draw it here, so a run's batches are the
    same on each (Keras reshuffles once per epoch too)."""
    return torch.randperm(n, generator=generator)


class BatchStream:
    """The row selections of each epoch for `n` examples in batches of `batch`.

    Parameters
    ----------
    n, batch : examples and batch size.
    shuffle : a new random order every pass (else the stored order).
    steps : batches per epoch; None = one pass.
    generator : the run's shuffling stream (CPU).
    device : where index tensors go (the data's device).
    """

    def __init__(
        self,
        n: int,
        batch: int,
        shuffle: bool,
        steps: int | None,
        generator: torch.Generator,
        device: torch.device,
    ) -> None:
        self.n, self.batch, self.shuffle, self.steps = n, batch, shuffle, steps
        self.generator, self.device = generator, device
        self._pass: list[Rows] = []  # what is left of the current pass

    def _new_pass(self) -> list[Rows]:
        steps = math.ceil(self.n / self.batch)
        if not self.shuffle:
            return [slice(i * self.batch, (i + 1) * self.batch) for i in range(steps)]
        order = pass_order(self.n, self.generator).to(self.device)
        return [order[i * self.batch : (i + 1) * self.batch] for i in range(steps)]

    def epoch(self) -> list[Rows]:
        """The next epoch's batches, in order."""
        if self.steps is None:
            return self._new_pass()
        batches: list[Rows] = []
        while len(batches) < self.steps:
            if not self._pass:
                self._pass = self._new_pass()
            take = min(self.steps - len(batches), len(self._pass))
            batches += self._pass[:take]
            self._pass = self._pass[take:]
        return batches

    def size(self, rows: Rows) -> int:
        """How many examples a batch holds."""
        return len(range(self.n)[rows]) if isinstance(rows, slice) else len(rows)


def image_shape(x: Tensor) -> tuple[int, int]:
    """(H, W) of a batch of one-channel images stored (N, H, W), (N, 1, H, W) or flat square."""
    if x.ndim in (3, 4):
        return (x.shape[-2], x.shape[-1])
    side = math.isqrt(x.shape[1])
    if x.ndim != 2 or side * side != x.shape[1]:
        raise ValueError(f"augmentation needs images; inputs of shape {tuple(x.shape)} are not")
    return (side, side)


class Augmenter:
    """Applies `spec`'s random transforms to each batch, from its own seeded stream."""

    def __init__(self, spec: AugmentSpec, shape: tuple[int, int], seed: int) -> None:
        self.spec, self.shape = spec, shape
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, x: Tensor) -> Tensor:
        """A transformed copy of the batch `x`, same shape and device."""
        return augment_batch(x, self.spec, self.shape, self.generator)
