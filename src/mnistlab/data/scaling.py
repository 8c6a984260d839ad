"""Pixel scalers: fitted on uint8 rows (exact statistics), applied to float32 tensors.

`standardize` is scikit-learn's StandardScaler (per feature, population std, a feature with
zero variance gets scale 1); `minmax` is MinMaxScaler to [0, 1] (zero range gets scale 1);
`divide-255` is Keras's `x.astype("float32") / 255`. Statistics are exact (integer sums in
int64, one float64 division) and applied in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

CHUNK_ROWS = 4096  # rows per int64 block when summing squares: bounds the temporary memory


@dataclass(frozen=True)
class Scaler:
    """x -> (x - shift) / scale, feature-wise; shift and scale are float64 arrays of (D,) or ()."""

    kind: str
    shift: np.ndarray
    scale: np.ndarray

    def apply(self, x: Tensor) -> Tensor:
        """Scale float32 rows in place (the caller owns `x`) and return them.

        Parameters
        ----------
        x : Tensor of shape (N, D), float32
            Unscaled pixel values; overwritten.

        Returns
        -------
        Tensor of shape (N, D), float32
            `x` itself, scaled.
        """
        if self.kind == "none":
            return x
        if self.kind == "divide-255":
            return x.div_(255.0)  # float32 / 255, exactly Keras's x.astype("float32") / 255
        # in float64, then rounded once to float32, as scikit-learn's float64 output is
        shift = torch.as_tensor(self.shift, dtype=torch.float64, device=x.device)
        scale = torch.as_tensor(self.scale, dtype=torch.float64, device=x.device)
        for start in range(0, len(x), CHUNK_ROWS):
            block = x[start : start + CHUNK_ROWS]
            block.copy_(block.to(torch.float64).sub_(shift).div_(scale))
        return x


def fit_scaler(kind: str, x: np.ndarray) -> Scaler:
    """Fit a scaler on uint8 rows.

    Parameters
    ----------
    kind : str
        "none", "divide-255", "standardize" or "minmax".
    x : np.ndarray of shape (N, D), uint8
        The rows to fit on (the training split, unless per-split fitting is asked for).

    Returns
    -------
    Scaler
        Its shift and scale are float64 arrays of shape (D,) (scalars for none and
        divide-255).
    """
    if kind in ("none", "divide-255"):
        return Scaler(kind, np.float64(0.0), np.float64(255.0 if kind == "divide-255" else 1.0))
    if len(x) == 0:
        raise ValueError(f"cannot fit a {kind} scaler on 0 rows")
    if kind == "standardize":
        mean, std = _mean_std(x)
        return Scaler(kind, mean, np.where(std == 0.0, 1.0, std))
    if kind == "minmax":
        low = x.min(axis=0).astype(np.float64)
        span = x.max(axis=0).astype(np.float64) - low
        return Scaler(kind, low, np.where(span == 0.0, 1.0, span))
    raise ValueError(f"unknown scaling {kind!r}")


def _mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and population std of uint8 rows, from exact integer sums."""
    n = len(x)
    total = x.sum(axis=0, dtype=np.int64)
    squares = np.zeros(x.shape[1], dtype=np.int64)
    for start in range(0, n, CHUNK_ROWS):
        block = x[start : start + CHUNK_ROWS].astype(np.int64)
        squares += np.einsum("ij,ij->j", block, block)
    # n * sum(x^2) - (sum x)^2 is an exact integer (< 2^63 for n < 10^7 rows of uint8)
    variance = (n * squares - total * total).astype(np.float64) / float(n) ** 2
    return total / n, np.sqrt(variance)
