"""A model card in a weights file: what is needed to use the weights without the store.

A run's safetensors file carries, in its text metadata, the run's resolved configuration,
the input shape and class count it was built for, and the training split's pixel scaler,
so `mnistlab predict` can rebuild the network and scale new images as its data was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import safe_open

from mnistlab.data.scaling import Scaler

CARD_KEY = "mnistlab.card"
CARD_VERSION = 1


@dataclass(frozen=True)
class ModelCard:
    """A trained model's description: configuration (JSON dict), shapes and scaler."""

    config: dict[str, Any]  # a RunConfig dumped to JSON
    input_shape: tuple[int, ...]
    n_classes: int
    scaler: Scaler | None

    def metadata(self) -> dict[str, str]:
        """The safetensors metadata that stores this card."""
        scaler = None
        if self.scaler is not None:
            scaler = {
                "kind": self.scaler.kind,
                "shift": np.asarray(self.scaler.shift).tolist(),
                "scale": np.asarray(self.scaler.scale).tolist(),
            }
        card = {
            "version": CARD_VERSION,
            "config": self.config,
            "input_shape": list(self.input_shape),
            "n_classes": self.n_classes,
            "scaler": scaler,
        }
        return {CARD_KEY: json.dumps(card, separators=(",", ":"))}


def read_card(path: Path) -> ModelCard | None:
    """The card in a safetensors file, or None when it has none (written without one).

    Raises
    ------
    OSError, ValueError
        When the file is not a readable safetensors file.
    """
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if CARD_KEY not in metadata:
        return None
    card = json.loads(metadata[CARD_KEY])
    scaler = card.get("scaler")
    return ModelCard(
        config=card["config"],
        input_shape=tuple(card["input_shape"]),
        n_classes=int(card["n_classes"]),
        scaler=None
        if scaler is None
        else Scaler(scaler["kind"], np.asarray(scaler["shift"]), np.asarray(scaler["scale"])),
    )
