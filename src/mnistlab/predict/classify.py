"""`predict_files`: classify digit images with a stored run or a weights file with its card."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from mnistlab.data.cache import DataCache
from mnistlab.data.scaling import Scaler
from mnistlab.errors import DataError, MnistlabError
from mnistlab.models.build import build_model
from mnistlab.models.card import ModelCard, read_card
from mnistlab.predict.images import FIELD, load_digit
from mnistlab.runtime import make_generator
from mnistlab.status import WITH_RESULTS
from mnistlab.studies.records import RunConfig, RunRecord
from mnistlab.studies.results_folder import DB_NAME, has_store, open_store

TOP = 3  # probabilities shown per image


@dataclass(frozen=True)
class Classifier:
    """A trained network ready for new images: the network, its input shape and scaler."""

    net: torch.nn.Module
    input_shape: tuple[int, ...]
    scaler: Scaler | None
    name: str  # what MODEL resolved to, for messages

    @torch.no_grad()
    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities of (N, 28, 28) uint8 images, as (N, classes) float64."""
        x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32))
        if self.scaler is not None:
            x = self.scaler.apply(x)
        x = x.reshape(len(images), *self.input_shape)
        logits = self.net(x)
        return torch.softmax(logits.double(), dim=-1).numpy()


@dataclass(frozen=True)
class Prediction:
    """One file's outcome: the digit and its probabilities, or the one-line error."""

    file: str
    digit: int | None = None
    probabilities: tuple[float, ...] = ()
    error: str | None = None

    def top(self, k: int = TOP) -> list[tuple[int, float]]:
        """The k most probable classes with their probabilities, most probable first."""
        order = np.argsort(self.probabilities)[::-1][:k]
        return [(int(c), float(self.probabilities[c])) for c in order]


def load_classifier(model: str, results: Path, data_dir: Path | None = None) -> Classifier:
    """Resolve MODEL: a safetensors file with its card, or a stored run (`study/run` or id).

    A run reference is a run id, a unique prefix of one, or `study/prefix`, looked up in
    the store of `results`. Runs stored without a card in their weights file are rebuilt
    from the store's configuration, their scaler refitted on their training data.

    Raises
    ------
    MnistlabError
        One line: no such file or run, an ambiguous prefix, a file without a card, or a
        model that is not a network for 28×28 images.
    """
    path = Path(model)
    if path.suffix == ".safetensors" or path.is_file():
        if not path.is_file():
            raise DataError(f"{model}: no such weights file")
        try:
            card = read_card(path)
        except (OSError, ValueError) as exc:
            raise DataError(f"{model}: not a readable safetensors file ({exc})") from None
        if card is None:
            raise DataError(
                f"{model}: the file has no model card (configuration and scaler); "
                "name the stored run instead (STUDY/RUN_ID)"
            )
        return _reads_mnist(build_classifier(card, path, model))
    return _reads_mnist(_stored_run(model, results, data_dir))


def _stored_run(reference: str, results: Path, data_dir: Path | None) -> Classifier:
    """A stored run's classifier, from the store in `results`."""
    if not has_store(results):
        raise MnistlabError(
            f"{reference}: not a weights file, and {results / DB_NAME} does not exist "
            "(use --results to point at the results folder)"
        )
    study, _, prefix = reference.rpartition("/")
    with open_store(results) as store:
        studies = [study] if study else [s.name for s in store.list_studies()]
        matches = [
            run
            for name in studies
            for run in store.runs(name, statuses=WITH_RESULTS)
            if run.run_id.startswith(prefix)
        ]
        if not matches:
            raise MnistlabError(f"{reference}: no finished run with that id in {results}")
        if len({m.run_id for m in matches}) > 1:
            ids = ", ".join(sorted(f"{m.study}/{m.run_id}" for m in matches)[:5])
            raise MnistlabError(f"{reference}: matches several runs ({ids}); give more digits")
        run = matches[0]
        row = store.artifacts(run.run_id).get("weights")
    if row is None or not (results / row.path).is_file():
        raise DataError(f"{reference}: the run's weights file is missing")
    return run_classifier(run, results / row.path, data_dir)


def run_classifier(run: RunRecord, weights: Path, data_dir: Path | None = None) -> Classifier:
    """A stored run's trained network, rebuilt from its weights file, in eval mode.

    The file's model card gives the configuration, shapes and scaler; a file written before
    weights carried a card is rebuilt from the run's configuration and its data (read from
    `data_dir`), the scaler refitted on its training split.

    Raises
    ------
    MnistlabError
        One line: the run's model is not a torch network (scikit-learn, NumPy).
    """
    card = read_card(weights)
    if card is None:  # stored before weights carried a card: rebuild it from the data
        config = RunConfig.model_validate(run.config)
        data = DataCache(data_dir).data(config.data, torch.device("cpu"))
        card = ModelCard(run.config, data.input_shape, data.n_classes, data.scaler)
    return build_classifier(card, weights, f"{run.study}/{run.run_id}")


def _reads_mnist(classifier: Classifier) -> Classifier:
    """The classifier, when it reads 28×28 images as `predict` gives them; else one line."""
    if int(np.prod(classifier.input_shape)) != FIELD * FIELD:
        raise MnistlabError(
            f"{classifier.name}: the model reads {list(classifier.input_shape)} inputs; predict"
            f" needs a model trained on {FIELD}x{FIELD} images"
        )
    return classifier


def build_classifier(card: ModelCard, path: Path, name: str) -> Classifier:
    """The card's network with the weights of `path` loaded, in eval mode; `name` is for
    messages. A model that is not a torch network is a one-line `MnistlabError`."""
    config = RunConfig.model_validate(card.config)
    try:
        net = build_model(config.model, card.input_shape, card.n_classes, make_generator(0))
    except ValueError as exc:
        raise MnistlabError(f"{name}: {exc}") from None
    net.load_state_dict(load_file(str(path)))
    return Classifier(net.eval(), card.input_shape, card.scaler, name)


def predict_files(
    model: str, images: list[Path], results: Path = Path("results"), data_dir: Path | None = None
) -> list[Prediction]:
    """Classify each image file; a file that cannot be read becomes an error, the rest go on.

    Parameters
    ----------
    model : a safetensors file with a model card, or a stored run (`study/run_id`, a run id
        or a unique prefix of one).
    images : PNG / JPEG files of single digits, any size, dark-on-light or light-on-dark.
    results : the results folder holding the store.
    data_dir : where to look for the run's dataset (only for runs stored without a card).

    Returns
    -------
    list of Prediction, one per image, in order.

    Raises
    ------
    MnistlabError
        When MODEL cannot be resolved (per-image problems are returned, not raised).
    """
    classifier = load_classifier(model, results, data_dir)
    digits: list[np.ndarray] = []
    outcomes: list[Prediction | int] = []
    for path in images:
        try:
            digits.append(load_digit(path))
            outcomes.append(len(digits) - 1)
        except DataError as exc:
            outcomes.append(Prediction(str(path), error=str(exc)))
    probabilities = classifier.probabilities(np.stack(digits)) if digits else np.empty((0, 0))
    return [
        outcome
        if isinstance(outcome, Prediction)
        else Prediction(
            str(path),
            digit=int(probabilities[outcome].argmax()),
            probabilities=tuple(float(p) for p in probabilities[outcome]),
        )
        for path, outcome in zip(images, outcomes, strict=True)
    ]
