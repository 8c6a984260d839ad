"""Early stopping and best-checkpoint semantics on scripted metric sequences."""

from types import SimpleNamespace

import pytest
import torch

from mnistlab.training.callbacks import (
    BestCheckpoint,
    EarlyStopping,
    Events,
    is_improvement,
    monitor_direction,
)
from mnistlab.training.history import History
from mnistlab.training.spec import CheckpointSpec, EarlyStoppingSpec


def _drive(callback, key: str, values: list[float]) -> SimpleNamespace:
    """Feed a scripted metric to a callback; the 'model' weight records the epoch it ended."""
    model = torch.nn.Linear(1, 1)
    run = SimpleNamespace(model=model, history=History(), stop=False, step=0)
    events = Events([callback])
    events.on_run_begin(run)
    for epoch, value in enumerate(values):
        with torch.no_grad():
            model.weight.fill_(epoch)
        events.on_epoch_end(run, epoch, {key: value})
        if run.stop:
            break
    events.on_run_end(run)
    run.last_epoch = epoch
    return run


def test_monitor_direction_follows_keras_auto_mode():
    assert monitor_direction("val_loss", "auto") == "min"
    assert monitor_direction("val_accuracy", "auto") == "max"
    assert monitor_direction("accuracy", "min") == "min"


def test_improvement_is_strict_and_respects_min_delta():
    assert not is_improvement(1.0, 1.0, "min")
    assert is_improvement(0.98, 1.0, "min", min_delta=0.01)
    assert not is_improvement(0.995, 1.0, "min", min_delta=0.01)
    assert is_improvement(0.62, 0.6, "max", min_delta=0.01)
    assert not is_improvement(0.605, 0.6, "max", min_delta=0.01)


def test_patience_zero_stops_at_first_miss():
    run = _drive(EarlyStopping(EarlyStoppingSpec()), "val_loss", [1.0, 0.9, 0.95, 0.5])
    assert run.history.stopped_epoch == 2
    assert run.last_epoch == 2


def test_patience_two_on_accuracy_counts_ties_as_misses():
    spec = EarlyStoppingSpec(monitor="val_accuracy", patience=2)
    run = _drive(EarlyStopping(spec), "val_accuracy", [0.5, 0.6, 0.6, 0.59, 0.7])
    assert run.history.stopped_epoch == 3


def test_restore_best_weights_loads_the_best_epoch():
    spec = EarlyStoppingSpec(patience=1, restore_best_weights=True)
    run = _drive(EarlyStopping(spec), "val_loss", [1.0, 0.7, 0.8, 0.9])
    assert run.history.stopped_epoch == 2
    assert run.model.weight.item() == 1.0  # epoch 1 had the best val_loss


def test_without_restore_the_last_weights_stay():
    run = _drive(EarlyStopping(EarlyStoppingSpec(patience=1)), "val_loss", [1.0, 0.7, 0.8, 0.9])
    assert run.model.weight.item() == 2.0


def test_checkpoint_keeps_best_val_loss_epoch_and_restores_on_request(tmp_path):
    path = tmp_path / "best.safetensors"
    checkpoint = BestCheckpoint(CheckpointSpec(restore=True, path=path))
    run = _drive(checkpoint, "val_loss", [0.9, 0.5, 0.5, 0.7, 0.4, 0.6])
    assert run.history.best_epoch == 4
    assert run.model.weight.item() == 4.0
    from safetensors.torch import load_file

    assert load_file(str(path))["weight"].item() == 4.0


def test_checkpoint_without_restore_leaves_last_weights():
    run = _drive(BestCheckpoint(CheckpointSpec()), "val_loss", [0.9, 0.5, 0.7])
    assert run.history.best_epoch == 1
    assert run.model.weight.item() == 2.0


@pytest.mark.parametrize("patience", [-1])
def test_negative_patience_is_rejected(patience):
    with pytest.raises(ValueError, match="patience"):
        EarlyStoppingSpec(patience=patience)
