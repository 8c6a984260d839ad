"""Expansion: a study becomes its runs, each resolved, seeded and identified by a stable hash.

A run's configuration starts from the study's defaults (`RunConfig(data, model, training)`
dumped to JSON), then takes its variant's `set`, its grid point and, for a cross-validation
fold, the searched setting, path by path, shortest path first; then it is validated as a
`RunConfig`. Runs come out as: every variant in file order, every grid point (the last key
varying fastest), every repetition; then the cross-validation folds (configuration, setting,
fold). The refits of a cross-validation search depend on its folds' results and are made
later by `refit_runs`.

Identity: `run_id` is the first 16 hex digits of the SHA-256 of the canonical JSON (sorted
keys, no spaces) of {"config": the resolved configuration without `data.path`, "seed",
"fingerprint": the data fingerprint, "parent": the run continued from or null, and "role"
when it is not "train"}; `group` is the same without seed and parent. Only JSON goes into
it, so ids are the same in any process or machine, whatever the key order of the file.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from mnistlab.data import DataSpec
from mnistlab.errors import SpecError, spec_error
from mnistlab.studies.records import RunConfig, RunRecord, RunRole, RunSpec
from mnistlab.studies.spec import (
    Loc,
    Problem,
    StudySpec,
    config_path_error,
    format_loc,
    problems_error,
)
from mnistlab.studies.stats import cv_summary

Fingerprint = Callable[[DataSpec], str]
"""The data fingerprint of a data spec (the runner: `data_fingerprint` of its dataset)."""

ID_LENGTH = 16  # hex digits of a run_id or group

# --- plan: what the study asks for, before identities ---


@dataclass(frozen=True)
class _Entry:
    """One override: a field path, the value written for it, and where it was written."""

    path: str
    value: Any
    loc: Loc


@dataclass(frozen=True)
class _Variant:
    """A variant as expansion sees it (the implicit one has no name)."""

    name: str | None
    loc: Loc | None
    sets: tuple[_Entry, ...]
    grid: dict[str, list[Any]]
    grid_loc: Loc
    searched: bool  # cross-validation searches its configurations
    seed: int | None = None  # the variant's own base seed; None: the study's


@dataclass(frozen=True)
class _Configuration:
    """A variant at one grid point, resolved."""

    variant: _Variant
    point: tuple[_Entry, ...]  # one entry per grid path, in grid order
    config: RunConfig


@dataclass
class _Draft:
    """A run without its identity yet."""

    config: RunConfig
    seed: int
    repetition: int
    labels: dict[str, Any]
    variant: str | None
    role: RunRole
    loc: Loc  # blamed when it duplicates another run
    where: str  # how a message names it
    chain: str | None = None  # continue mode: the runs of one chain key continue one another


@dataclass
class _Plan:
    drafts: list[_Draft] = field(default_factory=list)
    searched: list[_Configuration] = field(default_factory=list)  # cross-validated, in order
    problems: list[Problem] = field(default_factory=list)


class _Invalid(Exception):
    """A configuration that cannot be resolved; `entry` is the override to blame."""

    def __init__(self, entry: _Entry | None, message: str) -> None:
        super().__init__(message)
        self.entry = entry
        self.message = message


def _value_key(value: Any) -> str:
    """Canonical JSON: equal values, equal keys, whatever the dict order."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _jsonable(value: Any) -> Any:
    """A label value as JSON types (tuples become lists)."""
    return json.loads(json.dumps(value, default=str))


def _variants(spec: StudySpec) -> list[_Variant]:
    """The study's variants; none written = one unnamed variant with the study grid."""
    cv = spec.cross_validation
    chosen = None if cv is None or cv.variants is None else set(cv.variants)
    if not spec.variants:
        return [_Variant(None, None, (), spec.grid, ("grid",), cv is not None)]
    out = []
    for i, v in enumerate(spec.variants):
        sets = tuple(_Entry(p, x, ("variants", i, "set", p)) for p, x in v.set.items())
        own = v.grid is not None
        grid = v.grid if v.grid is not None else spec.grid
        grid_loc: Loc = ("variants", i, "grid") if own else ("grid",)
        searched = cv is not None and (chosen is None or v.name in chosen)
        out.append(_Variant(v.name, ("variants", i), sets, grid, grid_loc, searched, v.seed))
    return out


