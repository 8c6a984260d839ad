"""The UI's trained models: classify a drawn digit as `mnistlab predict` would, and a run's
Keras-style summary."""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mnistlab.errors import DataError, MnistlabError
from mnistlab.predict import load_classifier
from mnistlab.predict.classify import Classifier
from mnistlab.predict.images import mnist_style

CACHED_MODELS = 8  # classifiers kept in memory, so each stroke does not reload the weights
DATA_URL_PREFIX = "data:image/png;base64,"


@dataclass(frozen=True)
class Drawing:
    """A drawing's outcome: the digit, the class probabilities and the 28×28 image the
    network saw (uint8, white on black, as MNIST)."""

    digit: int
    probabilities: list[float]
    image: list[list[int]]


@lru_cache(maxsize=CACHED_MODELS)
def _classifier(model: str, results: Path) -> Classifier:
    return load_classifier(model, results)


def classify_drawing(model: str, png: str, results: Path) -> Drawing:
    """Classify a canvas drawing (a PNG data URL, dark ink on white) with a stored run.

    The drawing goes through `mnist_style`, the preprocessing of `mnistlab predict`: crop to
    the ink, scale to 20×20, centre by mass in 28×28.

    Raises
    ------
    MnistlabError
        One line: not a PNG data URL, no ink, or a model that cannot be loaded.
    """
    if not png.startswith(DATA_URL_PREFIX):
        raise DataError(f"drawing: expected a PNG data URL ({DATA_URL_PREFIX}...)")
    try:
        raw = base64.b64decode(png[len(DATA_URL_PREFIX) :], validate=True)
        with Image.open(io.BytesIO(raw)) as image:
            rgba = image.convert("RGBA")
    except (binascii.Error, UnidentifiedImageError, OSError) as exc:
        raise DataError(f"drawing: not a readable PNG ({exc})") from None
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    grey = np.asarray(Image.alpha_composite(white, rgba).convert("L"), dtype=np.float64)
    digit = mnist_style(grey, "drawing")
    probabilities = _classifier(model, results).probabilities(digit[None])[0]  # (classes,)
    return Drawing(int(probabilities.argmax()), probabilities.tolist(), digit.tolist())


def run_summary(model: str, results: Path) -> str:
    """The Keras-style summary of a stored run's network, or a one-line reason why not."""
    from mnistlab.models.summary import summary

    try:
        net = _classifier(model, results).net
        return summary(net)  # type: ignore[arg-type]
    except (MnistlabError, TypeError, AttributeError, ValueError) as exc:
        return f"(no summary: {exc})"
