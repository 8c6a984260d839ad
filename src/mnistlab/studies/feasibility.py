"""What a study's runs need, checked before any run starts: run count, rows, shapes, memory.

`run` and `check` share these checks (through `loading.parse_study`), so a study `check`
accepts is one `run` does not refuse: the number of runs is counted before expanding
(`count_planned`), and each distinct resolved configuration is checked against the known
sizes of its dataset (`KnownDataset.train_rows`, ...), its CNN's layer shapes, its feature
steps and the memory of this machine. Configurations on your own data (a `path`) are
checked for what can be known without reading it.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from mnistlab.data.features import ForestSelectStep, PCAStep, check_steps
from mnistlab.data.registry import KnownDataset, dataset_names, get_dataset
from mnistlab.data.spec import (
    DataSpec,
    SubsetBalanced,
    SubsetRandom,
    SubsetSpec,
    ValidationFold,
    ValidationFraction,
    ValidationHead,
    ValidationRandom,
    ValidationTail,
)
from mnistlab.errors import SpecError
from mnistlab.models import MLPSpec
from mnistlab.models.classic import NumpySpec
from mnistlab.models.cnn_spec import (
    CNNSpec,
    Conv2D,
    Dense,
    image_shape_of,
    layer_shapes,
    pair,
)
from mnistlab.runtime import available_memory
from mnistlab.studies.records import RunConfig
from mnistlab.studies.spec import Loc, Problem, StudySpec

DEFAULT_MAX_RUNS = 100_000  # `--max-runs`: more runs than this is a typo, not a study
MAX_EPOCHS = 10_000  # above this, a run gets a warning with its estimated time
MAX_STEPS_PER_EPOCH = 100_000
BYTES_PER_VALUE = 4  # float32
TRAINING_COPIES = 5  # weights, gradients, two optimiser moments, a best-weights copy
ACTIVATION_COPIES = 3  # forward values, their gradients, dropout / BN buffers
ROUGH_FLOPS = 2e10  # a CPU's sustained float32 rate, for time estimates without a measured pace
FLOPS_PER_PARAM_ROW = 6  # forward and backward multiply-adds per parameter per row
_LEADING_FIELD = re.compile(r"^([A-Za-z_][\w.\[\]]*)( \(\w+\))?: (.*)$")  # path (kind): why


def count_planned(spec: StudySpec) -> int:
    """How many runs the study expands to (refits not counted), by arithmetic, building none."""
    cv = spec.cross_validation
    chosen = None if cv is None or cv.variants is None else set(cv.variants)
    searches = 0 if cv is None else math.prod(len(v) for v in cv.grid.values()) * cv.folds
    variants = spec.variants or [None]
    total = 0
    for variant in variants:
        grid = spec.grid if variant is None or variant.grid is None else variant.grid
        points = math.prod(len(values) for values in grid.values())
        total += points * spec.repetitions.count
        if cv is not None and (variant is None or chosen is None or variant.name in chosen):
            total += points * searches
    return total


def run_count_problems(spec: StudySpec, max_runs: int) -> list[Problem]:
    """A one-line problem when the study expands to more than `max_runs` runs."""
    count = count_planned(spec)
    if count <= max_runs:
        return []
    return [
        (
            ("grid",) if spec.grid else (),
            f"the study expands to {count:,} runs, over the limit of {max_runs:,}; "
            "shrink the grid or raise --max-runs",
        )
    ]


@dataclass(frozen=True)
class _Sizes:
    """What a configuration's data holds, as far as is known without reading it."""

    train: int | None  # training rows after the subset and the validation split
    features: int | None  # features per row reaching the model
    image: tuple[int, int] | None
    classes: int | None


def _subset_rows(subset: SubsetSpec | None, rows: int, classes: int, field: str) -> int:
    """Rows a subset keeps of `rows`; SpecError naming `field` when it asks for more."""
    if subset is None:
        return rows
    if isinstance(subset, SubsetRandom) and subset.replace:
        return subset.n
    if isinstance(subset, SubsetBalanced):
        asked = subset.per_class * classes
        if asked > rows:
            raise SpecError(
                f"{field}.per_class: {subset.per_class:,} rows of each of {classes} classes "
                f"is {asked:,} rows, more than the {rows:,} there are"
            )
        return asked
    if subset.n > rows:
        raise SpecError(f"{field}.n: {subset.n:,} rows asked of the {rows:,} there are")
    return subset.n


