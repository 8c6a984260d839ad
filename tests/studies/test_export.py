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


def test_export_csv_spreads_statistics_over_numeric_columns():
    assert export_table(two_row_table(), "csv") == (
        "variant,test acc (%)_mean,test acc (%)_std,test acc (%)_n,n\n"
        'a|b,0.9785,0.0012,4,4\n"c, d",0.9123,,1,1\n'
    )


def test_export_json_has_raw_numbers_and_null_for_nan():
    text = export_table(two_row_table(), "json")
    assert json.loads(text) == [
        {
            "variant": "a|b",
            "test acc (%)_mean": 0.9785,
            "test acc (%)_std": 0.0012,
            "test acc (%)_n": 4,
            "n": 4,
        },
        {
            "variant": "c, d",
            "test acc (%)_mean": 0.9123,
            "test acc (%)_std": None,
            "test acc (%)_n": 1,
            "n": 1,
        },
    ]


def test_export_names_non_finite_counts_only_where_there_are_some():
    table = two_row_table()
    table.raw[1][1] = {"mean": 0.5, "std": 0.1, "n": 2, "n_nonfinite": 1}
    header = export_table(table, "csv").splitlines()[0]
    assert header.endswith("test acc (%)_n,test acc (%)_n_nonfinite,n")
    text = export_table(Table("t", ["hidden"], [["[512, 128]"]], [[[512, 128]]]), "csv")
    assert text == 'hidden\n"[512, 128]"\n'


def test_export_markdown():
    assert export_table(two_row_table(), "markdown") == (
        "| variant | test acc (%) | n |\n"
        "| --- | ---: | --- |\n"
        "| a\\|b | 97.85 ± 0.12 | 4 |\n"
        "| c, d | 91.23 | 1 |\n"
    )
    with pytest.raises(ValueError, match="export: format"):
        export_table(two_row_table(), "html")  # type: ignore[arg-type]
