"""On-the-fly augmentation of whole batches on their device, as Keras's ImageDataGenerator does.

Each image gets its own random rotation, shift and zoom, drawn as keras-preprocessing's
`get_random_transform` draws them, and the image is resampled as its
`apply_affine_transform` does (scipy.ndimage.affine_transform, order 1, fill 'nearest', the
transform centred at (h/2 + 0.5, w/2 + 0.5) as Keras centres it). Here the whole batch is
resampled at once with `grid_sample` (bilinear, `align_corners=True`, border padding ==
scipy's order 1 with mode 'nearest'; mode 'constant' zeroes points outside the image); no
per-image Python. Elastic distortion (Simard et
al. 2003, not part of ImageDataGenerator) adds a smoothed random displacement field.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, model_validator
from torch import Tensor

from mnistlab.spec import Spec

ShiftRange = NonNegativeInt | NonNegativeFloat
"""An integer n: whole-pixel shifts k·s, k drawn from 0..n−1 and s from ±1 (Keras). A float
below 1: a fraction of the image size, uniform; a float from 1 up: pixels, uniform."""

INSIDE_TOLERANCE = 1e-6  # pixels: a sampling point this close to the edge counts as inside


class ElasticSpec(Spec):
    """Simard's elastic distortion: U(−1, 1) displacements, Gaussian-smoothed, times alpha."""

    alpha: PositiveFloat = Field(34.0, description="displacement scale, pixels")
    sigma: PositiveFloat = Field(4.0, description="std of the Gaussian smoothing, pixels")


class AugmentSpec(Spec):
    """ImageDataGenerator's geometric options (Keras defaults: everything off)."""

    rotation_range: NonNegativeFloat = Field(0.0, description="degrees: uniform in (−r, r)")
    width_shift_range: ShiftRange = Field(0, description="horizontal shift, see ShiftRange")
    height_shift_range: ShiftRange = Field(0, description="vertical shift, see ShiftRange")
    zoom_range: NonNegativeFloat | tuple[PositiveFloat, PositiveFloat] = Field(
        0.0, description="z: zoom factors uniform in [1 − z, 1 + z] per axis; or [low, high]"
    )
    elastic: ElasticSpec | None = None
    fill_mode: Literal["nearest", "constant"] = "nearest"
    validation: bool = Field(
        False, description="augment validation batches too (a generator as validation_data)"
    )

    @model_validator(mode="after")
    def _zoom_order(self) -> AugmentSpec:
        low, high = self.zoom_bounds
        if low > high or low <= 0:
            raise ValueError(f"zoom_range: needs 0 < low <= high, got {low}, {high}")
        return self

    @property
    def zoom_bounds(self) -> tuple[float, float]:
        """The zoom range as Keras stores it: [1 − z, 1 + z] for a number."""
        if isinstance(self.zoom_range, tuple):
            return self.zoom_range
        return (1.0 - self.zoom_range, 1.0 + self.zoom_range)


# --- random transforms ---


