"""Regression data: a CSV with named x and y columns, min-max scaled, split train/test by fraction.

`DataSpec.regression` turns a data spec into a regression one: `path` names the CSV, the
`x` and `y` columns are read as float64, scaled to [0, 1] (min-max fitted on all the rows,
as the coursework did, or on the training rows only), and split by a seeded permutation
into train and test (the test part is the `ceil(n · test_fraction)` rows the permutation
puts first; both parts keep their file order). Targets are float32 (N, len(y)).
"""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field, NonNegativeInt

from mnistlab.errors import DataError, SpecError
from mnistlab.spec import Spec

FINGERPRINT_VERSION = "mnistlab-regression/1"


class RegressionSpec(Spec):
    """Which columns are inputs and targets, how they are scaled, how the rows are split."""

    x: tuple[str, ...] = Field(min_length=1, description="input column names, in order")
    y: tuple[str, ...] = Field(min_length=1, description="target column names, in order")
    test_fraction: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.4, description="share of rows held out as the test split (rounded up); 0: none"
    )
    split_seed: NonNegativeInt = Field(0, description="seed of the train/test permutation")
    scaling: Literal["minmax", "none"] = "minmax"
    scaler_fit: Literal["data", "train"] = Field(
        "data", description="data: min-max over all rows (the coursework); train: train rows"
    )


@dataclass(frozen=True)
class Table:
    """A CSV's named float columns and the SHA256 of the file's bytes."""

    name: str
    columns: dict[str, np.ndarray]
    fingerprint: str
    source: Path

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


@dataclass(frozen=True)
class MinMax:
    """x -> (x − low) / span per column; `invert` maps scaled values back to the units."""

    low: np.ndarray
    span: np.ndarray

    def apply(self, values: np.ndarray) -> np.ndarray:
        return (values - self.low) / self.span

    def invert(self, values: np.ndarray) -> np.ndarray:
        """Scaled values (N, K) back in the file's units."""
        return np.asarray(values) * self.span + self.low


def read_table(path: Path, name: str) -> Table:
    """Read a CSV with a header row; every column that parses as numbers becomes float64.

    Raises
    ------
    DataError
        The file cannot be read or has no header.
    """
    try:
        raw = path.read_bytes()
        rows = list(csv.reader(raw.decode("utf-8").splitlines()))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the CSV: {exc}") from None
    if not rows:
        raise DataError(f"{path}: the CSV is empty; it needs a header row of column names")
    header, body = [h.strip() for h in rows[0]], [r for r in rows[1:] if r]
    columns: dict[str, np.ndarray] = {}
    for i, column in enumerate(header):
        try:
            columns[column] = np.array([float(r[i]) for r in body], dtype=np.float64)
        except (ValueError, IndexError):
            continue  # not numeric: only a problem when the spec names it
    return Table(name, columns, hashlib.sha256(raw).hexdigest(), path)


def check_columns(spec: RegressionSpec, table: Table, header: list[str] | None = None) -> None:
    """Every named column must be a numeric column of the table.

    Raises
    ------
    SpecError
        `data.regression.x` or `.y` names a column the CSV lacks (or one that is not numeric).
    """
    for field in ("x", "y"):
        for column in getattr(spec, field):
            if column not in table.columns:
                known = ", ".join(table.columns) or "none"
                raise SpecError(
                    f"data.regression.{field}: {table.source} has no numeric column "
                    f"{column!r}; its numeric columns: {known}"
                )


def split_rows(n: int, spec: RegressionSpec) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices (each sorted): `ceil(n·test_fraction)` test rows, seeded."""
    n_test = math.ceil(n * spec.test_fraction)
    if spec.test_fraction > 0 and not 0 < n_test < n:
        raise SpecError(
            f"data.regression.test_fraction: {spec.test_fraction} of {n} rows leaves "
            "no training or no test rows"
        )
    perm = np.random.default_rng(spec.split_seed).permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def fit_minmax(spec: RegressionSpec, values: np.ndarray, train: np.ndarray) -> MinMax:
    """Min-max over all rows or over the training rows; a zero range gets span 1."""
    k = values.shape[1]
    if spec.scaling == "none":
        return MinMax(np.zeros(k), np.ones(k))
    rows = values if spec.scaler_fit == "data" else values[train]
    low = rows.min(axis=0)
    span = rows.max(axis=0) - low
    return MinMax(low, np.where(span == 0, 1.0, span))


@dataclass(frozen=True)
class RegressionSplits:
    """Scaled float32 x (N, len(x)) and y (N, len(y)) of each part, and the scalers used."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor | None
    y_test: torch.Tensor | None
    x_scaler: MinMax
    y_scaler: MinMax
    train_rows: np.ndarray
    test_rows: np.ndarray


def regression_splits(
    table: Table, spec: RegressionSpec, device: torch.device | str = "cpu"
) -> RegressionSplits:
    """The scaled train and test tensors a regression spec asks of a table."""
    check_columns(spec, table)
    x = np.stack([table.columns[c] for c in spec.x], axis=1)
    y = np.stack([table.columns[c] for c in spec.y], axis=1)
    train, test = split_rows(len(table), spec)
    x_scaler, y_scaler = fit_minmax(spec, x, train), fit_minmax(spec, y, train)
    xs, ys = x_scaler.apply(x), y_scaler.apply(y)

    def tensor(values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(values.astype(np.float32)).to(device)

    has_test = len(test) > 0
    return RegressionSplits(
        tensor(xs[train]),
        tensor(ys[train]),
        tensor(xs[test]) if has_test else None,
        tensor(ys[test]) if has_test else None,
        x_scaler,
        y_scaler,
        train,
        test,
    )
