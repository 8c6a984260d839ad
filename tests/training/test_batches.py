"""Batch streams (one pass, or fit_generator's fixed steps) and the run's augmenter."""

import pytest
import torch

from mnistlab.data.augment import AugmentSpec
from mnistlab.training.batches import Augmenter, BatchStream, image_shape


def _stream(n=10, batch=4, shuffle=True, steps=None, seed=0):
    return BatchStream(n, batch, shuffle, steps, torch.Generator().manual_seed(seed), "cpu")


def _rows(batch, n=10):
    return list(range(n)[batch]) if isinstance(batch, slice) else batch.tolist()


def test_one_pass_per_epoch_with_a_partial_last_batch():
    stream = _stream()
    epoch = stream.epoch()
    assert [stream.size(b) for b in epoch] == [4, 4, 2]
    assert sorted(r for b in epoch for r in _rows(b)) == list(range(10))
    again = stream.epoch()
    assert [r for b in again for r in _rows(b)] != [r for b in epoch for r in _rows(b)]


def test_one_pass_draws_the_permutation_fit_always_drew():
    epoch = _stream(seed=3).epoch()
    expected = torch.randperm(10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.cat(epoch), expected)


def test_fixed_steps_continue_the_stream_across_epochs():
    stream = _stream(steps=2)
    first, second = stream.epoch(), stream.epoch()
    assert [stream.size(b) for b in first + second] == [4, 4, 2, 4]
    seen = [r for b in first + second[:1] for r in _rows(b)]
    assert sorted(seen) == list(range(10))  # the first pass ends inside epoch 2


def test_without_shuffle_batches_are_slices_in_order():
    epoch = _stream(shuffle=False).epoch()
    assert epoch == [slice(0, 4), slice(4, 8), slice(8, 12)]


def test_image_shape_of_flat_and_2d_batches():
    assert image_shape(torch.zeros(3, 784)) == (28, 28)
    assert image_shape(torch.zeros(3, 8, 8)) == (8, 8)
    with pytest.raises(ValueError, match="not"):
        image_shape(torch.zeros(3, 10))


def test_augmenter_is_seeded():
    spec = AugmentSpec(width_shift_range=3, rotation_range=5)
    x = torch.rand(4, 784)
    a = Augmenter(spec, (28, 28), 7)(x)
    assert torch.equal(a, Augmenter(spec, (28, 28), 7)(x))
    assert not torch.equal(a, x)
