"""predict: MNIST test digits saved as PNGs, and digits drawn in another style, are classified."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from mnistlab.cli import app
from mnistlab.data import DataSpec, read_dataset
from mnistlab.errors import MnistlabError
from mnistlab.predict import load_classifier, predict_files
from mnistlab.studies.loading import parse_study
from mnistlab.studies.options import RunOptions
from mnistlab.studies.results_folder import open_store
from mnistlab.studies.runner import run_study

MNIST_DIR = Path(__file__).resolve().parents[2] / "data" / "mnist"
pytestmark = [
    pytest.mark.mnist,
    pytest.mark.skipif(not MNIST_DIR.is_dir(), reason="data/mnist is not in this checkout"),
]
STUDY = """
name: predict-fixture
data: {dataset: mnist, train_subset: {kind: head, n: 4000}, scaling: standardize}
model: {hidden: [64]}
training: {optimizer: {name: adam}, epochs: 3, batch_size: 64}
"""
N_TEST = 20


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small MLP trained on 4,000 MNIST digits (standardised), stored as a run."""
    results = tmp_path_factory.mktemp("results")
    run_study(parse_study(STUDY, "p.yaml"), STUDY, RunOptions(results, data_dir=MNIST_DIR))
    with open_store(results) as store:
        (run,) = store.runs("predict-fixture")
        weights = results / store.artifacts(run.run_id)["weights"].path
    return results, run.run_id, weights


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """The first MNIST test digits as black-on-white 112x112 PNGs, plus drawn digits."""
    folder = tmp_path_factory.mktemp("images")
    mnist = read_dataset(DataSpec(), MNIST_DIR, download=False)
    paths = []
    for i in range(N_TEST):
        image = Image.fromarray(255 - mnist.x_test[i]).resize((112, 112), Image.Resampling.BILINEAR)
        paths.append(folder / f"mnist{i}.png")
        image.save(paths[-1])
    drawn = {}
    for digit, draw in {
        1: lambda d: d.line((170, 40, 130, 260), fill=0, width=26),
        7: lambda d: (
            d.line((40, 50, 200, 50), fill=0, width=24),
            d.line((200, 50, 90, 270), fill=0, width=24),
        ),
    }.items():
        canvas = Image.new("L", (240, 300), 255)
        draw(ImageDraw.Draw(canvas))
        drawn[digit] = folder / f"drawn{digit}.jpg"
        canvas.save(drawn[digit], quality=90)
    return paths, mnist.y_test[:N_TEST], drawn


def test_mnist_test_digits_as_pngs_are_classified(trained, images):
    results, run_id, _ = trained
    paths, labels, _ = images
    predictions = predict_files(f"predict-fixture/{run_id[:6]}", paths, results)
    digits = np.array([p.digit for p in predictions])
    assert (digits == labels).mean() >= 0.9
    assert all(abs(sum(p.probabilities) - 1) < 1e-9 for p in predictions)
    assert predictions[0].top()[0] == (predictions[0].digit, max(predictions[0].probabilities))


def test_digits_drawn_in_another_style_are_classified(trained, images):
    results, run_id, _ = trained
    drawn = images[2]
    predictions = predict_files(run_id, list(drawn.values()), results)
    assert [p.digit for p in predictions] == list(drawn)


def test_a_weights_file_carries_its_card(trained, images):
    _, run_id, weights = trained
    classifier = load_classifier(str(weights), Path("nowhere"))
    assert classifier.scaler is not None and classifier.scaler.kind == "standardize"
    by_file = predict_files(str(weights), images[0][:5], Path("nowhere"))
    by_run = predict_files(run_id, images[0][:5], trained[0])
    assert [p.probabilities for p in by_file] == [p.probabilities for p in by_run]


def test_unknown_or_ambiguous_models_are_one_line_errors(trained):
    results = trained[0]
    with pytest.raises(MnistlabError, match="zzz: no finished run with that id"):
        load_classifier("zzz", results)
    with pytest.raises(MnistlabError, match=r"missing\.safetensors: no such weights file"):
        load_classifier("missing.safetensors", results)


def test_cli_reports_bad_files_and_still_classifies_the_rest(trained, images, tmp_path):
    results, run_id, _ = trained
    blank = tmp_path / "blank.png"
    Image.new("L", (50, 50), 255).save(blank)
    good = images[2][7]
    result = CliRunner().invoke(
        app, ["predict", run_id, str(blank), str(good), "--results", str(results)]
    )
    assert result.exit_code == 2
    assert f"{good}: 7  (7: " in result.stdout
    assert "blank.png: no ink found" in result.stderr
    as_json = CliRunner().invoke(
        app, ["predict", run_id, str(good), "--results", str(results), "--json"]
    )
    assert as_json.exit_code == 0
    assert '"digit": 7' in as_json.stdout
