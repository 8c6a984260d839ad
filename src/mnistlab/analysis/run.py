"""Running analyses on a stored study: each one computed, timed, or skipped with its reason."""

from __future__ import annotations

import time
import traceback
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnistlab.analysis.context import StudyRuns, finished_runs
from mnistlab.analysis.contract import NotApplicable, Options, Result
from mnistlab.analysis.registry import get_analysis, parse_options
from mnistlab.data.cache import DataCache
from mnistlab.runtime import select_device
from mnistlab.studies.results_folder import existing_store
from mnistlab.studies.summary import stored_spec


@dataclass
class AnalysisOutcome:
    """One analysis of a study: its result, or why there is none."""

    name: str
    caption: str
    options: Options
    result: Result | None
    skipped: str | None = None  # the reason, when `result` is None
    seconds: float = 0.0


def compute(ctx: StudyRuns, name: str, options: dict[str, Any] | None = None) -> AnalysisOutcome:
    """Compute one analysis; `NotApplicable` (or an unexpected error) becomes `skipped`.

    An unexpected error is warned about and kept as the skip reason, so that one broken
    analysis never costs the whole report.
    """
    definition = get_analysis(name)
    parsed = parse_options(name, options or {})
    started = time.perf_counter()
    try:
        result = definition.compute(ctx, parsed)
        skipped = None
    except NotApplicable as reason:
        result, skipped = None, str(reason)
    except Exception as exc:  # one analysis must not cost the report
        detail = traceback.format_exc(limit=-3)
        warnings.warn(f"analysis {name} failed: {exc!r}\n{detail}", RuntimeWarning, stacklevel=2)
        result, skipped = None, f"failed: {exc!r}"
    return AnalysisOutcome(
        name, definition.caption, parsed, result, skipped, time.perf_counter() - started
    )


@contextmanager
def open_study(
    study: str,
    results: Path,
    data_dir: Path | None = None,
    device: str = "auto",
    cache: DataCache | None = None,
) -> Iterator[StudyRuns]:
    """The stored study `study` of a results folder, as analyses see it.

    `cache` holds data already read (e.g. by the run that just finished); default: a new
    one on `data_dir`.
    """
    cache = cache or DataCache(data_dir)
    with existing_store(results) as store:
        spec = stored_spec(store, study, results)
        runs = finished_runs(store.runs(study))
        yield StudyRuns(spec, runs, results, store, cache, select_device(device))


def analyze_study(
    ctx: StudyRuns,
    names: Sequence[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> list[AnalysisOutcome]:
    """Compute the study's analyses (or `names`, with the study's options where it has them).

    `overrides` are option values laid over each analysis's own (e.g. {"runs": "all"});
    every analysis's options are validated before any is computed, so a bad key or value is
    one `SpecError` naming the analysis and the field, not a report half computed.
    """
    configured = {entry.name: entry.options for entry in ctx.spec.analyses}
    wanted = list(configured) if names is None else list(names)
    options = {name: {**(configured.get(name) or {}), **(overrides or {})} for name in wanted}
    for name in wanted:
        parse_options(name, options[name], f"analysis {name}: options")
    return [compute(ctx, name, options[name]) for name in wanted]
