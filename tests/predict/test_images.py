"""MNIST-style preprocessing of arbitrary digit images: polarity, crop, 20x20 box, mass centre."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnistlab.errors import DataError
from mnistlab.predict.images import load_digit, mnist_style, read_grey


def _bar(background: int, ink: int, size=(120, 200)) -> np.ndarray:
    canvas = Image.new("L", size, background)
    ImageDraw.Draw(canvas).rectangle((50, 20, 69, 179), fill=ink)  # 20 wide, 160 tall
    return np.asarray(canvas, dtype=np.float64)


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(image.shape)
    total = image.sum()
    return (rows * image).sum() / total, (cols * image).sum() / total


@pytest.mark.parametrize(("background", "ink"), [(255, 0), (0, 255), (230, 30)])
def test_either_polarity_gives_white_ink_on_black_in_a_20_pixel_box(background, ink):
    digit = mnist_style(_bar(background, ink))
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    assert digit.max() == 255 and digit[0].max() == 0  # ink is white, background black
    rows = np.flatnonzero(digit.max(axis=1) > 0)
    cols = np.flatnonzero(digit.max(axis=0) > 0)
    assert rows[-1] - rows[0] + 1 == 20  # the long side fills the 20-pixel box
    assert 2 <= cols[-1] - cols[0] + 1 <= 4  # aspect ratio kept: 20 x 160 -> 2.5 x 20
    r, c = _centre_of_mass(digit.astype(np.float64))
    assert abs(r - 13.5) <= 0.5 and abs(c - 13.5) <= 0.5


def test_an_mnist_digit_comes_back_close_to_itself():
    rng = np.random.default_rng(0)
    original = np.zeros((28, 28))
    original[4:24, 10:18] = rng.uniform(150, 255, (20, 8))
    digit = mnist_style(original)
    assert np.abs(digit.astype(float) - original).mean() < 20


def test_a_blank_image_has_no_ink():
    with pytest.raises(DataError, match=r"blank\.png: no ink found"):
        mnist_style(np.full((40, 40), 200.0), "blank.png")


def test_unreadable_and_missing_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(DataError, match=r"bad.png: not a readable PNG or JPEG image"):
        load_digit(bad)
    with pytest.raises(DataError, match=r"gone.png: no such file"):
        load_digit(tmp_path / "gone.png")


def test_transparent_background_counts_as_white(tmp_path):
    canvas = Image.new("RGBA", (60, 60), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).line((30, 5, 30, 55), fill=(0, 0, 0, 255), width=6)
    path = tmp_path / "drawn.png"
    canvas.save(path)
    assert read_grey(path)[0, 0] == 255.0
    assert load_digit(path).max() == 255
