"""What every analysis takes (`Options`) and gives (`Result`, `SimpleTable`, `NotApplicable`).

The lowest floor of `analysis/`: the registry, the run context and every analysis import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, PositiveInt

from mnistlab.errors import MnistlabError
from mnistlab.spec import Spec

RunChoice = Literal["first", "best", "all", "selected"]


class Options(Spec):
    """Options every analysis takes: which runs it looks at.

    `runs`: per configuration, its `first` repetition, its `best` one (highest validation
    accuracy), `all` repetitions, or the study's `selected` runs (its `select` block's best
    repetition of the best value; first repetition when the study selects nothing).
    """

    runs: RunChoice = "first"
    max_runs: PositiveInt = Field(default=24, description="at most this many runs are shown")


class NotApplicable(MnistlabError):
    """An analysis that has nothing to say for this study (the report prints the reason)."""


@dataclass
class Result:
    """What a compute function returns: the analysis's arrays and tables for the report.

    `items` holds one entry per run or group (label -> the analysis's own payload, a dict
    of arrays and numbers); `tables` are plain tables (title, header, rows of cells);
    `notes` are one-line remarks (runs skipped and why, choices made).
    """

    name: str
    items: dict[str, Any] = field(default_factory=dict)
    tables: list[SimpleTable] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class SimpleTable:
    """A small table for the report: a title, column headers, rows of display cells."""

    title: str
    header: list[str]
    rows: list[list[str]]