def _points(grid: Mapping[str, list[Any]], loc: Loc) -> list[tuple[_Entry, ...]]:
    """The cartesian product of a grid, the last key varying fastest."""
    axes = [
        [_Entry(path, value, (*loc, path, i)) for i, value in enumerate(values)]
        for path, values in grid.items()
    ]
    return list(itertools.product(*axes))


def _describe(variant: str | None, entries: Sequence[_Entry], skip: _Entry | None = None) -> str:
    """How messages name a configuration: `variant 'x', model.hidden=[512]`."""
    parts = [f"variant {variant!r}"] if variant is not None else []
    parts += [f"{e.path}={_value_key(e.value)}" for e in entries if e is not skip]
    return ", ".join(parts)


# --- resolving one configuration ---


def _assign(config: dict[str, Any], entry: _Entry, filled: bool = False) -> dict[str, Any]:
    """Set `entry.path` in the config dict; a bare name on the way is first given its defaults."""
    parts = entry.path.split(".")
    node = config
    for depth, part in enumerate(parts[:-1]):
        prefix = ".".join(parts[: depth + 1])
        child = node.get(part)
        if child is None:
            child = node[part] = {}  # e.g. early_stopping: null; validation fills the defaults
        elif isinstance(child, str) and not filled:
            # `training.optimizer: adam` was set by a shorter path: dump its full dict first
            try:
                config = RunConfig.model_validate(config).model_dump(mode="json")
            except ValidationError as exc:
                raise _Invalid(entry, f"cannot set it: {spec_error(exc)}") from None
            return _assign(config, entry, filled=True)
        elif isinstance(child, list):
            raise _Invalid(
                entry, f"{prefix} holds one value per hidden layer here; set {prefix} as a whole"
            )
        elif not isinstance(child, dict):
            raise _Invalid(
                entry, f"{prefix} is {child!r} here, which has no field {parts[depth + 1]!r}"
            )
        node = child
    node[parts[-1]] = copy.deepcopy(entry.value)
    return config


def _blame(entries: Sequence[_Entry], exc: ValidationError) -> _Entry | None:
    """The last override whose path leads to (or lies under) the first error, else the last."""
    error = [str(p) for p in exc.errors(include_url=False)[0]["loc"]]

    def leads_to(entry: _Entry) -> bool:
        parts = entry.path.split(".")
        if error == parts[: len(error)]:
            return True
        rest = iter(error)  # union tags ("adam") may sit between the path's parts
        return parts[0] == error[0] and all(p in rest for p in parts)

    blamed = next((e for e in reversed(entries) if leads_to(e)), None)
    # no override touches the field (hidden: [1, 2] against a 1-entry dropout): the last does
    return blamed if blamed is not None or not entries else entries[-1]


def _resolve(
    base: dict[str, Any], entries: Sequence[_Entry], fold: dict[str, Any] | None = None
) -> RunConfig:
    """Apply the overrides, shortest path first (ties: in order), then the fold; validate."""
    config = copy.deepcopy(base)
    for entry in sorted(entries, key=lambda e: e.path.count(".")):
        config = _assign(config, entry)
    if fold is not None:
        config["data"]["validation"] = fold
    try:
        return RunConfig.model_validate(config)
    except ValidationError as exc:
        raise _Invalid(_blame(entries, exc), str(spec_error(exc))) from None


