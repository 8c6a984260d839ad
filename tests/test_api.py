"""The notebook-facing API: load_dataset, MLP, fit, evaluate, predict, summary."""

import numpy as np
import pytest
import torch

from mnistlab import CNN, MLP, SpecError, evaluate, fit, load_dataset
from mnistlab.data import dataset_location

HAS_MNIST = dataset_location("mnist").complete


@pytest.mark.skipif(not HAS_MNIST, reason="MNIST is not available offline here")
def test_short_real_training_reaches_90_percent():
    data = load_dataset(
        "mnist",
        train_subset={"kind": "head", "n": 5000},
        test_subset={"kind": "head", "n": 1000},
        device="cpu",
    )
    # Keras 3 at its defaults (RMSprop, batch 32) scores 0.875-0.887 here, as mnistlab does
    # (measured side by side); Adam at 0.003 clears 0.90 for every seed tried (0.904-0.911)
    model = MLP(hidden=[64], activation="relu", seed=1)
    history = fit(model, data, optimizer="adam", learning_rate=0.003, epochs=2, verbose=False)
    assert len(history.history["loss"]) == 2
    assert history.history["loss"][1] < history.history["loss"][0]
    scores = evaluate(model, data.test)
    assert scores["accuracy"] >= 0.90
    assert model.predict(data.test.x[:3]).sum(dim=1).tolist() == pytest.approx([1.0] * 3)


def test_fit_on_numpy_arrays_with_one_hot_labels_and_validation_split():
    rng = np.random.default_rng(0)
    labels = np.arange(120) % 2
    x = rng.normal(size=(120, 5)).astype(np.float32) + labels[:, None] * 3
    y = np.eye(2, dtype=np.float32)[labels]  # one-hot, as Keras users pass them
    model = MLP(hidden=[8], activation="tanh", seed=3)
    history = fit(
        model,
        (x, y),
        optimizer="adam",
        learning_rate=0.05,
        epochs=10,
        batch_size=16,
        validation_split=0.25,
        verbose=False,
    )
    assert history.last["val_accuracy"] > 0.95
    assert len(history.history["val_loss"]) == 10
    assert evaluate(model, (x[:10], y[:10]))["accuracy"] >= 0.9


def test_same_seed_gives_same_weights_and_history():
    x = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long()
    histories = []
    for _ in range(2):
        model = MLP(hidden=[4], dropout=0.2, seed=11)
        histories.append(fit(model, (x, y), epochs=2, batch_size=8, verbose=False).history["loss"])
    assert histories[0] == histories[1]


def test_bad_options_raise_one_line_spec_errors():
    with pytest.raises(SpecError, match="activation"):
        MLP(hidden=[8], activation="swish")
    with pytest.raises(SpecError, match=r"hidden\[0\]"):
        MLP(hidden=[0])
    model = MLP(hidden=[4])
    with pytest.raises(SpecError, match="unknown optimizer 'adamax'"):
        fit(model, (np.zeros((4, 2)), np.zeros(4, dtype=int)), optimizer="adamax")


def test_summary_before_building_explains():
    with pytest.raises(RuntimeError, match="call fit"):
        MLP().summary()


def test_a_cnn_fits_evaluates_predicts_and_summarises(capsys):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(48) % 2
    x = torch.rand(48, 8, 8, generator=g) * 0.2
    x[y == 0, :, :4] += 1.0
    x[y == 1, :, 4:] += 1.0
    model = CNN(
        layers=[
            {"layer": "Conv2D", "filters": 4, "kernel_size": 3, "activation": "relu"},
            "flatten",
        ],
        seed=3,
    )
    history = fit(
        model,
        (x.numpy(), y.numpy()),
        optimizer="adam",
        learning_rate=0.05,
        epochs=6,
        batch_size=16,
        verbose=False,
    )
    assert len(history.history["loss"]) == 6
    assert evaluate(model, (x.numpy(), y.numpy()))["accuracy"] == 1.0
    assert model.predict(x.reshape(48, 64)[:2]).argmax(dim=1).tolist() == [0, 1]
    model.summary()
    assert "│ conv2d (Conv2D)                      │ (None, 6, 6, 4)" in capsys.readouterr().out


def test_train_mlp_trains_evaluates_and_saves_in_one_call(tmp_path):
    from mnistlab.api import train_mlp
    from mnistlab.status import RunStatus

    weights = tmp_path / "w.safetensors"
    trained = train_mlp(
        (16,), dataset="digits", optimizer="adam", epochs=3, save=weights, verbose=False
    )
    assert trained.status == RunStatus.DONE
    assert len(trained.history.history["loss"]) == 3
    assert trained.test is not None and 0.5 < trained.test["accuracy"] <= 1
    assert trained.saved == weights and weights.stat().st_size > 0


def test_train_mlp_neither_evaluates_nor_saves_a_diverged_run(tmp_path):
    from mnistlab.api import train_mlp
    from mnistlab.status import RunStatus

    weights = tmp_path / "w.safetensors"
    trained = train_mlp(
        (8,), dataset="digits", optimizer="sgd", learning_rate=1e30, save=weights, verbose=False
    )
    assert trained.status == RunStatus.DIVERGED
    assert trained.history.diverged_at == (0, 1)
    assert trained.test is None and trained.saved is None and not weights.exists()
