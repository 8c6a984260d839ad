"""Two tables side by side."""

import math

import pytest

from mnistlab.studies.compare import compare_tables
from mnistlab.studies.tables import Table


def test_compare_tables_matches_rows_and_differences():
    def table(title, rows):
        raw = [
            [k, {"mean": m, "std": math.nan, "n": 1}, {"mean": loss, "std": math.nan, "n": 1}]
            for k, m, loss in rows
        ]
        shown = [[k, f"{m * 100:.2f}", f"{loss:.4g}"] for k, m, loss in rows]
        return Table(
            title,
            ["act", "test acc (%)", "test loss"],
            shown,
            raw,
            [None, "test_accuracy", "test_loss"],
            keys=["activation", "test_accuracy", "test_loss"],
        )

    a = table("keras", [("relu", 0.98, 0.07), ("sigmoid", 0.95, 0.2)])
    b = table("torch", [("sigmoid", 0.96, 0.15), ("tanh", 0.97, 0.1)])
    out = compare_tables(a, b, ["act"])
    assert out.columns == [
        "act",
        "keras: test acc (%)",
        "torch: test acc (%)",
        "Δ test acc (%)",
        "keras: test loss",
        "torch: test loss",
        "Δ test loss",
    ]
    assert out.rows == [
        ["relu", "98.00", "-", "-", "0.07", "-", "-"],
        ["sigmoid", "95.00", "96.00", "+1.00", "0.2", "0.15", "-0.05"],
        ["tanh", "-", "97.00", "-", "-", "0.1", "-"],
    ]
    assert out.keys[:2] == ["activation", "a.test_accuracy"]
    assert out.records()[1]["delta.test_loss"] == pytest.approx(-0.05)
    with pytest.raises(ValueError, match="key column 'x'"):
        compare_tables(a, b, ["x"])
