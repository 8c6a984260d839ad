"""Malformed and hostile study files through both verbs: exit 2, one line, nothing written."""

import pytest
from typer.testing import CliRunner

from mnistlab.cli import app

runner = CliRunner()
BASE = "name: hostile\ndata: {dataset: digits}\nmodel: {hidden: [8]}\n"
ALIAS_BOMB = (
    "name: bomb\na: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9)
    )
    + "description: *j\n"
)


def _corpus() -> dict[str, str | bytes]:
    """Name -> file content: each must be refused by `check` and by `run`."""
    return {
        "deep nesting": "name: deep\ndescription: " + "[" * 5000 + "]" * 5000 + "\n",
        "NUL byte": BASE + "description: a\x00b\n",
        "control character": BASE + "description: a\x1bb\n",
        "alias bomb": ALIAS_BOMB,
        "alias in hidden": "name: h\nx: &u 8\nmodel: {hidden: [*u, *u]}\n",
        "10 MB of unknown keys": "name: big\n" + "".join(f"k{i}: {i}\n" for i in range(1_000_000)),
        "infinite learning rate": BASE
        + "training: {optimizer: {name: sgd, learning_rate: .inf}}\n",
        "overflowing learning rate": BASE
        + "training: {optimizer: {name: sgd, learning_rate: 1e999}}\n",
        "infinite l2": BASE.replace("hidden: [8]", "hidden: [8], kernel_regularizer: {l2: .inf}"),
        "a billion units": BASE.replace("[8]", "[1000000000]"),
        "seed past int64": BASE + "seed: 99999999999999999999\n",
        "4.8 million runs": BASE
        + "grid:\n"
        + f"  training.batch_size: [{', '.join(str(b) for b in range(1, 201))}]\n"
        + f"  training.optimizer.learning_rate: [{', '.join(f'{i}e-3' for i in range(1, 201))}]\n"
        + f"  model.hidden: [{', '.join(f'[{u}]' for u in range(1, 121))}]\n",
        "Dense before Flatten": "name: c\ndata: {dataset: digits}\n"
        "model: {kind: cnn, layers: [{layer: dense, units: 8}, flatten]}\n",
        "kernel larger than input": "name: c\ndata: {dataset: digits}\n"
        "model: {kind: cnn, layers: [{layer: conv2d, filters: 2, kernel_size: 9}, flatten]}\n",
        "validation larger than data": BASE.replace(
            "{dataset: digits}", "{dataset: digits, validation: {kind: tail, n: 5000}}"
        ),
        "subset larger than data": BASE.replace(
            "{dataset: digits}", "{dataset: digits, train_subset: {kind: head, n: 2000}}"
        ),
        "batch size 1e30": BASE + "training: {batch_size: 1e30}\n",
        "epochs 1e12": BASE + "training: {epochs: 1e12}\n",
        "PCA over the features": BASE.replace(
            "{dataset: digits}", "{dataset: digits, features: [{kind: pca, n_components: 65}]}"
        ),
    }


CORPUS = _corpus()


@pytest.mark.parametrize("case", sorted(CORPUS))
@pytest.mark.parametrize("verb", ["check", "run"])
def test_refused_in_one_line_with_exit_2_and_nothing_written(tmp_path, verb, case):
    path = tmp_path / "study.yaml"
    content = CORPUS[case]
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    results = tmp_path / "results"
    args = [verb, str(path)] + (["--results", str(results)] if verb == "run" else [])
    result = runner.invoke(app, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output[-500:]
    assert "Traceback" not in result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), lines[:3]
    assert not results.exists()


def test_very_long_training_is_a_warning_not_silence(tmp_path):
    path = tmp_path / "long.yaml"
    path.write_text(BASE + "training: {epochs: 20000}\n")
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 0
    assert "warning: training.epochs: 20,000 epochs is above 10,000: roughly" in result.output