def _shifts(spec_range: float, size: int, n: int, generator: torch.Generator) -> Tensor:
    """n shifts in pixels, drawn as keras-preprocessing draws tx / ty."""
    if not spec_range:
        return torch.zeros(n, dtype=torch.float64)
    if isinstance(spec_range, int):  # np.random.choice(n) · np.random.choice([-1, 1])
        steps = torch.randint(0, spec_range, (n,), generator=generator).double()
        signs = torch.randint(0, 2, (n,), generator=generator).double() * 2 - 1
        shifts = steps * signs
    else:
        shifts = (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * spec_range
    return shifts * size if spec_range < 1 else shifts


def random_transforms(
    spec: AugmentSpec, n: int, shape: tuple[int, int], generator: torch.Generator
) -> dict[str, Tensor]:
    """Draw n images' transforms with ImageDataGenerator's distributions.

    Parameters
    ----------
    spec : the augmentation.
    n : images in the batch.
    shape : (height, width) of an image.
    generator : a CPU generator, the run's augmentation stream.

    Returns
    -------
    dict of float64 Tensors of shape (n,): `theta` (degrees), `tx` (rows, Keras's height
    shift), `ty` (columns, the width shift), `zx`, `zy` (zoom of rows and columns).
    """
    theta = (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * spec.rotation_range
    tx = _shifts(spec.height_shift_range, shape[0], n, generator)
    ty = _shifts(spec.width_shift_range, shape[1], n, generator)
    low, high = spec.zoom_bounds
    if low == high == 1.0:
        zx = zy = torch.ones(n, dtype=torch.float64)
    else:
        zx, zy = torch.rand(2, n, generator=generator, dtype=torch.float64) * (high - low) + low
    return {"theta": theta, "tx": tx, "ty": ty, "zx": zx, "zy": zy}


def transform_matrices(transforms: dict[str, Tensor], shape: tuple[int, int]) -> Tensor:
    """Keras's per-image matrices: output (row, col, 1) -> input (row, col, 1).

    rotation · shift · zoom, then moved to the centre (h/2 + 0.5, w/2 + 0.5) as
    keras-preprocessing's `transform_matrix_offset_center` does.

    Returns
    -------
    Tensor of shape (n, 3, 3), float64.
    """
    theta = torch.deg2rad(transforms["theta"])
    n = len(theta)
    cos, sin = torch.cos(theta), torch.sin(theta)
    zeros, ones = torch.zeros(n, dtype=torch.float64), torch.ones(n, dtype=torch.float64)
    rotation = torch.stack(
        [
            torch.stack([cos, -sin, zeros], -1),
            torch.stack([sin, cos, zeros], -1),
            torch.stack([zeros, zeros, ones], -1),
        ],
        -2,
    )
    shift = torch.eye(3, dtype=torch.float64).repeat(n, 1, 1)
    shift[:, 0, 2], shift[:, 1, 2] = transforms["tx"], transforms["ty"]
    zoom = torch.eye(3, dtype=torch.float64).repeat(n, 1, 1)
    zoom[:, 0, 0], zoom[:, 1, 1] = transforms["zx"], transforms["zy"]
    o_x, o_y = shape[0] / 2 + 0.5, shape[1] / 2 + 0.5
    offset = torch.tensor([[1.0, 0, o_x], [0, 1, o_y], [0, 0, 1]], dtype=torch.float64)
    reset = torch.tensor([[1.0, 0, -o_x], [0, 1, -o_y], [0, 0, 1]], dtype=torch.float64)
    return offset @ rotation @ shift @ zoom @ reset


# --- resampling ---


def _gaussian_blur(fields: Tensor, sigma: float) -> Tensor:
    """Smooth (n, c, h, w) with a separable Gaussian of std `sigma` (truncated at 4 std)."""
    radius = max(1, int(4 * sigma + 0.5))
    offsets = torch.arange(-radius, radius + 1, dtype=fields.dtype, device=fields.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = fields.shape[1]
    rows = kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    cols = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    fields = F.conv2d(F.pad(fields, (0, 0, radius, radius), mode="reflect"), rows, groups=channels)
    return F.conv2d(F.pad(fields, (radius, radius, 0, 0), mode="reflect"), cols, groups=channels)


def augment_batch(
    x: Tensor, spec: AugmentSpec, shape: tuple[int, int], generator: torch.Generator
) -> Tensor:
    """A randomly transformed copy of a batch of one-channel images, on its own device.

    Parameters
    ----------
    x : Tensor of shape (B, H·W), (B, H, W) or (B, 1, H, W), float32.
    spec : the augmentation.
    shape : (H, W).
    generator : a CPU generator (the run's augmentation stream); the same seed gives the
        same transforms on any device.

    Returns
    -------
    Tensor of the shape of `x`: each image rotated, shifted and zoomed with Keras's
    distributions and resampled bilinearly with Keras's fill, then elastically distorted
    when `spec.elastic` is set.
    """
    transforms = random_transforms(spec, len(x), shape, generator)
    displacement = None
    if spec.elastic is not None:
        noise = torch.rand(len(x), 2, *shape, generator=generator, dtype=x.dtype) * 2 - 1
        displacement = _gaussian_blur(noise.to(x.device), spec.elastic.sigma) * spec.elastic.alpha
    return apply_transforms(x, transforms, shape, spec.fill_mode, displacement)


def apply_transforms(
    x: Tensor,
    transforms: dict[str, Tensor],
    shape: tuple[int, int],
    fill_mode: str = "nearest",
    displacement: Tensor | None = None,
) -> Tensor:
    """Resample each image with its own transform, as keras-preprocessing's apply_transform.

    Parameters
    ----------
    x : Tensor of shape (B, H·W), (B, H, W) or (B, 1, H, W).
    transforms : from `random_transforms` (or given), each of shape (B,).
    shape : (H, W).
    fill_mode : "nearest" (the edge pixel continues, bilinear) or "constant" (0 wherever
        the sampling point falls outside the image, as scipy's mode 'constant').
    displacement : optional (B, 2, H, W) offsets in pixels (rows, cols) added to the
        sampling positions (elastic distortion).

    Returns
    -------
    Tensor of the shape and device of `x`.
    """
    n, (h, w) = len(x), shape
    matrices = transform_matrices(transforms, shape)
    rows, cols = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    points = torch.stack([rows, cols, torch.ones_like(rows)], -1).reshape(1, h * w, 3)
    source = (points @ matrices.transpose(1, 2))[..., :2].reshape(n, h, w, 2)  # (row, col)
    source = source.to(device=x.device, dtype=x.dtype)
    if displacement is not None:
        source = source + displacement.permute(0, 2, 3, 1)
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=x.device)
    grid = source.flip(-1) * scale - 1.0  # grid_sample wants (x = col, y = row) in [-1, 1]
    images = x.reshape(n, 1, h, w)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=True)
    if fill_mode == "constant":  # scipy's mode 'constant': 0 wherever the point lies outside
        limit = torch.tensor([h - 1, w - 1], device=x.device, dtype=x.dtype) + INSIDE_TOLERANCE
        inside = ((source >= -INSIDE_TOLERANCE) & (source <= limit)).all(-1)
        out = out * inside[:, None].to(out.dtype)
    return out.reshape(x.shape)
