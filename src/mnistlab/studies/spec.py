"""The study file's schema: `StudySpec` and its parts, and problems worded as one-line errors.

A study gives the defaults of every run (`data`, `model`, `training`), then what varies:
a `grid` (a cartesian product over dotted field paths of the run configuration, e.g.
``model.hidden`` or ``training.optimizer.learning_rate``), named `variants` (override sets,
each crossed with the grid or with its own), `repetitions` (seeds, or continued training)
and an optional `cross_validation` search. `select`, `analyses` and `table` say what to
report. Reading a file safely and checking all of it is `mnistlab.studies.loading`.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Callable, Sequence
from types import UnionType
from typing import Annotated, Any, Literal, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from mnistlab.data import DataSpec
from mnistlab.errors import SpecError, spec_error
from mnistlab.models import MLPSpec, ModelSpec
from mnistlab.spec import Spec
from mnistlab.studies.records import RunConfig
from mnistlab.training.spec import TrainSpec

KNOWN_ANALYSES: tuple[str, ...] = (
    "curves",
    "zero_one_error",
    "confusion_matrix",
    "classification_report",
    "confused_pairs",
    "confident_mistakes",
    "roc",
    "predictions",
    "model_table",
    "model_summary",
    "weight_histograms",
    "weight_violins",
    "hidden_weights_images",
    "learning_speed",
    "chain_product",
    "hidden_activations",
    "tsne",
    "activation_maximization",
    "data_overview",
    "pca",
    "feature_selection",
    "decision_regions",
    "svm_intuition",
    "regression_fit",
    "initial_predictions",
    "feature_maps",
    "accuracy_vs_time",
)
"""The analysis names a study may ask for (implemented by `mnistlab.analysis`)."""

Loc = tuple[str | int, ...]
"""Where in the study file: keys and list indices, e.g. ("variants", 2, "set", "model.hidden")."""

Problem = tuple[Loc, str]
"""One thing wrong with a study: where, and what (one line)."""

LineOf = Callable[[Loc], int | None]
"""The 1-based line of the file a location is written on (None: not in the file)."""

_SLUG = r"[a-z0-9][a-z0-9_-]*"  # a study name
_MAX_PROBLEMS = 20  # more than this many problems are counted, not listed

# --- parts of a study ---


def _non_empty(values: list[Any]) -> list[Any]:
    """A grid key needs at least one value."""
    if not values:
        raise ValueError("a grid key needs at least one value; remove the key to keep the default")
    return values


GridValues = Annotated[
    list[Any], AfterValidator(_non_empty), Field(json_schema_extra={"minItems": 1})
]
Grid = dict[str, GridValues]
"""Dotted field path of the run configuration -> the values it takes, in order."""


class VariantSpec(Spec):
    """A named set of overrides, crossed with the study grid or with its own `grid`."""

    name: str = Field(min_length=1, description="shown in tables; unique within the study")
    set: dict[str, Any] = Field(
        default_factory=dict, description="dotted field path -> value, applied to every run"
    )
    grid: Grid | None = Field(
        default=None,
        description="replaces the study grid for this variant; {} = no grid; null = the study's",
    )
    seed: NonNegativeInt | None = Field(
        default=None,
        description="this variant's base seed (repetition i uses seed + i); null: the study's",
    )


class RepetitionsSpec(Spec):
    """How many runs per configuration, and whether each starts fresh or continues the last."""

    count: PositiveInt = Field(default=1, description="repetitions i = 0..count-1, seed + i")
    mode: Literal["fresh", "continue"] = Field(
        default="fresh",
        description="continue: each run of a chain starts from the previous run's final weights",
    )
    chain: list[str] | None = Field(
        default=None,
        description="continue mode: the grid paths a chain runs through (null: all of them)",
    )

    @model_validator(mode="after")
    def _chain_needs_continue(self) -> RepetitionsSpec:
        if self.chain is not None and self.mode != "continue":
            raise ValueError("chain is only used with mode: continue")
        return self


def _count_alone(value: Any) -> Any:
    """`repetitions: 4` is `{count: 4}`."""
    if isinstance(value, int) and not isinstance(value, bool):
        return {"count": value}
    return value


Repetitions = Annotated[
    RepetitionsSpec,
    BeforeValidator(_count_alone, json_schema_input_type=PositiveInt | RepetitionsSpec),
]


class SelectSpec(Spec):
    """Per family of runs differing only in `over` (and seed): the best value, then repetition."""

    metric: str = Field(min_length=1, description="ranks the values by its mean, e.g. val_accuracy")
    over: str = Field(description="a grid path, e.g. training.optimizer.learning_rate")
    mode: Literal["max", "min", "auto"] = Field(
        default="auto", description="auto: max when the metric's name contains 'acc'"
    )
    best_repetition_by: str | None = Field(
        default=None, description="picks the best repetition of the best value (null: metric)"
    )

    @property
    def direction(self) -> Literal["max", "min"]:
        """'max' or 'min', with 'auto' resolved as Keras does ('acc' in the name: max)."""
        if self.mode == "auto":
            return "max" if "acc" in self.metric else "min"
        return self.mode

    @property
    def repetition_metric(self) -> str:
        """The metric that picks the best repetition."""
        return self.best_repetition_by or self.metric


class CrossValidationSpec(Spec):
    """A k-fold search over `grid` for each configuration, in addition to its runs.

    Fold i of `folds` contiguous, unshuffled folds of the training rows is the validation
    data of one run (role "cv-fold"); the best setting by the mean fold `metric` is then
    refitted on all the training data (role "cv-refit") when `refit`.
    """

    folds: int = Field(ge=2, description="contiguous, unshuffled folds (scikit-learn KFold)")
    stratified: bool = Field(
        default=False,
        description="StratifiedKFold folds, as GridSearchCV makes them for a classifier "
        "given class ids (scikit-learn models); false: KFold, as KerasClassifier's one-hot",
    )
    grid: Grid = Field(default_factory=dict, description="the searched field paths and values")
    metric: str = Field(default="val_accuracy", description="the fold score (held-out fold)")
    refit: bool = Field(default=True, description="train the best setting on all training data")
    refit_set: dict[str, Any] = Field(
        default_factory=dict,
        description="field path -> value for the refit only, e.g. a larger "
        "data.train_subset than the search used",
    )
    variants: list[str] | None = Field(
        default=None, description="names of the variants searched (null: every variant)"
    )


def _bare_name(value: Any) -> Any:
    """`curves` is `{name: curves}`."""
    return {"name": value} if isinstance(value, str) else value


class AnalysisSpec(Spec):
    """One analysis to compute for the study's runs, with its options."""

    name: str = Field(json_schema_extra={"enum": list(KNOWN_ANALYSES)})
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in KNOWN_ANALYSES:
            raise ValueError(f"unknown analysis, expected one of: {', '.join(KNOWN_ANALYSES)}")
        return name


