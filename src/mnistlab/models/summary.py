"""`summary`: the layer table Keras 3's `model.summary()` prints, for an `MLPNet`."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import rich.box
import rich.console
import rich.markup
import rich.table
from torch import nn

from mnistlab.models.layers import Activation, BatchNorm, Dense, Dropout
from mnistlab.models.mlp import MLPNet

LINE_LENGTH = 88  # Keras 3's default width for a sequential model on a wide terminal
COLUMN_POSITIONS = (0.45, 0.80, 1.0)  # Keras 3's relative column boundaries


@dataclass(frozen=True)
class LayerRow:
    """One row of the summary: a Keras layer and its parameter counts."""

    name: str
    type: str
    units: int
    trainable: int
    non_trainable: int

    @property
    def params(self) -> int:
        """All parameters of the layer, Keras's "Param #"."""
        return self.trainable + self.non_trainable


def layer_rows(model: MLPNet) -> list[LayerRow]:
    """The layers as Keras lists them, with Keras's names (dense, dense_1, dropout, ...).

    An activation right after its Dense is part of that Dense (Keras's
    `Dense(activation=...)`); one after a BatchNorm is its own Activation layer.

    Parameters
    ----------
    model : the network.

    Returns
    -------
    list of LayerRow in model order; `units` is the layer's output width.
    """
    counts: dict[str, int] = {}
    rows: list[LayerRow] = []
    width = model.input_dim
    previous: nn.Module | None = None
    for layer in model.layers:
        if isinstance(layer, Activation) and isinstance(previous, Dense):
            previous = layer
            continue  # Keras's Dense(units, activation=...)
        keras_type = _keras_type(layer)
        if isinstance(layer, Dense):
            width = layer.out_features
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", keras_type).lower()
        seen = counts.get(snake, 0)
        counts[snake] = seen + 1
        trainable = sum(p.numel() for p in layer.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in layer.parameters() if not p.requires_grad)
        frozen += sum(b.numel() for b in layer.buffers())
        rows.append(
            LayerRow(
                name=snake if seen == 0 else f"{snake}_{seen}",
                type=keras_type,
                units=width,
                trainable=trainable,
                non_trainable=frozen,
            )
        )
        previous = layer
    return rows


def summary(model: MLPNet) -> str:
    """The text Keras 3's `model.summary()` prints for the equivalent Sequential model.

    Parameters
    ----------
    model : the network.

    Returns
    -------
    str
        `Model: "sequential"`, a box-drawn table (Layer (type), Output Shape, Param #)
        and the Total / Trainable / Non-trainable parameter counts with their float32
        sizes, e.g. `Total params: 468,874 (1.79 MB)` for 784-512-128-10.
    """
    rows = layer_rows(model)
    widths, start = [], 0
    for position in COLUMN_POSITIONS:
        widths.append(int(position * LINE_LENGTH) - start)
        start += widths[-1]
    table = rich.table.Table(
        rich.table.Column("Layer (type)", justify="left", width=widths[0]),
        rich.table.Column("Output Shape", justify="left", width=widths[1]),
        rich.table.Column("Param #", justify="right", width=widths[2]),
        width=LINE_LENGTH,
        show_lines=True,
        box=rich.box.HEAVY_HEAD,
    )
    for row in rows:
        table.add_row(
            rich.markup.escape(f"{row.name} ({row.type})"),
            f"(None, {row.units})",
            f"{row.params:,}",
        )
    trainable = sum(row.trainable for row in rows)
    frozen = sum(row.non_trainable for row in rows)
    bytes_each = _bytes_per_value(model)
    console = rich.console.Console(
        file=io.StringIO(),
        width=LINE_LENGTH + 4,
        color_system=None,
        force_terminal=False,
        highlight=False,
        emoji=False,
    )
    with console.capture() as capture:
        console.print('Model: "sequential"')
        console.print(table)
        for label, count in (
            ("Total params", trainable + frozen),
            ("Trainable params", trainable),
            ("Non-trainable params", frozen),
        ):
            console.print(
                f" {label}: {count:,} ({readable_size(count * bytes_each)})", markup=False
            )
    return capture.get().rstrip("\n")


def readable_size(size: float) -> str:
    """Keras's byte-size text: powers of 1024, two decimals (`1875496` → `1.79 MB`).

    Parameters
    ----------
    size : a size in bytes.

    Returns
    -------
    str such as "0.00 B", "2.00 KB" or "1.79 MB".
    """
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def _keras_type(layer: nn.Module) -> str:
    """The Keras class a layer stands for."""
    if isinstance(layer, BatchNorm):
        return "BatchNormalization"
    if isinstance(layer, Dense | Dropout | Activation):
        return type(layer).__name__
    raise TypeError(f"no Keras layer for {type(layer).__name__}")


def _bytes_per_value(model: MLPNet) -> int:
    """Bytes per stored value (4 for float32), as Keras sizes its weights."""
    return model.dense_layers[0].kernel.element_size()