def _invalid_problem(variant: _Variant, entries: Sequence[_Entry], err: _Invalid) -> Problem:
    """Name the override to blame (or the variant) and what the resolved run got wrong."""
    loc = err.entry.loc if err.entry is not None else (variant.loc or ())
    context = _describe(variant.name, entries, skip=err.entry)
    where = f" ({context})" if context else ""
    return loc, f"gives an invalid run{where}: {err.message}"


def _labels(entries: Sequence[_Entry]) -> dict[str, Any]:
    """Field path -> value as written, later overrides winning."""
    return {e.path: _jsonable(e.value) for e in entries}


# --- checks that need the whole study ---


def _check_paths(spec: StudySpec) -> list[Problem]:
    """Every field path the study writes must exist in the run configuration."""
    paths: list[tuple[Loc, str]] = [(("grid", p), p) for p in spec.grid]
    for i, v in enumerate(spec.variants):
        paths += [(("variants", i, "set", p), p) for p in v.set]
        paths += [(("variants", i, "grid", p), p) for p in v.grid or {}]
    if spec.cross_validation is not None:
        paths += [(("cross_validation", "grid", p), p) for p in spec.cross_validation.grid]
        paths += [
            (("cross_validation", "refit_set", p), p) for p in spec.cross_validation.refit_set
        ]
    paths += [(("repetitions", "chain", i), p) for i, p in enumerate(spec.repetitions.chain or ())]
    if spec.select is not None:
        paths.append((("select", "over"), spec.select.over))
    if spec.table is not None:
        for i, column in enumerate(spec.table.columns):
            if column.field is not None and column.field != "variant":
                paths.append((("table", "columns", i, "field"), column.field))
    problems = []
    for loc, path in paths:
        error = config_path_error(path)
        if error is not None:
            problems.append((loc, error))
    return problems


def _check_names(spec: StudySpec, variants: Sequence[_Variant]) -> list[Problem]:
    """Unique variant names, sets no grid overrides, and what select, chain, cv, table name."""
    problems: list[Problem] = []
    first: dict[str, int] = {}
    for i, v in enumerate(spec.variants):
        if v.name in first:
            problems.append(
                (
                    ("variants", i, "name"),
                    f"{v.name!r} is used twice (also variants[{first[v.name]}])",
                )
            )
        first.setdefault(v.name, i)
    for v in variants:
        for entry in v.sets:
            if entry.path in v.grid:
                where = format_loc(v.grid_loc)
                problems.append(
                    (
                        entry.loc,
                        f"{entry.path} is also a key of {where}, which would override it; keep one",
                    )
                )
    grid_paths = list(dict.fromkeys(p for v in variants for p in v.grid))
    known = ", ".join(grid_paths) if grid_paths else "the study has no grid"
    if spec.select is not None and spec.select.over not in grid_paths:
        problems.append(
            (
                ("select", "over"),
                f"{spec.select.over} is not a grid path; select needs one of: {known}",
            )
        )
    for i, path in enumerate(spec.repetitions.chain or ()):
        if path not in grid_paths:
            problems.append(
                (
                    ("repetitions", "chain", i),
                    f"{path} is not a grid path; a chain runs through: {known}",
                )
            )
    problems += _check_cv(spec, variants)
    problems += _check_table(spec)
    return problems


def _check_cv(spec: StudySpec, variants: Sequence[_Variant]) -> list[Problem]:
    """Cross-validation names existing variants and searches paths the grids leave alone."""
    cv = spec.cross_validation
    if cv is None:
        return []
    problems: list[Problem] = []
    names = [v.name for v in spec.variants]
    for i, name in enumerate(cv.variants or ()):
        if name not in names:
            known = f"variants: {', '.join(names)}" if names else "the study has no variants"
            problems.append(
                (("cross_validation", "variants", i), f"no variant named {name!r}; {known}")
            )
    for path in cv.grid:
        loc: Loc = ("cross_validation", "grid", path)
        if path == "data.validation" or path.startswith("data.validation."):
            problems.append((loc, "the folds set data.validation; search other fields"))
        for v in variants:
            if v.searched and path in v.grid:
                who = f"variant {v.name!r}" if v.name is not None else "the study"
                problems.append(
                    (loc, f"{path} is also a grid key of {who}; search it in one place")
                )
                break
    return problems