Analysis = Annotated[
    AnalysisSpec,
    BeforeValidator(_bare_name, json_schema_input_type=Literal[KNOWN_ANALYSES] | AnalysisSpec),
]


class TableColumn(Spec):
    """A column of `mnistlab show`: a field of the run (or "variant"), or a final metric."""

    title: str = Field(min_length=1)
    field: str | None = Field(
        default=None, description='"variant", or a dotted path of the resolved configuration'
    )
    metric: str | None = Field(default=None, description="a final metric, e.g. test_accuracy")

    @model_validator(mode="after")
    def _one_source(self) -> TableColumn:
        if (self.field is None) == (self.metric is None):
            raise ValueError("give exactly one of field or metric")
        return self


class TableSpec(Spec):
    """Which columns `mnistlab show` prints, and how its rows are sorted."""

    columns: list[TableColumn] = Field(min_length=1)
    sort: str | None = Field(
        default=None,
        description="a column's title, metric or field; a leading '-' sorts descending",
    )


class StudySpec(Spec):
    """A study file: the defaults of every run, what varies, and what to report."""

    name: str = Field(
        description="a slug: lowercase letters, digits, '-' and '_'",
        json_schema_extra={"pattern": f"^{_SLUG}$"},
    )
    description: str = ""
    seed: NonNegativeInt = Field(default=0, description="base seed: repetition i uses seed + i")
    data: DataSpec = DataSpec()
    model: ModelSpec = Field(
        default=MLPSpec(), description="the model; `kind` picks its type (mlp when absent)"
    )
    training: TrainSpec = TrainSpec()
    grid: Grid = Field(
        default_factory=dict,
        description="field path -> values; the product of all keys, the last varying fastest",
    )
    variants: list[VariantSpec] = Field(
        default_factory=list, description="named override sets; none = one unnamed variant"
    )
    repetitions: Repetitions = RepetitionsSpec()
    select: SelectSpec | None = None
    cross_validation: CrossValidationSpec | None = None
    analyses: list[Analysis] = Field(default_factory=list)
    table: TableSpec | None = None

    @field_validator("name")
    @classmethod
    def _slug(cls, name: str) -> str:
        if not re.fullmatch(_SLUG, name):
            raise ValueError(
                "must be a slug: lowercase letters, digits, '-' and '_', "
                "starting with a letter or digit"
            )
        return name


