"""The study report: one self-contained HTML file with tables, analyses' figures and runs."""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import jinja2
import torch
from markupsafe import Markup, escape

from mnistlab.analysis import AnalysisOutcome, StudyRuns, analyze_study
from mnistlab.analysis.run import open_study
from mnistlab.data.cache import DataCache
from mnistlab.report.figures import draw
from mnistlab.report.style import styled, to_png_data
from mnistlab.studies.formatting import format_number, metric_title
from mnistlab.studies.stats import describe, group_runs, metric_values
from mnistlab.studies.summary import study_report
from mnistlab.studies.tables import Table, runs_table

REPORT_NAME = "report.html"
STAT_METRICS = ("accuracy", "val_accuracy", "test_accuracy", "loss", "val_loss", "test_loss")
PACKAGES = ("mnistlab", "torch", "numpy", "scipy", "scikit-learn", "matplotlib", "jinja2")


@dataclass
class HtmlTable:
    """A table as the page shows it: display cells, and sort keys where they differ."""

    title: str
    header: list[str]
    rows: list[list[str]]
    sort_keys: list[list[Any]] = field(default_factory=list)
    note: str = ""


@dataclass
class HtmlFigure:
    """One figure, inline as a PNG data URI, with its pixel size."""

    title: str
    src: str
    width: int
    height: int


@dataclass
class HtmlAnalysis:
    """One analysis's section: caption, figures, tables, notes, or why it is missing."""

    name: str
    caption: str
    figures: list[HtmlFigure]
    tables: list[HtmlTable]
    notes: list[str]
    skipped: str | None
    seconds: float


def from_table(table: Table) -> HtmlTable:
    """A studies table (display rows, raw values) for the page."""
    keys = [[_sort_key(v) for v in row] for row in table.raw] if table.raw else []
    return HtmlTable(table.title, list(table.columns), table.rows, keys, table.note)


def _sort_key(value: Any) -> Any:
    if isinstance(value, dict) and "mean" in value:
        value = value["mean"]
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return value if math.isfinite(value) else None
    return None


def render_table(table: HtmlTable, sortable: bool = False) -> Markup:
    """A table's HTML; `data-sort` carries a numeric key where the cell text is formatted."""
    cls = ' class="sortable"' if sortable else ""
    head = "".join(f"<th>{escape(h)}</th>" for h in table.header)
    body = []
    for i, row in enumerate(table.rows):
        keys = table.sort_keys[i] if i < len(table.sort_keys) else []
        cells = []
        for j, cell in enumerate(row):
            key = keys[j] if j < len(keys) else None
            attr = f' data-sort="{key!r}"' if key is not None else ""
            cells.append(f"<td{attr}>{escape(cell)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return Markup(
        f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def statistics_table(ctx: StudyRuns) -> HtmlTable:
    """Per configuration and metric: n, mean, sample std, min, max and the 95% interval."""
    rows, keys = [], []
    for group in group_runs(ctx.runs):
        label = ctx.group_label(group.runs[0])
        for metric in STAT_METRICS:
            values = metric_values(group.runs, metric)
            if not values:
                continue
            s = describe(values)
            cells = [s.mean, s.std, s.min, s.max, *s.ci95]
            rows.append(
                [label, metric_title(metric), str(s.n), *(_number(metric, v) for v in cells)]
            )
            keys.append([None, None, s.n, *(_sort_key(v) for v in cells)])
    return HtmlTable(
        "statistics per group",
        ["configuration", "metric", "n", "mean", "std", "min", "max", "95% CI low", "95% CI high"],
        rows,
        keys,
        "sample std (ddof=1) over repetitions; Student-t 95% interval of the mean; accuracies in %",
    )


def _number(metric: str, value: float) -> str:
    """A statistic as the tables show it; "–" where it does not exist (std of one run)."""
    return format_number(metric, value) if math.isfinite(value) else "–"


def environment_table(ctx: StudyRuns, built_seconds: float) -> HtmlTable:
    """Versions, machine, device, threads and wall times."""
    rows = [["python", sys.version.split()[0]]]
    for package in PACKAGES:
        try:
            rows.append([package, metadata.version(package)])
        except metadata.PackageNotFoundError:
            continue
    trained = sum(r.seconds or 0.0 for r in ctx.runs)
    rows += [
        ["platform", platform.platform()],
        ["processor", platform.machine()],
        ["cores available", str(len(os.sched_getaffinity(0)))],
        ["torch threads", str(torch.get_num_threads())],
        ["analysis device", str(ctx.device)],
        ["CUDA", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available"],
        ["training wall time (sum of runs)", f"{trained:.1f} s"],
        ["report built in", f"{built_seconds:.1f} s"],
    ]
    return HtmlTable("environment", ["", ""], rows)


def _section(outcome: AnalysisOutcome) -> HtmlAnalysis:
    figures, tables, notes = [], [], []
    if outcome.result is not None:
        with styled():
            for title, fig in draw(outcome.result, outcome.options):
                width, height = (int(v * fig.dpi) for v in fig.get_size_inches())
                figures.append(HtmlFigure(title, to_png_data(fig), width, height))
        tables = [HtmlTable(t.title, t.header, t.rows) for t in outcome.result.tables]
        notes = outcome.result.notes
    chosen = outcome.options.model_dump(exclude_defaults=True, mode="json")
    if chosen:
        notes = [f"options: {', '.join(f'{k}={v}' for k, v in chosen.items())}", *notes]
    return HtmlAnalysis(
        outcome.name, outcome.caption, figures, tables, notes, outcome.skipped, outcome.seconds
    )


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mnistlab.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals["render_table"] = render_table
    return env


def write_report(
    study: str,
    results: Path,
    *,
    names: Sequence[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    output: Path | None = None,
    data_dir: Path | None = None,
    device: str = "auto",
    cache: DataCache | None = None,
) -> Path:
    """Compute the study's analyses and write its self-contained HTML report.

    Parameters
    ----------
    study : a study name in the results store.
    results : the results folder.
    names : analyses to compute (default: the study file's `analyses`).
    overrides : option values laid over each analysis's own (`mnistlab analyze --option`).
    output : where to write (default `<results>/<study>/report.html`).
    cache : data already read, shared with the analyses (default: read afresh).

    Returns
    -------
    Path of the written file.
    """
    started = time.perf_counter()
    report = study_report(study, results)
    with open_study(study, results, data_dir, device, cache) as ctx:
        row = ctx.store.get_study(study)
        source = row.source if row is not None else ""
        all_runs = ctx.store.runs(study)
        counts = ctx.store.counts(study)
        outcomes = analyze_study(ctx, names, overrides)
        sections = [_section(o) for o in outcomes]
        statistics = statistics_table(ctx)
        environment = environment_table(ctx, time.perf_counter() - started)
    nav = [
        {"id": "description", "title": "description"},
        {"id": "summary", "title": "summary"},
        {"id": "statistics", "title": "statistics"},
        {"id": "analyses", "title": "analyses"},
        {"id": "runs", "title": "runs"},
        {"id": "environment", "title": "environment"},
    ]
    page = (
        _environment()
        .get_template("report.html.j2")
        .render(
            study=study,
            description=report.description,
            source=source,
            written=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            counts=", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if n),
            nav=nav,
            tables=[from_table(t) for t in report.tables if not t.title.startswith("diverged")],
            statistics=statistics,
            analyses=sections,
            runs=from_table(runs_table(all_runs)),
            environment=environment,
        )
    )
    path = output or results / study / REPORT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