def _check_table(spec: StudySpec) -> list[Problem]:
    """Column titles are unique and `sort` names a column."""
    table = spec.table
    if table is None:
        return []
    problems: list[Problem] = []
    titles = [c.title for c in table.columns]
    for i, title in enumerate(titles):
        if title in titles[:i]:
            problems.append((("table", "columns", i, "title"), f"{title!r} is used twice"))
    if table.sort is not None:
        names = {n for c in table.columns for n in (c.title, c.field, c.metric) if n is not None}
        if table.sort.removeprefix("-") not in names:
            problems.append(
                (
                    ("table", "sort"),
                    f"{table.sort!r} names no column; use a column's title, metric or field "
                    f"({', '.join(titles)})",
                )
            )
    return problems


def _check_chains(spec: StudySpec, drafts: Sequence[_Draft]) -> list[Problem]:
    """The runs of one chain continue one model: they must share its configuration."""
    first: dict[str, _Draft] = {}
    for draft in drafts:
        if draft.chain is None:
            continue
        head = first.setdefault(draft.chain, draft)
        if draft.config.model != head.config.model:
            a, b = (
                head.config.model.model_dump(mode="json"),
                draft.config.model.model_dump(mode="json"),
            )
            changed = ", ".join(f"model.{k}" for k in a if a[k] != b[k])
            loc: Loc = ("repetitions", "chain") if spec.repetitions.chain else ("repetitions",)
            return [
                (
                    loc,
                    f"a continue chain trains one model, but {head.where} and {draft.where} "
                    f"differ in {changed}; give repetitions.chain the grid paths that may change "
                    "from run to run (not the model's)",
                )
            ]
    return []


# --- the plan ---


def _defaults(spec: StudySpec) -> dict[str, Any]:
    """The study's defaults as the JSON dict every run starts from."""
    return RunConfig(data=spec.data, model=spec.model, training=spec.training).model_dump(
        mode="json"
    )


def _train_drafts(spec: StudySpec, configurations: Sequence[_Configuration]) -> list[_Draft]:
    """Each configuration's repetitions; in continue mode, with the chain each belongs to."""
    reps = spec.repetitions
    drafts = []
    for c in configurations:
        chain = None
        if reps.mode == "continue":
            chained = set(reps.chain) if reps.chain is not None else set(c.variant.grid)
            fixed = [[e.path, e.value] for e in c.point if e.path not in chained]
            chain = _value_key([c.variant.name, fixed])
        for rep in range(reps.count):
            drafts.append(
                _Draft(
                    config=c.config,
                    seed=(spec.seed if c.variant.seed is None else c.variant.seed) + rep,
                    repetition=rep,
                    labels=_labels(c.variant.sets + c.point),
                    variant=c.variant.name,
                    role="train",
                    loc=c.point[-1].loc if c.point else (c.variant.loc or ()),
                    where=_describe(c.variant.name, c.point) or "the study's run",
                    chain=chain,
                )
            )
    return drafts