def study_json_schema() -> dict[str, Any]:
    """The JSON Schema of a study file (docs/study.schema.json is this, written out).

    Returns
    -------
    dict
        A JSON Schema (draft 2020-12) for editors and linters; field paths in `grid`,
        `set` and friends are checked by `load_study`, not by the schema.
    """
    schema = StudySpec.model_json_schema()
    schema["title"] = "mnistlab study"
    return schema


# --- field paths of the run configuration ---


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The spec classes a field's type may hold (unions and Annotated unwrapped, not tuples)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is UnionType:
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _fields_of(annotations: Sequence[Any]) -> dict[str, list[Any]]:
    """Field name -> its types, over every spec class the annotations may hold, in order."""
    fields: dict[str, list[Any]] = {}
    for annotation in annotations:
        for model in _models_in(annotation):
            for name, info in model.model_fields.items():
                fields.setdefault(name, []).append(info.annotation)
    return fields


def config_path_error(path: str) -> str | None:
    """Why `path` is not a dotted field path of the run configuration, or None when it is.

    Parameters
    ----------
    path : str
        E.g. "model.hidden" or "training.optimizer.learning_rate". A path into a union
        (the optimizer, the validation split) is valid when any of its kinds has the field.

    Returns
    -------
    str or None
        One line naming the wrong part and the valid keys at that level.
    """
    parts = path.split(".")
    if not path or any(not p for p in parts):
        return f"{path!r} is not a field path; write keys joined by dots, e.g. model.hidden"
    annotations: list[Any] = [RunConfig]
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth]) or "the run configuration"
        fields = _fields_of(annotations)
        if not fields:
            return f"{where} is a value, it has no field {part!r}"
        if part not in fields:
            close = difflib.get_close_matches(part, list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return f"{part!r} is not a field of {where}{hint}; valid: {', '.join(fields)}"
        annotations = fields[part]
    return None


# --- problems -> one-line errors ---


def format_loc(loc: Loc) -> str:
    """`("variants", 2, "set", "model.hidden")` -> "variants[2].set.model.hidden"."""
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")


def problems_error(
    problems: Sequence[Problem], source: str, lines: LineOf | None = None
) -> SpecError:
    """One `SpecError` holding every problem as `source: line N: field.path: message`, one a line.

    Parameters
    ----------
    problems : sequence of (loc, message)
        As `mnistlab.studies.expand.check_study` returns them.
    source : str
        The file name (or the study's name when it has no file).
    lines : callable loc -> line, optional
        The file's line of a location (`loading.LineIndex.line`); without it no line numbers.
    """
    located = [(lines(loc) if lines is not None else None, loc, m) for loc, m in problems]
    located.sort(key=lambda p: float("inf") if p[0] is None else p[0])  # stable: file order
    out = []
    for line, loc, message in located[:_MAX_PROBLEMS]:
        where = f"line {line}: " if line is not None else ""
        field = f"{format_loc(loc)}: " if loc else ""
        out.append(f"{source}: {where}{field}{message}")
    if len(problems) > _MAX_PROBLEMS:
        out.append(f"{source}: and {len(problems) - _MAX_PROBLEMS} more problems")
    return SpecError("\n".join(out))


class _OneError:
    """One pydantic error dressed as a ValidationError, so `spec_error` words it as everywhere."""

    def __init__(self, error: Any) -> None:
        self.error = error

    def errors(self, include_url: bool = False) -> list[Any]:
        return [self.error]


def validation_problems(exc: ValidationError) -> list[Problem]:
    """Each pydantic error as (its location in the file, its one-line message)."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if p != "[key]")  # a dict key's error: the key's line
        message = str(spec_error(cast(ValidationError, _OneError({**err, "loc": ()}))))
        problems.append((loc, message))
    return problems
