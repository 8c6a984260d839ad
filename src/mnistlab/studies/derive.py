"""Derived studies: a study file narrowed by `--variant` and overridden by `--set`, under its
own name, for smoke runs and reruns that never mix their runs into the full study's.

`--set PATH=VALUE` wins over everything the file says about PATH: the base, every variant's
`set`, and any grid axis on PATH or under it (such an axis collapses to the one value; a
`select` over it goes, as there is nothing left to choose among).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from mnistlab.errors import SpecError
from mnistlab.studies.feasibility import DEFAULT_MAX_RUNS
from mnistlab.studies.loading import verify_study
from mnistlab.studies.spec import (
    StudySpec,
    config_path_error,
    problems_error,
    validation_problems,
)

MAX_NAME = 64
"""Longest derived study name; longer ones are cut and end in a hash of the whole."""

_NOT_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Override:
    """One `--set`: a dotted field path of the run configuration and its value."""

    path: str
    value: Any

    def under(self, other: str) -> bool:
        """Whether `other` is this path or lies below it (so this override replaces it)."""
        return other == self.path or other.startswith(self.path + ".")


def parse_override(text: str) -> Override:
    """`training.epochs=1` -> Override; the value is read as YAML (`[64, 32]`, `{l2: 0.1}`)."""
    path, sep, raw = text.partition("=")
    path = path.strip()
    if not sep:
        raise SpecError(f"--set {text!r}: write PATH=VALUE, e.g. --set training.epochs=1")
    problem = config_path_error(path)
    if problem is not None:
        raise SpecError(f"--set {path}: {problem}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise SpecError(f"--set {path}: the value {raw!r} is not YAML: {exc.problem}") from None
    return Override(path, value)


def derive_study(
    spec: StudySpec,
    sets: Sequence[str] = (),
    variants: Sequence[str] = (),
    name: str | None = None,
    max_runs: int = DEFAULT_MAX_RUNS,
) -> StudySpec:
    """The study narrowed to `variants` (by name) with every `sets` override applied.

    Parameters
    ----------
    spec : the study as loaded.
    sets : `PATH=VALUE` texts, applied in order (a later one on the same path wins).
    variants : names of the variants to keep, in the file's order; empty: all.
    name : the derived study's name; default: the study's name plus what was changed.
    max_runs : more runs than this is an error, as for the file (`loading.parse_study`).

    Raises
    ------
    SpecError
        One line per problem: a bad path or value, an unknown variant, an invalid result.
    """
    overrides = [parse_override(text) for text in sets]
    if not overrides and not variants and name is None:
        return spec
    study = spec.model_dump(mode="json")
    _keep_variants(study, variants)
    for override in overrides:
        _apply(study, override)
    study["name"] = name or derived_name(spec.name, overrides, variants)
    changes = [*(f"--set {o.path}={_compact(o.value)}" for o in overrides)]
    changes += [f"--variant {v!r}" for v in variants]
    study["description"] = f"{spec.name} with {' '.join(changes)}. {spec.description}".strip()
    source = f"{spec.name} ({' '.join(changes)})"
    try:
        derived = StudySpec.model_validate(study)
    except ValidationError as exc:
        raise problems_error(validation_problems(exc), source) from None
    verify_study(derived, source, max_runs)
    return derived


def derived_name(base: str, overrides: Sequence[Override], variants: Sequence[str]) -> str:
    """`quickstart--epochs-1`: the base name and a slug of each change, cut to MAX_NAME."""
    parts = [f"{o.path.rsplit('.', 1)[-1]}-{_compact(o.value)}" for o in overrides]
    parts += list(variants)
    slug = _NOT_SLUG.sub("-", "-".join(parts).lower()).strip("-") or "derived"
    name = f"{base}--{slug}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - len(digest) - 1].rstrip('-')}-{digest}"


def _compact(value: Any) -> str:
    """A value as one short line of YAML flow style."""
    return (
        yaml.safe_dump(value, default_flow_style=True, width=10_000)
        .strip()
        .removesuffix("\n...")
        .removesuffix("...")
        .strip()
    )


def _keep_variants(study: dict[str, Any], names: Sequence[str]) -> None:
    """Drop every variant not named; an unknown name lists the known ones."""
    if not names:
        return
    known = [v["name"] for v in study["variants"]]
    if not known:
        raise SpecError(f"--variant: study {study['name']!r} has no variants")
    for wanted in names:
        if wanted not in known:
            raise SpecError(
                f"--variant {wanted!r}: no such variant in {study['name']!r}; "
                f"variants: {', '.join(repr(k) for k in known)}"
            )
    study["variants"] = [v for v in study["variants"] if v["name"] in names]
    cv = study.get("cross_validation")
    if cv and cv.get("variants") is not None:
        cv["variants"] = [v for v in cv["variants"] if v in names]
        if not cv["variants"]:
            study["cross_validation"] = None


def _apply(study: dict[str, Any], override: Override) -> None:
    """Set the override in the base and in every variant; collapse the axes it replaces."""
    _put(study, override)
    for variant in study["variants"]:
        variant["set"] = {p: v for p, v in variant["set"].items() if not override.under(p)}
        variant["set"][override.path] = override.value
        if variant.get("grid") is not None:
            variant["grid"] = _without(variant["grid"], override)
    study["grid"] = _without(study["grid"], override)
    cv = study.get("cross_validation")
    if cv:
        cv["grid"] = _without(cv["grid"], override)
    select = study.get("select")
    if select and override.under(select["over"]):
        study["select"] = None
    chain = study["repetitions"].get("chain")
    if chain is not None:
        study["repetitions"]["chain"] = [p for p in chain if not override.under(p)]


def _without(grid: dict[str, Any], override: Override) -> dict[str, Any]:
    """The grid less the axes on the override's path or below it."""
    return {p: values for p, values in grid.items() if not override.under(p)}


def _put(study: dict[str, Any], override: Override) -> None:
    """Set the override's path in the study's defaults (`data`, `model`, `training`)."""
    parts = override.path.split(".")
    node = study
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            held = ".".join(parts[: depth + 1])
            raise SpecError(
                f"--set {override.path}: {held} is {_compact(child)} in this study, "
                f"which has no field {parts[depth + 1]!r}; set {held} as a whole"
            )
        node = child
    node[parts[-1]] = override.value
