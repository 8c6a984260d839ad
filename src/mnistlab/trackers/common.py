"""What the tracker exports share: their summary, the missing-extra error, flat configs."""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from mnistlab.errors import MnistlabError
from mnistlab.status import FINISHED
from mnistlab.studies.records import RunRecord

TRUNCATED = "…"  # ends a value cut to a tracker's length limit


class MissingExtra(MnistlabError):
    """A tracker's package is not installed; the message names the extra to install."""


@dataclass(frozen=True)
class ExportSummary:
    """What an export did: where it wrote, and which runs it wrote or left as they were.

    `runs` maps each exported mnistlab run id to where the tracker keeps it (an MLflow run
    id, a TensorBoard run folder).
    """

    study: str
    target: str
    written: int
    skipped: int
    runs: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        """One line for the CLI, e.g. `quickstart -> file:mlruns: 4 runs written, 0 skipped`."""
        return f"{self.study} -> {self.target}: {self.written} runs written, {self.skipped} skipped"


def require(module: str, extra: str) -> ModuleType:
    """Import a tracker's package, or raise `MissingExtra` saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(f"{module} is not installed; pip install -e '.[{extra}]'") from None


def exportable(records: list[RunRecord]) -> list[RunRecord]:
    """The runs worth a tracker's entry: finished (done, diverged or failed), in study order.

    A finished run is never updated, so an entry once written stays right.
    """
    return [r for r in records if r.status in FINISHED]


def flat_config(value: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested config as dotted keys -> text: `{"model.hidden": "[8]", ...}`; a list (of
    layers, sizes) stays one JSON value, None is "null"."""
    flat: dict[str, str] = {}
    for key, item in value.items():
        path = f"{prefix}{key}"
        if isinstance(item, Mapping) and item:
            flat.update(flat_config(item, f"{path}."))
        elif isinstance(item, str):
            flat[path] = item
        else:
            flat[path] = json.dumps(item, sort_keys=True)
    return flat


def last_epoch(history: Mapping[str, list[float]]) -> int:
    """The 0-based index of a History's last epoch (0 for an empty one)."""
    return max((len(v) for v in history.values()), default=1) - 1


def as_float(value: float | None) -> float:
    """A stored number as a tracker's float (a missing one, JSON null, is NaN)."""
    return math.nan if value is None else float(value)


def clip(text: str, limit: int) -> str:
    """Text cut to `limit` characters, ending in "…" where it was cut (trackers limit the
    length of a param or tag value)."""
    return text if len(text) <= limit else text[: limit - len(TRUNCATED)] + TRUNCATED
