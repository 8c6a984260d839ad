"""The data cache: each dataset read once, each split made once per spec and device."""

import pytest
import torch

from mnistlab.data.cache import DataCache
from mnistlab.data.spec import DataSpec
from mnistlab.errors import SpecError

DIGITS = DataSpec(dataset="digits", scaling="minmax")


def test_a_dataset_is_read_once_and_splits_are_made_once_per_spec():
    cache = DataCache()
    assert cache.dataset(DIGITS) is cache.dataset(DIGITS.model_copy(update={"scaling": "none"}))
    data = cache.data(DIGITS, torch.device("cpu"))
    assert cache.data(DIGITS, torch.device("cpu")) is data
    assert data.train.x.shape == (1437, 64) and float(data.train.x.max()) == 1.0
    assert cache.training_rows(DIGITS) == 1437


def test_the_fingerprint_refuses_a_feature_step_too_large_for_the_data():
    cache = DataCache()
    assert len(cache.fingerprint(DIGITS)) == 64  # hex SHA256
    too_wide = DataSpec(
        dataset="digits", scaling="minmax", features=({"kind": "pca", "n_components": 65},)
    )
    with pytest.raises(SpecError, match="n_components"):
        cache.fingerprint(too_wide)