def _plan(spec: StudySpec) -> _Plan:
    """Every run the study asks for (without identities), or the problems that prevent it."""
    plan = _Plan(problems=_check_paths(spec))
    if plan.problems:
        return plan  # resolving unknown paths would only repeat the same problems
    variants = _variants(spec)
    plan.problems += _check_names(spec, variants)
    base = _defaults(spec)
    seen: set[Problem] = set()

    def resolve(
        variant: _Variant, entries: Sequence[_Entry], fold: dict[str, Any] | None = None
    ) -> RunConfig | None:
        try:
            return _resolve(base, entries, fold)
        except _Invalid as err:
            problem = _invalid_problem(variant, entries, err)
            if problem not in seen:  # one bad grid value spoils many runs: say it once
                seen.add(problem)
                plan.problems.append(problem)
            return None

    configurations = []
    for variant in variants:
        for point in _points(variant.grid, variant.grid_loc):
            config = resolve(variant, variant.sets + point)
            if config is not None:
                configurations.append(_Configuration(variant, point, config))
    plan.drafts = _train_drafts(spec, configurations)
    plan.problems += _check_chains(spec, plan.drafts)

    cv = spec.cross_validation
    if cv is None:
        return plan
    plan.searched = [c for c in configurations if c.variant.searched]
    for c in plan.searched:
        for setting in _points(cv.grid, ("cross_validation", "grid")):
            entries = c.variant.sets + c.point + setting
            for index in range(cv.folds):
                fold = {"kind": "fold", "folds": cv.folds, "index": index}
                if cv.stratified:
                    fold["stratified"] = True
                config = resolve(c.variant, entries, fold)
                if config is None:
                    break
                named = _describe(c.variant.name, c.point + setting) or "the study's run"
                plan.drafts.append(
                    _Draft(
                        config=config,
                        seed=spec.seed,
                        repetition=0,
                        labels={**_labels(entries), "data.validation.index": index},
                        variant=c.variant.name,
                        role="cv-fold",
                        loc=setting[-1].loc if setting else ("cross_validation",),
                        where=f"fold {index} of {named}",
                    )
                )
    return plan


# --- identities ---


UNSET_NOT_HASHED: dict[str, tuple[str, ...]] = {
    "training": ("augment", "steps_per_epoch", "validation_steps", "evaluate_each_epoch"),
}
"""Fields added after the first release, left out of a run's identity while they are None,
so that the runs of earlier study files keep their ids (and stores resume)."""


def _digest(payload: dict[str, Any]) -> str:
    """First ID_LENGTH hex digits of the SHA-256 of canonical JSON."""
    return hashlib.sha256(_value_key(payload).encode()).hexdigest()[:ID_LENGTH]


def _identity(study: str, config: RunConfig, fingerprint: str, role: RunRole) -> dict[str, Any]:
    """What a configuration's hashes cover; not `data.path`: the fingerprint has the content.

    The study's name is in it: one store holds many studies, and a run of one (its weights,
    its history) is never taken for another's.
    """
    dump = config.model_dump(mode="json")
    dump["data"].pop("path", None)
    for section, names in UNSET_NOT_HASHED.items():
        for name in names:
            if dump[section].get(name, 0) is None:
                del dump[section][name]
    payload: dict[str, Any] = {"study": study, "config": dump, "fingerprint": fingerprint}
    if role != "train":
        payload["role"] = role  # a refit may equal a train run of another variant
    return payload


class _Fingerprints:
    """`fingerprint` called once per distinct data spec."""

    def __init__(self, fingerprint: Fingerprint) -> None:
        self.fingerprint = fingerprint
        self.cache: dict[str, str] = {}

    def __call__(self, data: DataSpec) -> str:
        key = data.model_dump_json()
        if key not in self.cache:
            self.cache[key] = self.fingerprint(data)
        return self.cache[key]


