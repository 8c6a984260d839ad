"""What an analysis works from: a study's stored runs, their histories, files and data."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import Tensor

from mnistlab.analysis.contract import NotApplicable, Options
from mnistlab.data import Data, Dataset, Split
from mnistlab.data.cache import DataCache
from mnistlab.models.build import build_model
from mnistlab.runtime import make_generator
from mnistlab.status import WITH_RESULTS
from mnistlab.studies.formatting import format_value
from mnistlab.studies.records import RunConfig, RunRecord
from mnistlab.studies.spec import StudySpec
from mnistlab.studies.stats import select_best
from mnistlab.studies.store import Store


@dataclass
class Predictions:
    """A trained model's outputs on one split: inputs, labels, class probabilities."""

    split: str  # "test" or "val"
    x: np.ndarray  # (N, D) or (N, H, W) float32, as fed to the model
    y: np.ndarray  # (N,) int64 true labels
    probabilities: np.ndarray  # (N, C) float64, rows sum to 1
    scores: np.ndarray | None = None  # (N, C) decision values when the model has no probabilities
    source: str = "probability"  # what ROC curves rank by: probability, decision or output

    @property
    def ranking(self) -> np.ndarray:
        """(N, C): the scores ROC curves rank by (decision values, else probabilities)."""
        return self.probabilities if self.scores is None else self.scores

    @property
    def predicted(self) -> np.ndarray:
        """(N,) int64: the most probable class."""
        return self.probabilities.argmax(axis=1)


