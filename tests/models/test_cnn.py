"""CNNNet: Keras padding, pooling, flatten order, per-channel BN, initialisers, summary."""

import math

import numpy as np
import torch
from scipy.signal import correlate2d

from mnistlab.models import CNNSpec, build_cnn, build_model, summary
from mnistlab.models.cnn import Conv2D, Flatten, MapBatchNorm, Pool2D
from mnistlab.models.stacked import stack_conflicts
from mnistlab.models.summary import layer_rows


def _net(layers, shape=(28, 28), outputs=10, seed=0):
    return build_cnn(CNNSpec(layers=layers), shape, outputs, torch.Generator().manual_seed(seed))


def test_small_data_cnn_has_keras_parameter_counts_and_names(small_data_cnn):
    rows = layer_rows(_net(small_data_cnn))
    convs = [(r.name, r.shape, r.params) for r in rows if r.type in {"Conv2D", "Dense"}]
    assert convs == [
        ("conv2d", (28, 28, 32), 320),
        ("conv2d_1", (14, 14, 64), 18_496),
        ("conv2d_2", (7, 7, 128), 73_856),
        ("dense", (256,), 524_544),
        ("dense_1", (10,), 2_570),
    ]
    assert rows[1].name == "leaky_re_lu" and rows[2].name == "max_pooling2d"
    text = summary(_net(small_data_cnn))
    assert " Total params: 619,786 (2.36 MB)" in text
    assert "│ max_pooling2d_2 (MaxPooling2D)       │ (None, 4, 4, 128)" in text


def test_same_convolution_with_stride_pads_the_end_only():
    conv = Conv2D(1, 1, (3, 3), (2, 2), "same", (6, 6), use_bias=False)
    kernel = np.arange(9, dtype=np.float32).reshape(3, 3)
    with torch.no_grad():
        conv.kernel.copy_(torch.from_numpy(kernel)[None, None])
    image = np.arange(36, dtype=np.float32).reshape(6, 6)
    padded = np.pad(image, ((0, 1), (0, 1)))  # TensorFlow: total 1, all of it at the end
    expected = correlate2d(padded, kernel, mode="valid")[::2, ::2]
    got = conv(torch.from_numpy(image)[None, None])[0, 0].detach().numpy()
    np.testing.assert_allclose(got, expected)


def test_same_max_pooling_ignores_the_padding():
    pool = Pool2D("max", (2, 2), (2, 2), "same", (3, 3))
    x = -torch.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # all negative: a zero pad would win
    assert pool(x)[0, 0].tolist() == [[-1.0, -3.0], [-7.0, -9.0]]


def test_same_average_pooling_counts_only_real_cells():
    pool = Pool2D("average", (2, 2), (2, 2), "same", (3, 3))
    x = torch.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    assert pool(x)[0, 0].tolist() == [[3.0, 4.5], [7.5, 9.0]]


def test_flatten_is_channels_last():
    x = torch.arange(8.0).reshape(1, 2, 2, 2)  # (B, C, H, W)
    assert Flatten()(x).tolist() == [[0.0, 4.0, 1.0, 5.0, 2.0, 6.0, 3.0, 7.0]]


def test_map_batch_norm_uses_biased_variance_per_channel():
    norm = MapBatchNorm(2, momentum=0.9, epsilon=1e-3)
    x = torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(1)) * 3 + 1
    y = norm.train()(x)
    var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
    expected = (x - mean[:, None, None]) / torch.sqrt(var[:, None, None] + 1e-3)
    torch.testing.assert_close(y, expected)
    torch.testing.assert_close(norm.moving_mean, 0.1 * mean)
    torch.testing.assert_close(norm.moving_variance, 0.9 + 0.1 * var)


def test_conv_kernels_are_glorot_uniform_with_keras_fans_and_biases_zero():
    net = _net([{"layer": "conv2d", "filters": 64, "kernel_size": 5}, "flatten"])
    conv = net.layers[0]
    limit = math.sqrt(6 / (25 * 1 + 25 * 64))
    assert conv.kernel.shape == (64, 1, 5, 5)
    assert conv.kernel.abs().max() <= limit
    assert conv.kernel.abs().max() > 0.95 * limit
    assert abs(conv.kernel.std().item() - limit / math.sqrt(3)) < 0.1 * limit
    assert conv.bias.abs().sum() == 0


def test_same_seed_same_weights_and_any_input_layout(small_data_cnn):
    a, b = _net(small_data_cnn, seed=3), _net(small_data_cnn, seed=3)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    x = torch.rand(2, 28, 28)
    a.eval()
    torch.testing.assert_close(a(x.reshape(2, 784)), a(x))
    torch.testing.assert_close(a(x[:, None]), a(x))


def test_features_of_a_layer_match_its_shape(small_data_cnn):
    net = _net(small_data_cnn).eval()
    maps = net.features(torch.rand(3, 784), 2)
    assert maps.shape == (3, 32, 14, 14)
    assert net.features(torch.rand(3, 784), 13).shape == (3, 256)


def test_l2_on_a_conv_kernel_is_keras_sum_of_squares():
    net = _net(
        [
            {"layer": "conv2d", "filters": 2, "kernel_size": 3, "kernel_regularizer": {"l2": 0.5}},
            "flatten",
        ]
    )
    torch.testing.assert_close(net.penalty(), 0.5 * net.layers[0].kernel.square().sum())


def test_build_model_picks_the_cnn_and_cnns_never_stack():
    spec = CNNSpec(layers=["flatten"])
    net = build_model(spec, (784,), 10, torch.Generator().manual_seed(0))
    assert net(torch.rand(5, 784)).shape == (5, 10)
    assert stack_conflicts([spec, spec]) == [
        "models[0]: kind 'cnn' cannot stack (MLPs only)",
        "models[1]: kind 'cnn' cannot stack (MLPs only)",
    ]


def test_map_batch_norm_inference_uses_the_moving_statistics():
    norm = MapBatchNorm(3, momentum=0.5, epsilon=1e-3)
    with torch.no_grad():
        norm.moving_mean.copy_(torch.tensor([1.0, -1.0, 0.0]))
        norm.moving_variance.copy_(torch.tensor([4.0, 1.0, 0.25]))
        norm.gamma.copy_(torch.tensor([2.0, 1.0, 1.0]))
    x = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    expected = (
        (x - norm.moving_mean[:, None, None])
        / torch.sqrt(norm.moving_variance[:, None, None] + 1e-3)
        * norm.gamma[:, None, None]
    )
    torch.testing.assert_close(norm.eval()(x), expected)


def test_map_batch_norm_gradients_equal_the_formula():
    x = torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(2), requires_grad=True)
    weights = torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(3))
    norm = MapBatchNorm(2).train()
    (norm(x) * weights).sum().backward()
    fused = x.grad.clone()
    x.grad = None
    var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
    formula = (x - mean[:, None, None]) / torch.sqrt(var[:, None, None] + 1e-3)
    (formula * weights).sum().backward()
    torch.testing.assert_close(fused, x.grad, atol=1e-5, rtol=1e-4)
