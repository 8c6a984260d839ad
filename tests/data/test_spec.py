"""Tests of data/spec.py: defaults, discriminated unions and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from mnistlab.data.spec import (
    DataSpec,
    SubsetBalanced,
    SubsetRandom,
    ValidationFraction,
    ValidationNone,
    ValidationOnTest,
    ValidationRandom,
)
from mnistlab.errors import SpecError
from mnistlab.spec import parse_spec


def test_defaults() -> None:
    spec = DataSpec()
    assert (spec.dataset, spec.path, spec.format, spec.label_column) == ("mnist", None, "auto", 0)
    assert spec.validation == ValidationNone()
    assert (spec.scaling, spec.scaler_fit, spec.flatten, spec.labels) == (
        "divide-255",
        "train",
        True,
        "sparse",
    )
    assert spec.train_subset is None and spec.test_subset is None
    assert spec.known


def test_unions_parse_by_kind() -> None:
    spec = parse_spec(
        DataSpec,
        {
            "dataset": "fashion-mnist",
            "train_subset": {"kind": "balanced", "per_class": 100},
            "test_subset": {"kind": "random", "n": 50, "seed": 3},
            "validation": {"kind": "fraction", "fraction": 0.1},
        },
    )
    assert spec.train_subset == SubsetBalanced(per_class=100)
    assert spec.test_subset == SubsetRandom(n=50, seed=3)
    assert spec.validation == ValidationFraction(fraction=0.1)
    assert parse_spec(DataSpec, {"validation": {"kind": "test"}}).validation == ValidationOnTest()
    assert parse_spec(DataSpec, {"validation": {"kind": "random", "n": 5}}).validation == (
        ValidationRandom(n=5, seed=0)
    )


def test_own_data_needs_a_path() -> None:
    with pytest.raises(
        SpecError,
        match=r"^dataset: 'scans' is not a known dataset "
        r"\(mnist, fashion-mnist, digits\); give path for your own data$",
    ):
        parse_spec(DataSpec, {"dataset": "scans"})
    spec = parse_spec(DataSpec, {"dataset": "scans", "path": "scans.csv", "label_column": "y"})
    assert spec.path == Path("scans.csv") and not spec.known


def test_one_line_errors_name_the_field() -> None:
    with pytest.raises(
        SpecError,
        match=r"^data.yaml: validation.fraction.fraction: "
        "Input should be less than 1, got 1.5$",
    ):
        parse_spec(DataSpec, {"validation": {"kind": "fraction", "fraction": 1.5}}, "data.yaml")
    with pytest.raises(SpecError, match=r"^validation.random: give exactly one of fraction or n$"):
        parse_spec(DataSpec, {"validation": {"kind": "random", "n": 5, "fraction": 0.1}})
    with pytest.raises(SpecError, match=r"^format: mnist is read from IDX files, got 'csv'"):
        parse_spec(DataSpec, {"format": "csv"})
    with pytest.raises(
        SpecError, match=r"^train_subset.head.n: Input should be greater than 0, got 0$"
    ):
        parse_spec(DataSpec, {"train_subset": {"kind": "head", "n": 0}})
    with pytest.raises(SpecError, match=r"^scale: Extra inputs are not permitted"):
        parse_spec(DataSpec, {"scale": "none"})


def test_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        DataSpec().flatten = False  # type: ignore[misc]
