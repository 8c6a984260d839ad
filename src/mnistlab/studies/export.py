"""A table as text for other programs: CSV, JSON (raw numbers) or a Markdown pipe table."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any, Literal

from mnistlab.studies.tables import Table


def _plain(value: Any) -> Any:
    """A JSON-ready copy: tuples as lists, NaN/inf as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def _markdown_cell(text: str) -> str:
    """A cell safe inside a pipe table."""
    return text.replace("|", "\\|").replace("\n", " ")


def export_table(table: Table, format: Literal["csv", "json", "markdown"]) -> str:
    """The table as text.

    Parameters
    ----------
    table : Table
        Any table from this module.
    format : {"csv", "json", "markdown"}
        "csv": the displayed cells, header first, "\\n" line ends (csv module quoting);
        "json": a list of row objects, `Table.keys` (field paths, metric names) -> raw
        value (metric cells as {"mean", "std", "n", "n_nonfinite"} in the metric's own
        units: accuracies as fractions, not %; NaN as null);
        "markdown": a GitHub pipe table of the displayed cells, metric columns right-aligned.

    Returns
    -------
    str
        Ending with a newline.
    """
    if format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(table.columns)
        writer.writerows(table.rows)
        return buffer.getvalue()
    if format == "json":
        return json.dumps(_plain(table.records()), indent=2, ensure_ascii=False) + "\n"
    if format == "markdown":
        metrics = table.metrics or [None] * len(table.columns)
        lines = [
            "| " + " | ".join(_markdown_cell(c) for c in table.columns) + " |",
            "| " + " | ".join("---:" if m else "---" for m in metrics) + " |",
        ]
        lines += ["| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in table.rows]
        return "\n".join(lines) + "\n"
    raise ValueError(f"export: format must be 'csv', 'json' or 'markdown', got {format!r}")
