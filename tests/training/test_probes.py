"""Training-time probes: initial weights, per-layer learning speed, the chain-rule factor."""

import numpy as np
import torch

from mnistlab.data.pipeline import Split
from mnistlab.models import MLPSpec, build_mlp
from mnistlab.runtime import make_generator
from mnistlab.training.loop import fit
from mnistlab.training.probes import make_probes, probe_arrays
from mnistlab.training.spec import TrainSpec


def _toy(n: int = 64) -> Split:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 12, generator=gen)
    return Split(x, (x[:, 0] > 0.5).long())


def _net(hidden: tuple[int, ...], activation: str = "sigmoid"):
    return build_mlp(MLPSpec(hidden=hidden, activation=activation), 12, 2, make_generator(1))


def test_initial_weights_are_the_weights_before_training():
    net = _net((4,))
    before = {k: v.clone().numpy() for k, v in net.state_dict().items()}
    train = _toy()
    probes = make_probes(["initial_weights"], train.x)
    fit(net, train, TrainSpec(epochs=2, batch_size=16, optimizer="adam"), callbacks=probes)
    arrays = probe_arrays(probes)
    for name, value in before.items():
        np.testing.assert_array_equal(arrays[f"initial/{name}"], value)
    assert not np.array_equal(
        arrays["initial/layers.0.kernel"], net.state_dict()["layers.0.kernel"]
    )


def test_a_frozen_layer_has_zero_learning_speed():
    net = _net((6, 5))
    first = net.dense_layers[0]
    first.kernel.requires_grad_(False)
    first.bias.requires_grad_(False)
    train = _toy()
    probes = make_probes(["learning_speed"], train.x)
    fit(net, train, TrainSpec(epochs=3, batch_size=16, optimizer="adam"), callbacks=probes)
    arrays = probe_arrays(probes)
    names = list(arrays["speed/names"])
    assert names[:2] == ["layers.0.kernel", "layers.0.bias"]
    assert arrays["speed/grad_norm"].shape == (3, 6)
    np.testing.assert_array_equal(arrays["speed/grad_norm"][:, :2], 0.0)
    np.testing.assert_array_equal(arrays["speed/relative_change"][:, :2], 0.0)
    assert (arrays["speed/grad_norm"][:, 2:] > 0).all()
    assert (arrays["speed/relative_change"][:, 2] > 0).all()
    assert (arrays["speed/original"] > 0).all()


def test_chain_product_of_one_unit_layers_respects_the_sigmoid_bound():
    net = _net((1, 1, 1))
    train = _toy()
    probes = make_probes(["chain_product"], train.x)
    fit(net, train, TrainSpec(epochs=2, batch_size=16, optimizer="sgd"), callbacks=probes)
    arrays = probe_arrays(probes)
    assert arrays["chain/derivative"].shape == (2,)
    assert (arrays["chain/derivative"] <= 0.25**3).all()
    assert (arrays["chain/derivative"] > 0).all()
    kernels = [d.kernel.detach().reshape(()) for d in net.dense_layers[1:3]]
    bound = 0.25**3 * float(abs(kernels[0] * kernels[1]))
    assert arrays["chain/product"][-1] <= bound + 1e-12


def test_chain_product_records_nothing_for_wide_layers():
    train = _toy()
    probes = make_probes(["chain_product"], train.x)
    fit(_net((3,)), train, TrainSpec(epochs=1, batch_size=16), callbacks=probes)
    assert probe_arrays(probes)["chain/product"].size == 0