def _identify(
    spec: StudySpec, drafts: Sequence[_Draft], fingerprint: Fingerprint
) -> tuple[list[RunSpec], list[Problem]]:
    """Hash each draft (parents first), in order; a run given twice in one variant is a problem.

    Two variants may resolve to the same configuration (optimizer-sweep's Exp 2 and Exp 3
    share settings): each keeps its own runs, the later variant's identity carrying
    "copy": k (k = 1, 2, ...), so the first variant's ids do not depend on the others.
    """
    fingerprints = _Fingerprints(fingerprint)
    runs: list[RunSpec] = []
    problems: list[Problem] = []
    last: dict[str, str] = {}  # chain -> its latest run
    owner: dict[str, _Draft] = {}
    holders: dict[str, list[str | None]] = {}  # identity -> the variants resolving to it
    for order, d in enumerate(drafts):
        identity = _identity(spec.name, d.config, fingerprints(d.config.data), d.role)
        variants = holders.setdefault(_value_key(identity), [])
        if d.variant not in variants:
            variants.append(d.variant)
        if variants.index(d.variant) > 0:
            identity["copy"] = variants.index(d.variant)
        parent = last.get(d.chain) if d.chain is not None else None
        run_id = _digest({**identity, "seed": d.seed, "parent": parent})
        if d.chain is not None:
            last[d.chain] = run_id
        if run_id in owner:
            problem = (d.loc, f"{d.where} gives the same run as {owner[run_id].where}; drop one")
            if problem not in problems:
                problems.append(problem)
            continue
        owner[run_id] = d
        runs.append(
            RunSpec(
                study=spec.name,
                run_id=run_id,
                group=_digest(identity),
                config=d.config,
                seed=d.seed,
                repetition=d.repetition,
                labels=d.labels,
                variant=d.variant,
                parent=parent,
                role=d.role,
                order=order,
            )
        )
    return runs, problems


def _no_data(data: DataSpec) -> str:
    """A stand-in fingerprint for checks that read no data."""
    return ""


# --- public ---


class Labelled(Protocol):
    """Anything naming a configuration by its variant and labels (RunSpec, RunRecord, CvRow)."""

    @property
    def variant(self) -> str | None: ...
    @property
    def labels(self) -> Mapping[str, Any]: ...


def check_study(spec: StudySpec) -> list[Problem]:
    """Everything wrong with a study that its schema alone does not catch.

    Parameters
    ----------
    spec : StudySpec
        A structurally valid study.

    Returns
    -------
    list of (loc, message)
        Unknown field paths (naming the wrong part and the valid keys), repeated variant
        names, a `set` path its grid overrides, `select.over`/`chain` paths that are not
        grid paths, unknown cross-validation variants, bad table references, runs made
        invalid by an override (naming it), chains whose model changes, duplicate runs.
        Empty when the study expands cleanly.
    """
    plan = _plan(spec)
    if plan.problems:
        return plan.problems
    return _identify(spec, plan.drafts, _no_data)[1]


def study_configs(spec: StudySpec) -> tuple[list[RunConfig], list[str]]:
    """Each run's resolved configuration and how messages name it, reading no data.

    For a study `check_study` accepts; the cross-validation refits are not included.
    """
    drafts = _plan(spec).drafts
    return [d.config for d in drafts], [d.where for d in drafts]


def expand(spec: StudySpec, fingerprint: Fingerprint) -> list[RunSpec]:
    """Every run of a study, resolved and identified, in display order.

    Parameters
    ----------
    spec : StudySpec
        The study.
    fingerprint : callable DataSpec -> str
        The data fingerprint of a data spec; called once per distinct data spec.

    Returns
    -------
    list of RunSpec
        Role "train" runs (variant, grid point, repetition), then role "cv-fold" runs
        (configuration, setting, fold); `order` is the index in this list. In continue
        mode `parent` links each run to the one it continues. The cv refits are not here
        (see `refit_runs`).

    Raises
    ------
    SpecError
        The study does not expand (see `check_study`), named after the study.
    """
    plan = _plan(spec)
    if plan.problems:
        raise problems_error(plan.problems, spec.name)
    runs, problems = _identify(spec, plan.drafts, fingerprint)
    if problems:
        raise problems_error(problems, spec.name)
    return runs


def _names(c: _Configuration, base: Labelled) -> bool:
    """Whether `base` (its variant and grid labels) is configuration `c`."""
    return c.variant.name == base.variant and all(
        e.path in base.labels and _value_key(base.labels[e.path]) == _value_key(_jsonable(e.value))
        for e in c.point
    )


