"""Tests of data/scaling.py: exact statistics, StandardScaler's conventions, float32 output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnistlab.data.scaling import fit_scaler

ROWS = np.array([[0, 5, 10], [2, 5, 20], [4, 5, 90]], dtype=np.uint8)


def test_standardize_statistics_and_zero_variance() -> None:
    scaler = fit_scaler("standardize", ROWS)
    np.testing.assert_allclose(scaler.shift, [2.0, 5.0, 40.0], rtol=0, atol=0)
    # population std; the constant feature gets scale 1, as StandardScaler does
    np.testing.assert_allclose(
        scaler.scale, [np.sqrt(8 / 3), 1.0, np.sqrt(1266 + 2 / 3)], rtol=1e-15
    )
    out = scaler.apply(torch.tensor([[4.0, 7.0, 40.0]]))
    assert out.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy(), np.float32([[2 / np.sqrt(8 / 3), 2.0, 0.0]]))


def test_minmax_and_zero_range() -> None:
    scaler = fit_scaler("minmax", ROWS)
    out = scaler.apply(torch.tensor([[1.0, 5.0, 50.0], [6.0, 6.0, 0.0]]))
    assert out.tolist() == [[0.25, 0.0, 0.5], [1.5, 1.0, -0.125]]


def test_divide_255_is_kerass_float32_division() -> None:
    x = np.arange(256, dtype=np.uint8).reshape(1, -1)
    out = fit_scaler("divide-255", x).apply(torch.from_numpy(x).float())
    np.testing.assert_array_equal(out.numpy(), x.astype("float32") / 255)
    assert fit_scaler("none", x).apply(torch.from_numpy(x).float()).max().item() == 255.0


def test_exact_on_many_rows() -> None:
    rows = np.random.default_rng(0).integers(0, 256, size=(5000, 4), dtype=np.uint8)
    scaler = fit_scaler("standardize", rows)
    np.testing.assert_allclose(scaler.shift, rows.mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(scaler.scale, rows.std(axis=0), rtol=1e-13)


def test_unknown_and_empty() -> None:
    with pytest.raises(ValueError, match=r"unknown scaling 'robust'"):
        fit_scaler("robust", ROWS)
    with pytest.raises(ValueError, match=r"0 rows"):
        fit_scaler("standardize", ROWS[:0])
