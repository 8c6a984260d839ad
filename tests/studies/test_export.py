"""A table as CSV, JSON or Markdown."""

import json
import math

import pytest

from mnistlab.studies.export import export_table
from mnistlab.studies.tables import Table


def two_row_table() -> Table:
    return Table(
        title="t",
        columns=["variant", "test acc (%)", "n"],
        rows=[["a|b", "97.85 ± 0.12", "4"], ["c, d", "91.23", "1"]],
        raw=[
            ["a|b", {"mean": 0.9785, "std": 0.0012, "n": 4}, 4],
            ["c, d", {"mean": 0.9123, "std": math.nan, "n": 1}, 1],
        ],
        metrics=[None, "test_accuracy", None],
    )


def test_export_csv():
    assert export_table(two_row_table(), "csv") == (
        'variant,test acc (%),n\na|b,97.85 ± 0.12,4\n"c, d",91.23,1\n'
    )


def test_export_json_has_raw_numbers_and_null_for_nan():
    text = export_table(two_row_table(), "json")
    assert json.loads(text) == [
        {"variant": "a|b", "test acc (%)": {"mean": 0.9785, "std": 0.0012, "n": 4}, "n": 4},
        {"variant": "c, d", "test acc (%)": {"mean": 0.9123, "std": None, "n": 1}, "n": 1},
    ]
    assert text.startswith(
        '[\n  {\n    "variant": "a|b",\n    "test acc (%)": {\n      "mean": 0.9785,'
    )


def test_export_markdown():
    assert export_table(two_row_table(), "markdown") == (
        "| variant | test acc (%) | n |\n"
        "| --- | ---: | --- |\n"
        "| a\\|b | 97.85 ± 0.12 | 4 |\n"
        "| c, d | 91.23 | 1 |\n"
    )
    with pytest.raises(ValueError, match="export: format"):
        export_table(two_row_table(), "html")  # type: ignore[arg-type]
