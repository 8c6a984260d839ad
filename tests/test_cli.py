"""The command line through typer's CliRunner: exit codes and one line of output each."""

import pytest
from typer.testing import CliRunner

from mnistlab.cli import app, normalize_argv

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, normalize_argv(list(args)))


def test_hidden_takes_several_values():
    assert normalize_argv(["train", "--hidden", "512", "128", "--epochs", "5"]) == [
        "train",
        "--hidden",
        "512,128",
        "--epochs",
        "5",
    ]
    assert normalize_argv(["train", "--hidden", "--epochs", "1"]) == [
        "train",
        "--hidden",
        "",
        "--epochs",
        "1",
    ]


def test_train_on_digits_prints_test_accuracy(tmp_path):
    weights = tmp_path / "w.safetensors"
    result = invoke(
        "train",
        "--dataset",
        "digits",
        "--hidden",
        "32",
        "--optimizer",
        "adam",
        "--learning-rate",
        "0.01",
        "--epochs",
        "15",
        "--validation-split",
        "0.1",
        "--save",
        str(weights),
    )
    assert result.exit_code == 0, result.output
    accuracy = float(result.output.split("test accuracy: ")[1].split()[0])
    assert accuracy > 0.85
    assert "Total params: 2,410" in result.output  # 64*32+32 + 32*10+10
    assert weights.stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--activation", "swish"], "activation"),
        (["--optimizer", "adamax"], "optimizer"),
        (["--hidden", "32", "-4"], "hidden[1]"),
        (["--batch-size", "0"], "batch_size"),
        (["--dropout", "1.0"], "dropout"),
        (["--dataset", "cifar"], "cifar"),
        (["--validation-split", "1.5"], "fraction"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = invoke("train", "--dataset", "digits", *args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:")
    assert message in lines[0]


def test_data_list_and_info():
    listed = invoke("data", "list")
    assert listed.exit_code == 0
    assert "fashion-mnist" in listed.output
    info = invoke("data", "info", "digits")
    assert info.exit_code == 0
    assert "1,437" in info.output


def test_data_path_of_missing_dataset_names_the_places(tmp_path, monkeypatch):
    result = invoke("data", "path", "mnist", "--data-dir", str(tmp_path))
    if result.exit_code == 0:  # found in a later place (the repo's data/): still a real path
        assert "mnist" in result.output
    else:
        assert result.exit_code == 1
        assert "not found" in result.output