def _validation_rows(data: DataSpec, rows: int) -> int:
    """Training rows left after the validation split; SpecError when a part would be empty."""
    split = data.validation
    if isinstance(split, ValidationHead | ValidationTail) or (
        isinstance(split, ValidationRandom) and split.n is not None
    ):
        n = split.n or 0
        if n >= rows:
            raise SpecError(
                f"data.validation.n: {n:,} validation rows asked of the {rows:,} training "
                "rows, leaving none to train on"
            )
        return rows - n
    fraction = getattr(split, "fraction", None)
    if isinstance(split, ValidationFraction | ValidationRandom) and fraction is not None:
        kept = int(rows * (1 - fraction))
        if kept < 1 or kept >= rows:
            raise SpecError(
                f"data.validation.fraction: {fraction} of {rows:,} training rows leaves "
                f"{kept:,} to train on and {rows - kept:,} to validate on; both need rows"
            )
        return kept
    if isinstance(split, ValidationFold):
        if split.folds > rows:
            raise SpecError(f"data.validation.folds: {split.folds} folds of {rows:,} rows")
        return rows - rows // split.folds
    return rows


def _features_after(data: DataSpec, features: int) -> int:
    """Features per row after the feature steps (checked against what reaches each)."""
    check_steps(data.features, features)
    for step in data.features:
        if isinstance(step, PCAStep) and isinstance(step.n_components, int):
            features = step.n_components
        elif isinstance(step, ForestSelectStep):
            features = step.k
    return features


def _sizes(data: DataSpec) -> _Sizes:
    """The sizes a configuration's data has; unknown (None) for your own files."""
    if data.dataset not in dataset_names() or data.regression is not None:
        return _Sizes(None, None, None, None)
    known: KnownDataset = get_dataset(data.dataset)
    if known.train_rows is None or known.test_rows is None or known.image_shape is None:
        return _Sizes(None, None, None, known.n_classes)
    rows = _subset_rows(data.train_subset, known.train_rows, known.n_classes, "data.train_subset")
    _subset_rows(data.test_subset, known.test_rows, known.n_classes, "data.test_subset")
    train = _validation_rows(data, rows)
    features = _features_after(data, math.prod(known.image_shape))
    image = known.image_shape if not data.features else None
    return _Sizes(train, features, image, known.n_classes)


@dataclass(frozen=True)
class ModelSize:
    """A model's parameters and the values one training batch holds besides them."""

    params: int
    activations: int  # per row

    def training_bytes(self, batch_size: int) -> int:
        """Estimated memory to train it at `batch_size` (float32)."""
        values = self.params * TRAINING_COPIES + self.activations * batch_size * ACTIVATION_COPIES
        return values * BYTES_PER_VALUE


def _dense_size(units: Sequence[int], inputs: int, outputs: int) -> ModelSize:
    """Parameters and per-row activations of a stack of Dense layers."""
    widths = [inputs, *units, outputs]
    params = sum((a + 1) * b for a, b in itertools.pairwise(widths))
    return ModelSize(params, sum(widths))


def _cnn_size(spec: CNNSpec, image: tuple[int, int], outputs: int) -> ModelSize:
    """Parameters and per-row activations of a CNN, from its layer shapes."""
    shapes = layer_shapes(spec, image)
    params, previous = 0, (*image, 1)
    for layer, shape in zip(spec.layers, shapes, strict=False):
        if isinstance(layer, Conv2D):
            kh, kw = pair(layer.kernel_size)
            params += kh * kw * previous[-1] * layer.filters + layer.filters * layer.use_bias
        elif isinstance(layer, Dense):
            params += (previous[0] + 1) * layer.units
        previous = shape
    params += (previous[0] + 1) * outputs
    return ModelSize(params, sum(math.prod(s) for s in shapes) + math.prod(image))


def model_size(config: RunConfig, sizes: _Sizes | None = None) -> ModelSize | None:
    """A run's model size before it is built; None for models that are not networks."""
    sizes = sizes or _sizes(config.data)
    model = config.model
    outputs = getattr(model, "outputs", None) or sizes.classes or 1
    if isinstance(model, MLPSpec | NumpySpec):
        return _dense_size(model.hidden, sizes.features or 1, outputs)
    if isinstance(model, CNNSpec):
        if sizes.features is None:
            return None
        flat = (sizes.features,) if sizes.image is None else sizes.image
        return _cnn_size(model, image_shape_of(model, flat), outputs)
    return None


