"""feature_maps and accuracy_vs_time on a tiny digits study with a CNN and an MLP."""

import numpy as np
import pytest

from mnistlab.analysis.run import compute, open_study
from mnistlab.report.figures import draw
from mnistlab.studies.loading import parse_study
from mnistlab.studies.options import RunOptions
from mnistlab.studies.runner import run_study

STUDY = """
name: tiny-cnn
data: {dataset: digits, scaling: minmax, validation: {kind: tail, n: 200}}
training: {optimizer: adam, epochs: 2, batch_size: 64}
variants:
  - {name: mlp, set: {model: {hidden: [6]}}}
  - name: cnn
    set:
      model:
        kind: cnn
        layers:
          - {layer: conv2d, filters: 4, kernel_size: 3, padding: same, activation: relu}
          - max_pool2d
          - flatten
          - {layer: dense, units: 8, activation: relu}
analyses: [feature_maps, accuracy_vs_time]
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    run_study(parse_study(STUDY, "tiny.yaml"), STUDY, RunOptions(results))
    return results


def test_feature_maps_of_every_channel_for_one_digit(study):
    with open_study("tiny-cnn", study) as ctx:
        outcome = compute(ctx, "feature_maps", {"layers": [0, 1, 3], "index": 5})
        label = ctx.data(ctx.runs[0]).train.y[5].item()
        mlp, cnn = (ctx.label(run) for run in ctx.runs)
    assert outcome.skipped is None
    (entry,) = outcome.result.items.values()  # the MLP has no maps
    assert outcome.result.notes == [f"not CNNs (no feature maps): {mlp}"]
    assert entry["input"].shape == (8, 8) and entry["label"] == label
    names = [layer["name"] for layer in entry["layers"]]
    assert names == ["conv2d (Conv2D)", "max_pooling2d (MaxPooling2D)", "dense (Dense)"]
    shapes = [layer["maps"].shape for layer in entry["layers"]]
    assert shapes == [(4, 8, 8), (4, 4, 4), (1, 1, 8)]
    assert entry["layers"][0]["maps"].min() >= 0  # after the ReLU
    np.testing.assert_allclose(  # pooling the conv maps gives the pooled maps
        entry["layers"][0]["maps"].reshape(4, 4, 2, 4, 2).max(axis=(2, 4)),
        entry["layers"][1]["maps"],
    )
    titles = [title for title, _ in draw(outcome.result, outcome.options)]
    assert titles[0] == f"{cnn}: input"
    assert titles[1] == f"{cnn}: conv2d (Conv2D), 4 maps of 8x8"


def test_accuracy_against_cumulative_wall_time(study):
    with open_study("tiny-cnn", study) as ctx:
        outcome = compute(ctx, "accuracy_vs_time", {"target": 0.5})
        histories = [ctx.history(run) for run in ctx.runs]
    items = outcome.result.items
    assert len(items) == 2
    for entry, history in zip(items.values(), histories, strict=True):
        np.testing.assert_allclose(entry["seconds"], np.cumsum(history["time"]))
        np.testing.assert_allclose(entry["accuracy"], history["val_accuracy"])
    (table,) = outcome.result.tables
    assert table.header[-1] == "≥ 0.5 at min"
    assert [row[1] for row in table.rows] == [f"{h['val_accuracy'][-1]:.4f}" for h in histories]
