"""From a dataset to train / val / test float32 tensors on a device: `load_data` and `make_splits`.

Order: subsets (train_subset on the training source, test_subset on the test source), then
the validation split of the subset training rows (before any shuffling, as Keras), then one
uint8 -> float32 conversion per split on the device, then scaling fitted on the training
split only (or per split, a leak kept for reproducing coursework).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from mnistlab.data.dataset import Dataset, read_dataset
from mnistlab.data.features import FittedStep, apply_steps, fit_steps
from mnistlab.data.regression import Table, check_columns, regression_splits
from mnistlab.data.regression import read_table as read_csv_table
from mnistlab.data.scaling import Scaler, fit_scaler
from mnistlab.data.spec import DataSpec, ValidationOnTest
from mnistlab.data.splits import subset_rows, validation_rows
from mnistlab.errors import SpecError

FINGERPRINT_VERSION = "mnistlab-data/1"
SPEC_FIELDS_OF_CONTENT = frozenset({"path", "format", "label_column"})  # covered by content


@dataclass
class Split:
    """One split in memory: x float32 (N, D) or (N, H, W); y int64 class ids (N,), or float32
    targets (N, K) for a regression dataset."""

    x: Tensor
    y: Tensor
    n_classes: int | None = None  # for one-hot targets; default: largest label + 1
    one_hot: bool = False  # what `targets` gives

    def __len__(self) -> int:
        return len(self.y)

    @property
    def targets(self) -> Tensor:
        """One-hot float32 (N, n_classes) when labels are one-hot, else the int64 ids (N,)."""
        if not self.one_hot:
            return self.y
        classes = self.n_classes or int(self.y.max()) + 1
        return torch.nn.functional.one_hot(self.y, classes).to(torch.float32)


@dataclass
class Data:
    """The splits of one dataset, ready for training; `val` and `test` may be None.

    `fingerprint` identifies the content and every spec field that shapes the splits.
    When validation is `{kind: test}`, `val` is the same object as `test`.
    """

    train: Split
    val: Split | None
    test: Split | None
    n_classes: int
    input_shape: tuple[int, ...]  # of one example: (D,) flattened, else (H, W)
    name: str
    fingerprint: str
    scaler: Scaler | None = None  # the training split's, to scale new images the same way
    features: list[FittedStep] = field(default_factory=list)  # fitted `spec.features` steps


def load_data(
    spec: DataSpec,
    data_dir: Path | None = None,
    device: torch.device | str = "cpu",
    *,
    download: bool = True,
) -> Data:
    """Read the dataset a spec names and make its splits on `device`.

    Parameters
    ----------
    spec : DataSpec
        Dataset, subsets, validation split, scaling, flattening and label format.
    data_dir : Path, optional
        An explicit folder searched right after `spec.path` (the CLI's --data-dir).
    device : torch.device or str
        Where the tensors live.
    download : bool
        Allow downloading a known dataset found nowhere on disk.

    Returns
    -------
    Data
        train / val / test `Split`s with float32 x and int64 y.

    Raises
    ------
    DataError
        The data is missing, corrupt or does not match its checksums.
    SpecError
        A subset or validation size is impossible for this data.
    """
    if spec.regression is not None:
        return make_regression_data(read_table(spec), spec, device)
    return make_splits(read_dataset(spec, data_dir, download=download), spec, device)


def read_table(spec: DataSpec) -> Table:
    """The regression CSV a spec names at `path`, its columns checked."""
    assert spec.regression is not None and spec.path is not None
    table = read_csv_table(Path(spec.path), spec.dataset)
    check_columns(spec.regression, table)
    return table


def make_regression_data(table: Table, spec: DataSpec, device: torch.device | str = "cpu") -> Data:
    """Train / test splits of a regression table: x (N, len(x)), y float32 (N, len(y)).

    `n_classes` is the number of targets (the output units); validation is none, or the
    test split when `validation: {kind: test}`.
    """
    assert spec.regression is not None
    parts = regression_splits(table, spec.regression, torch.device(device))
    outputs = len(spec.regression.y)
    train = Split(parts.x_train, parts.y_train, n_classes=outputs)
    test = None if parts.x_test is None else Split(parts.x_test, parts.y_test, n_classes=outputs)
    return Data(
        train=train,
        val=test if isinstance(spec.validation, ValidationOnTest) else None,
        test=test,
        n_classes=outputs,
        input_shape=(len(spec.regression.x),),
        name=table.name,
        fingerprint=regression_fingerprint(table, spec),
    )


def regression_fingerprint(table: Table, spec: DataSpec) -> str:
    """Hex SHA256 of the CSV's bytes and the spec fields that shape the splits."""
    fields = spec.model_dump(mode="json", exclude=set(SPEC_FIELDS_OF_CONTENT))
    text = json.dumps(
        {"version": FINGERPRINT_VERSION, "csv": table.fingerprint, "spec": fields},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()


def make_splits(dataset: Dataset, spec: DataSpec, device: torch.device | str = "cpu") -> Data:
    """Make the train / val / test splits a spec asks of an in-memory dataset.

    Parameters
    ----------
    dataset : Dataset
        uint8 images and int64 labels (from `read_dataset` or `make_dataset`).
    spec : DataSpec
        Subsets, validation split, scaling, flattening and label format.
    device : torch.device or str
        Where the tensors live.

    Returns
    -------
    Data
    """
    device = torch.device(device)
    has_test = dataset.x_test is not None and dataset.y_test is not None
    if spec.test_subset is not None and not has_test:
        raise SpecError(f"test_subset: {dataset.name} has no test split")
    if isinstance(spec.validation, ValidationOnTest) and not has_test:
        raise SpecError(f"validation: kind 'test' needs a test split, {dataset.name} has none")
    train_rows = subset_rows(spec.train_subset, dataset.y_train, "train_subset")
    fit, val = validation_rows(spec.validation, len(train_rows), dataset.y_train[train_rows])
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {
        "train": (dataset.x_train[train_rows[fit]], dataset.y_train[train_rows[fit]])
    }
    if val is not None:
        parts["val"] = (dataset.x_train[train_rows[val]], dataset.y_train[train_rows[val]])
    if has_test:
        assert dataset.x_test is not None and dataset.y_test is not None
        test_rows = subset_rows(spec.test_subset, dataset.y_test, "test_subset")
        parts["test"] = (dataset.x_test[test_rows], dataset.y_test[test_rows])
    scalers = _fit_scalers(spec, {name: x for name, (x, _) in parts.items()})
    splits = {
        name: _to_split(x, y, scalers[name], spec, dataset.n_classes, device)
        for name, (x, y) in parts.items()
    }
    fitted = _apply_features(spec, splits) if spec.features else []
    test = splits.get("test")
    features = int(np.prod(dataset.image_shape))
    if fitted:
        features = int(splits["train"].x.shape[1])
    return Data(
        train=splits["train"],
        val=test if isinstance(spec.validation, ValidationOnTest) else splits.get("val"),
        test=test,
        n_classes=dataset.n_classes,
        input_shape=(features,) if spec.flatten else dataset.image_shape,
        name=dataset.name,
        fingerprint=data_fingerprint(dataset, spec),
        scaler=scalers["train"],
        features=fitted,
    )


def data_fingerprint(dataset: Dataset, spec: DataSpec) -> str:
    """Hex SHA256 of the dataset's content fingerprint and the spec fields that shape splits.

    Parameters
    ----------
    dataset : Dataset
        Its `fingerprint` stands for the content.
    spec : DataSpec
        Every field but `path`, `format` and `label_column` (where and how the content was
        read, which the content fingerprint already covers) enters, defaults included.

    Returns
    -------
    str
        64 hex digits, stable across machines and data locations.
    """
    fields = spec.model_dump(mode="json", exclude=set(SPEC_FIELDS_OF_CONTENT))
    text = json.dumps(
        {"version": FINGERPRINT_VERSION, "content": dataset.fingerprint, "spec": fields},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _apply_features(spec: DataSpec, splits: dict[str, Split]) -> list[FittedStep]:
    """Fit the feature steps on the training split; map every split's x through them."""
    train = splits["train"]
    fitted = fit_steps(spec.features, train.x.cpu().numpy(), train.y.cpu().numpy())
    for split in splits.values():
        rows = apply_steps(fitted, split.x.cpu().numpy())
        split.x = torch.from_numpy(rows.astype(np.float32)).to(split.x.device)
    return fitted


def _fit_scalers(spec: DataSpec, parts: dict[str, np.ndarray]) -> dict[str, Scaler]:
    """One scaler per split: the training split's for all, or each split's own (leaks)."""
    rows = {name: x.reshape(len(x), -1) for name, x in parts.items()}
    if spec.scaler_fit == "train" or spec.scaling in ("none", "divide-255"):
        scaler = fit_scaler(spec.scaling, rows["train"])
        return dict.fromkeys(parts, scaler)
    warnings.warn(
        f"scaler_fit='per-split' fits a separate {spec.scaling} scaler on each split: "
        "validation and test statistics leak into preprocessing (kept only to reproduce "
        "coursework; use scaler_fit='train')",
        UserWarning,
        stacklevel=3,
    )
    return {name: fit_scaler(spec.scaling, x) for name, x in rows.items()}


def _to_split(
    x: np.ndarray,
    y: np.ndarray,
    scaler: Scaler,
    spec: DataSpec,
    n_classes: int,
    device: torch.device,
) -> Split:
    """uint8 rows -> float32 on the device (converted once), scaled, shaped."""
    n = len(x)
    pixels = torch.from_numpy(np.require(x, requirements=["C", "W"])).to(device)
    flat = scaler.apply(pixels.reshape(n, -1).to(torch.float32))  # (N, D) float32
    shaped = flat if spec.flatten else flat.reshape(n, *x.shape[1:])
    labels = torch.from_numpy(np.require(y, dtype=np.int64, requirements=["C", "W"])).to(device)
    return Split(shaped, labels, n_classes=n_classes, one_hot=spec.labels == "one-hot")
