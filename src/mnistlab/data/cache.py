"""Data read once and shared: datasets, regression tables and splits, per data spec.

A `DataCache` belongs to whoever runs or reads a study (the runner, one per worker process,
an analysis session, `mnistlab predict`) and is handed down to what needs data, so that the
runs of a study read each dataset once and make each split once.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from mnistlab.data.dataset import Dataset, read_dataset
from mnistlab.data.features import check_steps
from mnistlab.data.pipeline import (
    Data,
    data_fingerprint,
    make_regression_data,
    make_splits,
    read_table,
    regression_fingerprint,
)
from mnistlab.data.regression import Table, check_columns
from mnistlab.data.spec import DataSpec

SOURCE_FIELDS = frozenset({"dataset", "path", "format", "label_column"})
"""The DataSpec fields that say which files are read (the rest shape the splits)."""


class DataCache:
    """Datasets read once, regression tables read once and splits made once per data spec.

    `data_dir` is the explicit folder searched first for every dataset (`--data-dir`).
    """

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = data_dir
        self._datasets: dict[str, Dataset] = {}
        self._tables: dict[str, Table] = {}
        self._splits: dict[tuple[str, str], Data] = {}

    def dataset(self, spec: DataSpec) -> Dataset:
        """The dataset a spec names, as read and verified (uint8 images), read once."""
        source = spec.model_dump_json(include=set(SOURCE_FIELDS))
        if source not in self._datasets:
            self._datasets[source] = read_dataset(spec, self.data_dir, progress=False)
        return self._datasets[source]

    def table(self, spec: DataSpec) -> Table:
        """A regression CSV, read once (its named columns checked for every spec)."""
        source = f"csv:{spec.path}"
        if source not in self._tables:
            self._tables[source] = read_table(spec)
        assert spec.regression is not None
        check_columns(spec.regression, self._tables[source])
        return self._tables[source]

    def data(self, spec: DataSpec, device: torch.device) -> Data:
        """The train / val / test splits a spec asks for, as float32 tensors on `device`."""
        key = (spec.model_dump_json(), str(device))
        if key not in self._splits:
            if spec.regression is not None:
                self._splits[key] = make_regression_data(self.table(spec), spec, device)
            else:
                self._splits[key] = make_splits(self.dataset(spec), spec, device)
        return self._splits[key]

    def portable(self) -> DataCache:
        """A copy holding what was read (datasets, tables) but no splits: what a cluster's
        workers are sent once, to make their own splits on their own device."""
        copy = DataCache(self.data_dir)
        copy._datasets = dict(self._datasets)
        copy._tables = dict(self._tables)
        return copy

    def training_rows(self, spec: DataSpec) -> int:
        """Rows of the full training set (before subsets and validation splits)."""
        if spec.regression is not None:
            return len(self.table(spec))
        return len(self.dataset(spec).x_train)

    def fingerprint(self, spec: DataSpec) -> str:
        """The data fingerprint that enters a run's identity (reads and verifies the data).

        Feature steps too large for the data fail here, before any run is planned.
        """
        if spec.regression is not None:
            return regression_fingerprint(self.table(spec), spec)
        dataset = self.dataset(spec)
        check_steps(spec.features, math.prod(dataset.image_shape))
        return data_fingerprint(dataset, spec)