def _located(exc: SpecError) -> Problem:
    """`data.train_subset.n: ...` as the problem (its field path, the rest of the message)."""
    message = str(exc)
    found = _LEADING_FIELD.match(message)
    if found is None:
        return (), message
    parts: list[str | int] = []
    for part in re.split(r"\.|\[", found.group(1)):
        if part.endswith("]") and part[:-1].isdigit():
            parts.append(int(part[:-1]))
        elif part and not part.endswith("]"):
            parts.append(part)
    kind = found.group(2) or ""
    return tuple(parts), f"{kind.strip()} {found.group(3)}".lstrip()


def _config_problems(config: RunConfig, memory: int | None) -> list[Problem]:
    """What would stop this configuration's run before its first step."""
    try:
        sizes = _sizes(config.data)
        size = model_size(config, sizes)
    except SpecError as exc:
        return [_located(exc)]
    problems: list[Problem] = []
    batch = config.training.batch_size
    if sizes.train is not None and batch > sizes.train:
        problems.append(
            (
                ("training", "batch_size"),
                f"{batch:,} is more than the {sizes.train:,} training rows of a run",
            )
        )
    if size is not None and memory is not None and size.training_bytes(batch) > memory:
        where: Loc = ("model", "layers" if isinstance(config.model, CNNSpec) else "hidden")
        problems.append(
            (
                where,
                f"the model has {size.params:,} parameters and needs about "
                f"{size.training_bytes(batch) / 1e9:,.1f} GB to train at batch size {batch:,}, "
                f"over the {memory / 1e9:,.1f} GB of memory available",
            )
        )
    return problems


def plan_problems(configs: Sequence[RunConfig], label: Sequence[str]) -> list[Problem]:
    """Every distinct problem of the study's resolved configurations, each naming a run.

    `label[i]` says which run `configs[i]` is (e.g. "variant 'wide', model.hidden=[512]").
    """
    memory = available_memory()
    named = len(set(label)) > 1  # a one-run study needs no run named
    seen: dict[str, Problem] = {}
    checked: set[str] = set()
    for config, name in zip(configs, label, strict=True):
        key = config.model_dump_json()
        if key in checked:
            continue
        checked.add(key)
        for loc, message in _config_problems(config, memory):
            if message not in seen:
                seen[message] = (loc, f"{message} ({name})" if named else message)
    return list(seen.values())


def _epoch_seconds(config: RunConfig) -> float | None:
    """A rough time per epoch from the model's size and the data's rows (None: unknown)."""
    sizes = _sizes(config.data)
    size = model_size(config, sizes)
    steps = config.training.steps_per_epoch
    rows = steps * config.training.batch_size if steps is not None else sizes.train
    if size is None or rows is None:
        return None
    return FLOPS_PER_PARAM_ROW * size.params * rows / ROUGH_FLOPS


def long_training_warnings(
    configs: Sequence[RunConfig], seconds_per_epoch: float | None = None
) -> list[str]:
    """One line per distinct over-long setting: epochs or steps_per_epoch above their bound.

    `seconds_per_epoch` is the measured pace (`runner.Plan.seconds_per_epoch`) when known;
    without it the time is a rough estimate from the model size and rows.
    """
    warnings: dict[str, None] = {}
    for config in configs:
        training = config.training
        over = []
        if training.epochs > MAX_EPOCHS:
            over.append(f"training.epochs: {training.epochs:,} epochs is above {MAX_EPOCHS:,}")
        steps = training.steps_per_epoch
        if steps is not None and steps > MAX_STEPS_PER_EPOCH:
            over.append(
                f"training.steps_per_epoch: {steps:,} steps is above {MAX_STEPS_PER_EPOCH:,}"
            )
        if not over:
            continue
        pace = seconds_per_epoch
        how = "at the measured pace"
        if pace is None:
            pace, how = _epoch_seconds(config), "roughly"
        if pace is None:
            when = "time not estimated (the data's size is unknown)"
        else:
            when = f"{how} {pace * training.epochs / 3600:,.3g} h per run"
        warnings["; ".join(over) + f": {when}"] = None
    return list(warnings)
