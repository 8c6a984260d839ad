"""Digit photos and drawings -> 28×28 MNIST-style images, as MNIST's own preprocessing made them.

MNIST's digits are white on black, their bounding box scaled (keeping the aspect ratio,
anti-aliased) to fit 20×20 and placed in a 28×28 field so that their centre of mass lies
at the centre. `mnist_style` does the same to any PNG / JPEG: it decides from the image's
border whether the ink is dark on light (then inverts), removes the background level,
crops to the ink, scales and centres by mass.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mnistlab.errors import DataError

FIELD = 28  # MNIST's image side
BOX = 20  # the side the digit's bounding box is scaled to fit
MIN_CONTRAST = 40.0  # grey levels (of 255) the ink must stand out from the background
INK_FRACTION = 0.2  # pixels above this share of the strongest ink count for the bounding box


def read_grey(path: Path) -> np.ndarray:
    """The image at `path` as float64 grey levels 0..255 (transparency composited on white).

    Raises
    ------
    DataError
        One line naming the file when it is missing or not a readable image.
    """
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                rgba = image.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image = Image.alpha_composite(white, rgba)
            return np.asarray(image.convert("L"), dtype=np.float64)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable PNG or JPEG image ({exc})") from None


def mnist_style(grey: np.ndarray, source: str = "image") -> np.ndarray:
    """Turn a grey image of one digit into a 28×28 uint8 MNIST-style image.

    Parameters
    ----------
    grey : array of shape (H, W), grey levels 0..255, any size.
    source : what to call the image in errors (its file name).

    Returns
    -------
    np.ndarray of shape (28, 28), uint8: white ink on black, the digit's box scaled to fit
    20×20 and its centre of mass at the centre.

    Raises
    ------
    DataError
        When the image holds no ink (nothing stands out from its background).
    """
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    ink = grey - background if background < 128 else background - grey  # ink is bright now
    ink = np.clip(ink, 0.0, None)
    strongest = float(ink.max())
    if strongest < MIN_CONTRAST:
        raise DataError(
            f"{source}: no ink found (nothing differs from the background by {MIN_CONTRAST:.0f} "
            "grey levels or more)"
        )
    ink *= 255.0 / strongest
    rows = np.flatnonzero((ink > INK_FRACTION * 255).any(axis=1))
    cols = np.flatnonzero((ink > INK_FRACTION * 255).any(axis=0))
    box = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = BOX / max(box.shape)
    size = (max(1, round(box.shape[1] * scale)), max(1, round(box.shape[0] * scale)))
    small = Image.fromarray(np.rint(box).astype(np.uint8)).resize(size, Image.Resampling.LANCZOS)
    digit = np.asarray(small, dtype=np.float64)
    return _centre_by_mass(digit)


def _centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Place `digit` in a 28×28 field with its centre of mass at the field's centre."""
    total = digit.sum()
    r_idx, c_idx = np.indices(digit.shape)
    centre_r = (r_idx * digit).sum() / total
    centre_c = (c_idx * digit).sum() / total
    h, w = digit.shape
    top = int(np.clip(round(FIELD / 2 - 0.5 - centre_r), 0, FIELD - h))
    left = int(np.clip(round(FIELD / 2 - 0.5 - centre_c), 0, FIELD - w))
    field = np.zeros((FIELD, FIELD), dtype=np.float64)
    field[top : top + h, left : left + w] = digit
    return np.clip(np.rint(field), 0, 255).astype(np.uint8)


def load_digit(path: Path) -> np.ndarray:
    """Read a PNG / JPEG digit of any size and return it MNIST-style, (28, 28) uint8.

    Raises
    ------
    DataError
        One line naming the file: missing, unreadable, or without ink.
    """
    return mnist_style(read_grey(path), str(path))
