"""`summary`: the layer table Keras 3's `model.summary()` prints, for an `MLPNet` or a `CNNNet`."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import rich.box
import rich.console
import rich.markup
import rich.table
from torch import nn

from mnistlab.models.cnn import CNNNet
from mnistlab.models.layers import Activation, BatchNorm, Dense, Dropout
from mnistlab.models.mlp import MLPNet

LINE_LENGTH = 88  # Keras 3's default width for a sequential model on a wide terminal
COLUMN_POSITIONS = (0.45, 0.80, 1.0)  # Keras 3's relative column boundaries


@dataclass(frozen=True)
class LayerRow:
    """One row of the summary: a Keras layer and its parameter counts."""

    name: str
    type: str
    shape: tuple[int, ...]  # one example's output shape, Keras's (H, W, C) or (units,)
    trainable: int
    non_trainable: int

    @property
    def units(self) -> int:
        """The last axis of the output: units, or channels of feature maps."""
        return self.shape[-1]

    @property
    def params(self) -> int:
        """All parameters of the layer, Keras's "Param #"."""
        return self.trainable + self.non_trainable


def layer_rows(model: MLPNet | CNNNet) -> list[LayerRow]:
    """The layers as Keras lists them, with Keras's names (dense, dense_1, dropout, ...).

    An activation right after its Dense is part of that Dense (Keras's
    `Dense(activation=...)`); one after a BatchNorm is its own Activation layer.

    Parameters
    ----------
    model : the network.

    Returns
    -------
    list of LayerRow in model order; `shape` is the layer's output shape.
    """
    if isinstance(model, CNNNet):
        return _cnn_rows(model)
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
        rows.append(_row(keras_type, (width,), [layer], counts))
        previous = layer
    return rows


def _row(
    keras_type: str, shape: tuple[int, ...], modules: list[nn.Module], counts: dict[str, int]
) -> LayerRow:
    """A summary row named as Keras names layers (dense, dense_1, ...); `counts` is updated."""
    # Keras's to_snake_case: LeakyReLU -> leaky_re_lu, MaxPooling2D -> max_pooling2d
    snake = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", keras_type)
    snake = re.sub(r"([a-z])([A-Z])", r"\1_\2", snake).lower()
    seen = counts.get(snake, 0)
    counts[snake] = seen + 1
    trainable = sum(p.numel() for m in modules for p in m.parameters() if p.requires_grad)
    frozen = sum(p.numel() for m in modules for p in m.parameters() if not p.requires_grad)
    frozen += sum(b.numel() for m in modules for b in m.buffers())
    return LayerRow(
        name=snake if seen == 0 else f"{snake}_{seen}",
        type=keras_type,
        shape=shape,
        trainable=trainable,
        non_trainable=frozen,
    )


_CNN_TYPES = {
    "conv2d": "Conv2D",
    "dense": "Dense",
    "max_pool2d": "MaxPooling2D",
    "average_pool2d": "AveragePooling2D",
    "flatten": "Flatten",
    "dropout": "Dropout",
    "batch_norm": "BatchNormalization",
    "activation": "Activation",
    "leaky_relu": "LeakyReLU",
}
"""mnistlab layer tag -> the Keras class it stands for."""


def _cnn_rows(model: CNNNet) -> list[LayerRow]:
    """One row per layer of the spec, then the output Dense; a layer's activation is its own."""
    counts: dict[str, int] = {}
    tags = [layer.layer for layer in model.spec.layers] + ["dense"]
    return [
        _row(
            _CNN_TYPES[tag],
            model.shapes[i],
            [m for m, k in zip(model.layers, model.keras_index, strict=True) if k == i],
            counts,
        )
        for i, tag in enumerate(tags)
    ]


def summary(model: MLPNet | CNNNet) -> str:
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
            f"(None, {', '.join(map(str, row.shape))})",
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


def _bytes_per_value(model: MLPNet | CNNNet) -> int:
    """Bytes per stored value (4 for float32), as Keras sizes its weights."""
    return next(model.parameters()).element_size()
