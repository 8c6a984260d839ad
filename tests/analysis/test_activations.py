"""Hidden units: per-digit box data, the trunk to a layer, t-SNE, activation maximisation."""

import numpy as np
import pytest
import torch

from mnistlab.analysis.activations import (
    activations_of,
    hidden_layer,
    maximize_unit,
    per_digit,
    thumbnail_positions,
    tsne_embedding,
)
from mnistlab.analysis.contract import NotApplicable
from mnistlab.models import MLPSpec, build_mlp
from mnistlab.runtime import make_generator


def _net(hidden, batch_norm="none"):
    spec = MLPSpec(hidden=hidden, activation="sigmoid", batch_norm=batch_norm)
    return build_mlp(spec, 9, 3, make_generator(0)).eval()


def test_box_plot_data_is_split_per_digit():
    values = np.array([0.1, 0.9, 0.2, 0.8, 0.5])
    labels = np.array([0, 1, 0, 1, 2])
    groups = per_digit(values, labels, 4)
    assert [g.tolist() for g in groups] == [[0.1, 0.2], [0.9, 0.8], [0.5], []]


def test_hidden_layer_ends_after_its_activation_and_batch_norm():
    net = _net((4, 2), batch_norm="after")
    x = torch.rand(5, 9)
    second = activations_of(net, x, 2)
    with torch.no_grad():
        expected = torch.nn.Sequential(*net.layers[:6])(x)  # Dense, σ, BN, Dense, σ, BN
    assert second.shape == (5, 2)
    np.testing.assert_allclose(second, expected.numpy(), rtol=1e-6)
    with pytest.raises(NotApplicable, match="no hidden layer 3"):
        hidden_layer(net, 3)


def test_activation_maximisation_raises_the_unit():
    net = _net((5,))
    pattern, final, start = maximize_unit(
        net, 1, unit=2, shape=(9,), steps=50, step_size=0.1, noise=0.1, seed=0
    )
    assert pattern.shape == (9,)
    assert final > start
    with torch.no_grad():
        direct = torch.sigmoid(
            torch.as_tensor(pattern)[None] @ net.layers[0].kernel + net.layers[0].bias
        )[0, 2]
    assert final == pytest.approx(float(direct), rel=1e-5)
    assert all(p.requires_grad for p in net.parameters())


@pytest.mark.parametrize("method", ["sklearn", "opentsne"])
def test_tsne_shape_and_determinism_under_a_seed(method):
    if method == "opentsne":
        pytest.importorskip("openTSNE")
    features = np.random.default_rng(0).normal(size=(60, 4))
    first = tsne_embedding(features, 5.0, 250, "pca", seed=3, method=method)
    again = tsne_embedding(features, 5.0, 250, "pca", seed=3, method=method)
    assert first.shape == (60, 2)
    np.testing.assert_array_equal(first, again)


def test_thumbnails_keep_their_distance_in_the_normalised_map():
    points = np.array([[0.0, 0.0], [0.01, 0.0], [1.0, 1.0], [0.5, 0.5], [0.52, 0.5]])
    assert thumbnail_positions(points, 0.02) == [0, 2, 3]
