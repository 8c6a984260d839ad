"""Two tables side by side: rows matched on key columns, each shared metric with its difference."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mnistlab.studies.formatting import format_delta
from mnistlab.studies.tables import Table


def _mean(raw: Any) -> float:
    """The mean of a raw metric cell (a Stats dict or a number); NaN when absent."""
    if isinstance(raw, dict):
        raw = raw.get("mean")
    return float(raw) if isinstance(raw, int | float) else math.nan


def compare_tables(
    a: Table,
    b: Table,
    key_columns: Sequence[str],
    names: tuple[str, str] | None = None,
) -> Table:
    """Two tables side by side: rows matched on key columns, metrics with their difference.

    Parameters
    ----------
    a, b : Table
        Usually two summary tables (e.g. of STUDY_A and STUDY_B).
    key_columns : sequence of str
        Column titles present in both; rows match when their displayed key cells are equal
        (the first unmatched row of `b` with that key).
    names : (str, str), optional
        How to label the two sides; default the tables' titles, or ("A", "B") when equal.

    Returns
    -------
    Table
        The key columns, then for each metric column found in both: "A: col", "B: col"
        and "Δ col" (B − A, of the means; accuracies in percentage points). Rows of `a`
        in order, then rows only in `b`; a missing side shows "-". Export keys: the key
        columns' keys, then "a.<key>", "b.<key>", "delta.<key>" per metric.
    """
    for k in key_columns:
        if k not in a.columns or k not in b.columns:
            raise ValueError(f"compare: key column {k!r} must be in both tables")
    name_a, name_b = names or ((a.title, b.title) if a.title != b.title else ("A", "B"))
    shared = [
        (title, metric)
        for title, metric in zip(a.columns, a.metrics, strict=True)
        if metric and title not in key_columns and title in b.columns
        if b.metrics[b.columns.index(title)]
    ]
    ka = [a.columns.index(k) for k in key_columns]
    kb = [b.columns.index(k) for k in key_columns]
    pending: dict[tuple[str, ...], list[int]] = {}
    for j, row in enumerate(b.rows):
        pending.setdefault(tuple(row[i] for i in kb), []).append(j)
    pairs: list[tuple[int | None, int | None]] = []
    for i, row in enumerate(a.rows):
        matches = pending.get(tuple(row[c] for c in ka), [])
        pairs.append((i, matches.pop(0) if matches else None))
    pairs += [(None, j) for js in pending.values() for j in js]
    pairs.sort(key=lambda p: (p[0] is None, p[0] if p[0] is not None else p[1]))

    columns = list(key_columns)
    metrics: list[str | None] = [None] * len(key_columns)
    a_keys = a.keys or a.columns
    keys = [a_keys[i] for i in ka]
    for title, metric in shared:
        columns += [f"{name_a}: {title}", f"{name_b}: {title}", f"Δ {title}"]
        metrics += [metric, metric, metric]
        key = a_keys[a.columns.index(title)]
        keys += [f"a.{key}", f"b.{key}", f"delta.{key}"]
    rows, raw = [], []
    for i, j in pairs:
        keys_from = (a, i, ka) if i is not None else (b, j, kb)
        table, r, idx = keys_from
        assert r is not None
        row = [table.rows[r][c] for c in idx]
        raw_row = [table.raw[r][c] for c in idx]
        for title, metric in shared:
            ca, cb = a.columns.index(title), b.columns.index(title)
            va = a.raw[i][ca] if i is not None else None
            vb = b.raw[j][cb] if j is not None else None
            delta = _mean(vb) - _mean(va)
            row += [
                a.rows[i][ca] if i is not None else "-",
                b.rows[j][cb] if j is not None else "-",
                format_delta(metric, delta),
            ]
            raw_row += [va, vb, delta if math.isfinite(delta) else None]
        rows.append(row)
        raw.append(raw_row)
    note = f"Δ = {name_b} − {name_a}; accuracies in %, differences in percentage points"
    return Table(f"{name_a} vs {name_b}", columns, rows, raw, metrics, note, keys)
