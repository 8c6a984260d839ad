"""Augmentation against keras-preprocessing's ImageDataGenerator goldens: draws and images."""

import numpy as np
import pytest
import torch

from mnistlab.data.augment import (
    AugmentSpec,
    ElasticSpec,
    apply_transforms,
    augment_batch,
    random_transforms,
)

DRAWS = 20_000


def _draw(spec: AugmentSpec, seed: int = 0) -> dict[str, np.ndarray]:
    transforms = random_transforms(spec, DRAWS, (28, 28), torch.Generator().manual_seed(seed))
    return {k: v.numpy() for k, v in transforms.items()}


def test_integer_shift_range_draws_keras_values_and_frequencies(keras_fixture):
    golden = keras_fixture("preprocessing")
    keras = golden["integer_shifts"]
    spec = AugmentSpec(**keras["generator"])
    ours = _draw(spec)
    for key in ("tx", "ty"):
        counts = keras["shift_counts"][key]
        for value in range(-3, 4):
            theirs = counts[str(value)] / golden["draws"]
            mine = float((ours[key] == value).mean())
            assert abs(mine - theirs) < 0.015, (key, value, mine, theirs)
        assert set(np.unique(ours[key])) == {-2.0, -1.0, 0.0, 1.0, 2.0}  # never ±3
    assert abs(float((ours["tx"] == 0).mean()) - 1 / 3) < 0.015  # P(0) = 1/3


def test_rotation_is_uniform_over_the_range_like_keras(keras_fixture):
    golden = keras_fixture("preprocessing")
    keras = golden["integer_shifts"]
    ours = _draw(AugmentSpec(**keras["generator"]))
    mine, _ = np.histogram(ours["theta"], bins=12, range=(-3, 3))
    theirs = np.array(keras["theta_histogram"])
    # both uniform: every bin within 4 binomial standard deviations (0.002) of 1/12
    np.testing.assert_allclose(mine / DRAWS, 1 / 12, atol=0.008)
    np.testing.assert_allclose(theirs / golden["draws"], 1 / 12, atol=0.008)
    assert ours["theta"].min() > -3 and ours["theta"].max() < 3
    assert ours["theta"].std() == pytest.approx(keras["theta"]["std"], rel=0.03)


def test_fraction_shift_and_zoom_match_keras(keras_fixture):
    golden = keras_fixture("preprocessing")["fraction_shifts_zoom"]
    ours = _draw(AugmentSpec(**golden["generator"]))
    assert ours["tx"].tolist() == [0.0] * DRAWS  # height_shift_range 0: no vertical shift
    for key in ("ty", "zx", "zy"):
        assert ours[key].min() == pytest.approx(golden[key]["min"], abs=0.01)
        assert ours[key].max() == pytest.approx(golden[key]["max"], abs=0.01)
        assert ours[key].std() == pytest.approx(golden[key]["std"], rel=0.03)


def test_transformed_images_equal_keras_apply_transform(keras_fixture):
    golden = keras_fixture("preprocessing")
    image = torch.tensor(golden["image"], dtype=torch.float32)
    for case in golden["images"]:
        transforms = {
            k: torch.tensor([float(v)], dtype=torch.float64) for k, v in case["params"].items()
        }
        got = apply_transforms(image[None], transforms, (28, 28), case["fill_mode"])[0]
        expected = torch.tensor(case["image"], dtype=torch.float32)
        torch.testing.assert_close(got, expected, atol=2e-5, rtol=0, msg=str(case["params"]))


def test_same_seed_same_batch_and_shapes_kept():
    spec = AugmentSpec(rotation_range=10, width_shift_range=2, zoom_range=0.1)
    x = torch.rand(6, 784)
    a = augment_batch(x, spec, (28, 28), torch.Generator().manual_seed(4))
    b = augment_batch(x, spec, (28, 28), torch.Generator().manual_seed(4))
    c = augment_batch(x, spec, (28, 28), torch.Generator().manual_seed(5))
    assert a.shape == (6, 784)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_no_ranges_is_the_identity():
    x = torch.rand(3, 28, 28)
    out = augment_batch(x, AugmentSpec(), (28, 28), torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_elastic_distortion_moves_pixels_smoothly_and_keeps_range():
    x = torch.zeros(2, 28, 28)
    x[:, 8:20, 12:16] = 1.0
    spec = AugmentSpec(elastic=ElasticSpec(alpha=8.0, sigma=3.0))
    out = augment_batch(x, spec, (28, 28), torch.Generator().manual_seed(0))
    assert out.min() >= 0.0 and out.max() <= 1.0
    changed = (out - x).abs().sum(dim=(1, 2))
    assert (changed > 1.0).all()  # the stroke moved
    assert out.sum(dim=(1, 2)).sub(x.sum(dim=(1, 2))).abs().max() < 0.5 * x[0].sum()