@dataclass
class StudyRuns:
    """A study as an analysis sees it: spec, trained runs, and lazy access to their files.

    `runs` are the finished training runs (done or diverged; cross-validation folds left
    out), in study order. Data splits, models, predictions and captures are loaded on
    first use and cached.
    """

    spec: StudySpec
    runs: list[RunRecord]
    results: Path
    store: Store
    cache: DataCache = field(default_factory=DataCache)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    # --- which runs ---

    def label(self, run: RunRecord) -> str:
        """A short label for a run: its variant and the grid values it takes, plus its seed."""
        swept = set(self.spec.grid)
        for variant in self.spec.variants:
            if variant.name == run.variant and variant.grid is not None:
                swept = set(variant.grid)
        shown = {k: v for k, v in run.labels.items() if k in swept or not run.variant}
        parts = [run.variant] if run.variant else []
        parts += [
            f"{k.rsplit('.', 1)[-1]}={format_value(v)}" for k, v in shown.items() if k != "variant"
        ]
        return f"{', '.join(parts) or 'run'} (seed {run.seed})"

    def group_label(self, run: RunRecord) -> str:
        """A configuration's label (the run's label without the seed)."""
        return self.label(run).rsplit(" (seed", 1)[0]

    def groups(self) -> list[list[RunRecord]]:
        """The runs grouped by configuration (repetitions together), in study order."""
        grouped: dict[str, list[RunRecord]] = {}
        for run in self.runs:
            grouped.setdefault(run.group, []).append(run)
        return list(grouped.values())

    def pick(self, options: Options) -> list[RunRecord]:
        """The runs an analysis looks at, per its `runs` and `max_runs` options."""
        if options.runs == "all":
            chosen = list(self.runs)
        elif options.runs == "best":
            chosen = [
                max(g, key=lambda r: r.metrics.get("val_accuracy", -math.inf))
                for g in self.groups()
            ]
        elif options.runs == "selected" and self.spec.select is not None:
            sel = self.spec.select
            picks = select_best(self.runs, sel.metric, sel.over, sel.mode, sel.best_repetition_by)
            chosen = [p.best_run for p in picks if p.best_run is not None]
        else:
            chosen = [g[0] for g in self.groups()]
        if not chosen:
            raise NotApplicable("no finished run to look at")
        return chosen[: options.max_runs]

    # --- stored data of a run ---

    def history(self, run: RunRecord) -> dict[str, list[float]]:
        """The run's History (Keras's keys, one value per epoch)."""
        return self._cached(run, "history", lambda: self.store.history(run.run_id))

    def artifact(self, run: RunRecord, kind: str) -> Path | None:
        """The absolute path of one of the run's files ("weights", "captures"), if stored."""
        row = self.store.artifacts(run.run_id).get(kind)
        return None if row is None else self.results / row.path

    def captures(self, run: RunRecord) -> dict[str, np.ndarray]:
        """The run's training-time arrays ({} when it recorded none)."""

        def load() -> dict[str, np.ndarray]:
            path = self.artifact(run, "captures")
            if path is None or not path.is_file():
                return {}
            with np.load(path) as archive:
                return {k: archive[k] for k in archive.files}

        return self._cached(run, "captures", load)

    def config(self, run: RunRecord) -> RunConfig:
        """The run's resolved configuration as a spec."""
        return RunConfig.model_validate(run.config)

    def dataset(self, run: RunRecord) -> Dataset:
        """The run's dataset as read (uint8 images), shared across runs."""
        return self.cache.dataset(self.config(run).data)

    def data(self, run: RunRecord) -> Data:
        """The run's splits (scaled float32 tensors), made once per data spec."""
        return self.cache.data(self.config(run).data, self.device)

    def image_shape(self, run: RunRecord) -> tuple[int, ...]:
        """(H, W) of one image, for drawing inputs."""
        shape = self.dataset(run).image_shape
        return shape if len(shape) == 2 else _square(int(np.prod(shape)))

    def model(self, run: RunRecord) -> torch.nn.Module:
        """The run's final model, rebuilt from its config and loaded from its weights file."""

        def load() -> torch.nn.Module:
            config = self.config(run)
            path = self.artifact(run, "weights")
            if path is None or not path.is_file():
                raise NotApplicable(f"run {run.run_id}: its weights file is missing")
            data = self.data(run)
            try:
                net = build_model(config.model, data.input_shape, data.n_classes, make_generator(0))
            except ValueError as exc:  # not a torch network (e.g. scikit-learn)
                raise NotApplicable(str(exc)) from None
            net.load_state_dict(load_file(str(path)))
            return net.to(self.device).eval()

        return self._cached(run, "model", load)

    def images(self, run: RunRecord, split: str) -> np.ndarray:
        """A split's inputs as scaled but before any feature step: the images people look at."""
        spec = self.config(run).data.model_copy(update={"features": ()})
        data = self.cache.data(spec, self.device)
        chosen = {"train": data.train, "val": data.val, "test": data.test}[split]
        if chosen is None:
            raise NotApplicable(f"the study has no {split} split")
        return chosen.x.cpu().numpy()

    def evaluation_split(self, run: RunRecord) -> tuple[str, Split]:
        """The split predictions are shown on: test, else validation."""
        data = self.data(run)
        if data.test is not None:
            return "test", data.test
        if data.val is not None:
            return "val", data.val
        raise NotApplicable("the study has neither test nor validation data")

    def predictions(self, run: RunRecord) -> Predictions:
        """The run's final model's class probabilities on the test (else validation) split."""

        def compute() -> Predictions:
            name, split = self.evaluation_split(run)
            if self.config(run).model.kind in ("sklearn", "numpy"):
                return self._stored_predictions(run, name, split)
            net = self.model(run)
            probabilities = batched(lambda x: torch.softmax(net(x), dim=-1), split.x)
            return Predictions(
                name, split.x.cpu().numpy(), split.y.cpu().numpy(), probabilities.astype(np.float64)
            )

        return self._cached(run, "predictions", compute)

    def _stored_predictions(self, run: RunRecord, name: str, split: Split) -> Predictions:
        """A scikit-learn or NumPy run's stored class scores (`runs/<id>.scores.npz`)."""
        path = self.artifact(run, "scores")
        if path is None or not path.is_file():
            raise NotApplicable(f"run {run.run_id}: its scores file is missing")
        with np.load(path) as archive:
            if f"scores_{name}" not in archive.files:
                raise NotApplicable(f"run {run.run_id}: no stored scores on the {name} split")
            scores = archive[f"scores_{name}"].astype(np.float64)
            source = str(archive["source"])
        x = split.x.cpu().numpy()
        y = split.y.cpu().numpy()
        if source == "decision":  # shown as softmax(decision), ranked by the raw values
            shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
            return Predictions(
                name, x, y, shifted / shifted.sum(axis=1, keepdims=True), scores, source
            )
        return Predictions(name, x, y, scores, None, source)

    def _cached(self, run: RunRecord, what: str, make: Any) -> Any:
        key = (run.run_id, what)
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]


EVAL_CHUNK = 4096  # rows per inference batch


@torch.no_grad()
def batched(fn: Any, x: Tensor, chunk: int = EVAL_CHUNK) -> np.ndarray:
    """Apply `fn` to `x` in chunks of rows and return the concatenated result as NumPy."""
    return np.concatenate([fn(x[i : i + chunk]).cpu().numpy() for i in range(0, len(x), chunk)])


def _square(features: int) -> tuple[int, ...]:
    side = math.isqrt(features)
    return (side, side) if side * side == features else (features,)


def finished_runs(records: Sequence[RunRecord]) -> list[RunRecord]:
    """Training runs with weights and a history, in study order."""
    return [r for r in records if r.role == "train" and r.status in WITH_RESULTS]