def refit_run(
    spec: StudySpec, base: Labelled, chosen: Mapping[str, Any], fingerprint: Fingerprint
) -> RunSpec:
    """The cv-refit run of one cross-validated configuration with its chosen setting.

    Parameters
    ----------
    spec : StudySpec
        The study, with `cross_validation`.
    base : RunSpec, RunRecord or CvRow
        Any run (or row) of the configuration: its `variant` and the labels of its grid
        paths name the configuration.
    chosen : mapping
        The setting to refit: a value for every path of `cross_validation.grid`.
    fingerprint : callable DataSpec -> str
        As for `expand`.

    Returns
    -------
    RunSpec
        Role "cv-refit", the study's seed, repetition 0, the configuration's own data
        split (all training rows) unless `cross_validation.refit_set` changes it, labels =
        variant set + grid point + chosen (as its folds'). Its id
        depends only on these, so a resumed study finds it again. `order` follows every
        expanded run, in the order of the configurations.
    """
    cv = spec.cross_validation
    if cv is None:
        raise SpecError(f"{spec.name}: the study has no cross_validation to refit")
    missing = [p for p in cv.grid if p not in chosen]
    extra = [p for p in chosen if p not in cv.grid]
    if missing or extra:
        raise SpecError(
            f"{spec.name}: a refit needs exactly the paths {list(cv.grid)}, got {list(chosen)}"
        )
    plan = _plan(spec)
    if plan.problems:
        raise problems_error(plan.problems, spec.name)
    index = next((i for i, c in enumerate(plan.searched) if _names(c, base)), None)
    if index is None:
        labels = {p: v for p, v in base.labels.items() if not p.startswith("data.validation")}
        raise SpecError(
            f"{spec.name}: no cross-validated configuration of variant {base.variant!r} "
            f"has the labels {labels}"
        )
    c = plan.searched[index]
    setting = tuple(_Entry(p, chosen[p], ("cross_validation", "grid", p)) for p in cv.grid)
    refit_only = tuple(
        _Entry(p, v, ("cross_validation", "refit_set", p)) for p, v in cv.refit_set.items()
    )
    entries = c.variant.sets + c.point + setting + refit_only
    try:
        config = _resolve(_defaults(spec), entries)
    except _Invalid as err:
        raise problems_error([_invalid_problem(c.variant, entries, err)], spec.name) from None
    identity = _identity(spec.name, config, fingerprint(config.data), "cv-refit")
    return RunSpec(
        study=spec.name,
        run_id=_digest({**identity, "seed": spec.seed, "parent": None}),
        group=_digest(identity),
        config=config,
        seed=spec.seed,
        repetition=0,
        labels=_labels(c.variant.sets + c.point + setting),  # as its folds: tables match
        variant=c.variant.name,
        parent=None,
        role="cv-refit",
        order=len(plan.drafts) + index,
    )


def refit_runs(
    spec: StudySpec, runs: Sequence[RunRecord], fingerprint: Fingerprint
) -> list[RunSpec]:
    """The refits of a study's cross-validation search, from its finished folds.

    Parameters
    ----------
    spec : StudySpec
        The study.
    runs : sequence of RunRecord
        The study's runs from the store; the cv-fold ones are scored.
    fingerprint : callable DataSpec -> str
        As for `expand`.

    Returns
    -------
    list of RunSpec
        One cv-refit run per configuration whose best setting is known (the row that
        `stats.cv_summary` marks best: the best mean fold metric, ties to the first
        setting), in configuration order; empty without cross_validation or with
        `refit: false`.
    """
    cv = spec.cross_validation
    if cv is None or not cv.refit:
        return []
    rows = cv_summary(runs, cv.metric, params=list(cv.grid))
    refits = [
        refit_run(spec, row, {p: row.setting[p] for p in cv.grid}, fingerprint)
        for row in rows
        if row.best
    ]
    return sorted(refits, key=lambda r: r.order)
