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


STATS_PARTS = ("mean", "std", "n")  # a statistics cell's numbers, one column each


def _is_stats(value: Any) -> bool:
    return isinstance(value, dict) and "mean" in value


def flat_records(table: Table) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of raw values, a statistics cell spread over KEY_mean, KEY_std, KEY_n
    (what CSV and JSON export write, and what `mnistlab.results` makes DataFrames of).

    `n_nonfinite` gets its own column only where some row has a non-finite value; a label
    that is not a number (a list of hidden sizes, a name) is its display text.
    """
    keys = table.keys or table.columns
    spread: list[list[str] | None] = []  # per column: the statistics parts, or None
    header: list[str] = []
    for i, key in enumerate(keys):
        column = [row[i] for row in table.raw]
        if not any(_is_stats(v) for v in column):
            spread.append(None)
            header.append(key)
            continue
        parts = list(STATS_PARTS)
        if any(_is_stats(v) and v.get("n_nonfinite") for v in column):
            parts.append("n_nonfinite")
        spread.append(parts)
        header += [f"{key}_{part}" for part in parts]
    rows = []
    for raw, shown in zip(table.raw, table.rows, strict=True):
        cells: list[Any] = []
        for value, text, parts in zip(raw, shown, spread, strict=True):
            if parts is not None:
                cells += [value.get(p) if _is_stats(value) else None for p in parts]
            elif value is None or isinstance(value, int | float):
                cells.append(value)
            else:
                cells.append(text)
        rows.append([_plain(c) for c in cells])
    return header, rows


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
        "csv" and "json": raw numbers, one column per number: header (CSV) or row-object
        keys (JSON) are `Table.keys` (field paths, metric names); a statistics cell
        becomes KEY_mean, KEY_std, KEY_n in the metric's own units (accuracies as
        fractions, not %), never "mean ± std" text; NaN is empty (CSV) or null (JSON);
        "markdown": a GitHub pipe table of the displayed cells, metric columns right-aligned.

    Returns
    -------
    str
        Ending with a newline.
    """
    if format == "csv":
        header, rows = flat_records(table)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([["" if c is None else c for c in row] for row in rows])
        return buffer.getvalue()
    if format == "json":
        header, rows = flat_records(table)
        records = [dict(zip(header, row, strict=True)) for row in rows]
        return json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    if format == "markdown":
        metrics = table.metrics or [None] * len(table.columns)
        lines = [
            "| " + " | ".join(_markdown_cell(c) for c in table.columns) + " |",
            "| " + " | ".join("---:" if m else "---" for m in metrics) + " |",
        ]
        lines += ["| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in table.rows]
        return "\n".join(lines) + "\n"
    raise ValueError(f"export: format must be 'csv', 'json' or 'markdown', got {format!r}")
