"""The analysis registry: name -> typed options, one-sentence caption, compute function."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mnistlab.analysis.contract import Options, Result
from mnistlab.errors import MnistlabError
from mnistlab.spec import parse_spec

if TYPE_CHECKING:
    from mnistlab.analysis.context import StudyRuns
    from mnistlab.studies.spec import StudySpec

Compute = Callable[["StudyRuns", Any], Result]


@dataclass(frozen=True)
class AnalysisDef:
    """A registered analysis.

    `captures` names the training-time probes its runs need (`training.probes.CAPTURES`):
    a study asking for this analysis records them while training, and such runs are not
    stacked.
    """

    name: str
    caption: str
    options: type[Options]
    compute: Compute
    captures: tuple[str, ...] = ()


_REGISTRY: dict[str, AnalysisDef] = {}


def analysis(
    name: str,
    caption: str,
    options: type[Options] = Options,
    captures: Sequence[str] = (),
) -> Callable[[Compute], Compute]:
    """Register the decorated ``compute(runs: StudyRuns, options) -> Result`` under `name`."""

    def register(compute: Compute) -> Compute:
        if name in _REGISTRY:
            raise ValueError(f"analysis {name!r} is registered twice")
        _REGISTRY[name] = AnalysisDef(name, caption, options, compute, tuple(captures))
        return compute

    return register


def registered() -> dict[str, AnalysisDef]:
    """Every registered analysis, by name, in registration order."""
    return dict(_REGISTRY)


def get_analysis(name: str) -> AnalysisDef:
    """The analysis registered as `name`; an unknown name is a one-line error."""
    if name not in _REGISTRY:
        raise MnistlabError(f"unknown analysis {name!r}, expected one of: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def parse_options(name: str, options: dict[str, Any], where: str = "") -> Options:
    """Validate an analysis's options; a bad field is a `SpecError` naming it."""
    definition = get_analysis(name)
    return parse_spec(definition.options, options, where or f"analyses: {name}: options")


def captures_for(spec: StudySpec, source: str = "") -> tuple[str, ...]:
    """The training-time captures a study's analyses need (their options validated too).

    A bad option is a `SpecError` naming `source` (the study file), the entry and the field.
    """
    needed: list[str] = []
    prefix = f"{source}: " if source else ""
    for i, entry in enumerate(spec.analyses):
        parse_options(entry.name, entry.options, f"{prefix}analyses[{i}] ({entry.name}) options")
        for capture in get_analysis(entry.name).captures:
            if capture not in needed:
                needed.append(capture)
    return tuple(needed)
