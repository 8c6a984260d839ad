"""The command line through typer's CliRunner: exit codes and one line of output each."""

import json
import sys

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
        (["--batch-size", "0"], "--batch-size"),
        (["--device", "tpu"], "--device"),
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


# --- study verbs ---

TINY_STUDY = """\
name: tiny-cli
data: {dataset: digits, scaling: minmax, validation: {kind: tail, n: 300}}
model: {hidden: [8]}
training: {optimizer: {name: adam, learning_rate: 0.02}, epochs: 2, batch_size: 64}
grid: {model.activation: [relu, tanh]}
repetitions: 2
"""


@pytest.fixture
def tiny_study(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_STUDY)
    return path


def test_run_show_export_and_list(tiny_study, tmp_path):
    results = str(tmp_path / "results")
    ran = invoke("run", str(tiny_study), "--results", results)
    assert ran.exit_code == 0, ran.output
    assert "tiny-cli: ran 4 runs; 4 done" in ran.output
    again = invoke("run", str(tiny_study), "--results", results)
    assert "tiny-cli: ran 0 runs; 4 done" in again.output
    shown = invoke("show", "tiny-cli", "--results", results)
    assert shown.exit_code == 0
    assert "±" in shown.output and "relu" in shown.output and "tanh" in shown.output
    csv = invoke("export", "tiny-cli", "--format", "csv", "--results", results)
    lines = csv.output.strip().splitlines()
    assert len(lines) == 3  # header + two configurations
    assert lines[0].startswith("model.activation") or "activation" in lines[0]
    listed = invoke("studies", "--results", results)
    assert "tiny-cli" in listed.output
    compared = invoke("compare", "tiny-cli", "tiny-cli", "--results", results)
    assert compared.exit_code == 0, compared.output


def test_run_writes_the_report_and_report_analyze_rewrite_it(tiny_study, tmp_path):
    results = tmp_path / "results"
    ran = invoke("run", str(tiny_study), "--results", str(results))
    assert f"report: {results / 'tiny-cli' / 'report.html'}" in ran.output
    written = invoke(
        "report", "tiny-cli", "--results", str(results), "-o", str(tmp_path / "r.html")
    )
    assert written.exit_code == 0, written.output
    assert "<h1>tiny-cli</h1>" in (tmp_path / "r.html").read_text()
    analyzed = invoke("analyze", "tiny-cli", "-a", "confusion_matrix", "--results", str(results))
    assert analyzed.exit_code == 0, analyzed.output
    page = (results / "tiny-cli" / "analysis-confusion_matrix.html").read_text()
    assert 'id="analysis-confusion_matrix"' in page and "data:image/png;base64," in page
    unknown = invoke("analyze", "tiny-cli", "-a", "nope", "--results", str(results))
    assert unknown.exit_code == 2
    assert "unknown analysis 'nope'" in unknown.output
    chosen = invoke(
        "analyze",
        "tiny-cli",
        "-a",
        "curves",
        "--option",
        "runs=best",
        "--option",
        "max_runs=1",
        "--results",
        str(results),
    )
    assert chosen.exit_code == 0, chosen.output
    page = (results / "tiny-cli" / "analysis-curves.html").read_text()
    assert "options: runs=best, max_runs=1" in page
    for bad, message in (
        ("runs=sometimes", "analysis curves: options: runs: Input should be"),
        ("colour=red", "analysis curves: options: colour: Extra inputs are not permitted"),
        ("runs", "--option 'runs': expected KEY=VALUE"),
        ("keys=[loss", "--option 'keys=[loss': the value is not valid YAML"),
    ):
        refused = invoke(
            "analyze", "tiny-cli", "-a", "curves", "--option", bad, "--results", str(results)
        )
        assert refused.exit_code == 2, bad
        lines = [line for line in refused.output.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0], refused.output


def test_check_rejects_a_bad_analysis_option_in_one_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(TINY_STUDY + "analyses: [{name: curves, options: {layout: sideways}}]\n")
    result = invoke("check", str(path))
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "bad.yaml: analyses[0] (curves) options: layout" in lines[0]


def test_dry_run_and_check_print_the_plan(tiny_study, tmp_path):
    checked = invoke("check", str(tiny_study))
    assert checked.exit_code == 0
    assert "ok, 4 runs" in checked.output
    planned = invoke("run", str(tiny_study), "--dry-run", "--results", str(tmp_path / "r"))
    assert planned.exit_code == 0
    assert "4 runs, 4 to do" in planned.output
    assert not (tmp_path / "r" / "mnistlab.db").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (TINY_STUDY + "colour: blue\n", "colour: Extra inputs are not permitted"),
        (TINY_STUDY.replace("epochs: 2", "epochs: two"), "training.epochs"),
        (TINY_STUDY.replace("model.activation", "model.activaton"), "model.activaton"),
        (TINY_STUDY.replace("[relu, tanh]", "[]"), "grid"),
        (TINY_STUDY + "grid: [\n", "line"),
    ],
)
def test_bad_study_files_are_one_line_exit_2(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    for args in (["check", str(path)], ["run", str(path), "--results", str(tmp_path / "r")]):
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1, result.output
        assert "bad.yaml" in lines[0] and message in lines[0]
    assert not (tmp_path / "r" / "mnistlab.db").exists()


def test_show_unknown_study_or_missing_store_is_exit_2(tmp_path, tiny_study):
    missing = invoke("show", "nope", "--results", str(tmp_path / "none"))
    assert missing.exit_code == 2
    assert "no results store" in missing.output
    invoke("run", str(tiny_study), "--results", str(tmp_path / "r"))
    unknown = invoke("show", "nope", "--results", str(tmp_path / "r"))
    assert unknown.exit_code == 2
    assert "no study named 'nope'" in unknown.output and "tiny-cli" in unknown.output


def test_newer_store_schema_is_a_clear_message(tmp_path):
    import sqlite3

    results = tmp_path / "r"
    results.mkdir()
    with sqlite3.connect(results / "mnistlab.db") as conn:
        conn.execute("PRAGMA user_version = 99")
    shown = invoke("studies", "--results", str(results))
    assert shown.exit_code == 2
    assert "schema version 99" in shown.output


def test_backprop_example_prints_the_updated_parameters():
    result = invoke("backprop-example", "--eta", "0.1", "--sse", "sum")
    assert result.exit_code == 0, result.output
    assert "Σ(ŷ−y)² summed over" in result.output
    assert "[1, 1, -0.6, 1.6]" in result.output  # W2 after the step, sum convention
    assert "largest difference 0.0e+00" in result.output


def test_backprop_example_rejects_a_negative_eta():
    result = invoke("backprop-example", "--eta", "-1")
    assert result.exit_code == 2
    assert "eta: must be > 0, got -1.0" in result.output


@pytest.mark.parametrize("option", ["--jobs", "--threads"])
def test_run_refuses_fewer_than_one_job_or_thread(tmp_path, tiny_study, option):
    result = invoke("run", str(tiny_study), "--results", str(tmp_path / "r"), option, "0")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [
        f"error: Invalid value for '{option}': Input should be greater than or equal to 1"
    ]
    assert not (tmp_path / "r" / "mnistlab.db").exists()


@pytest.mark.parametrize("verb", ["run", "check"])
def test_a_missing_study_file_is_one_line_exit_2(tmp_path, verb):
    result = invoke(
        verb, str(tmp_path / "nope.yaml"), *(["--results", str(tmp_path / "r")] * (verb == "run"))
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [
        f"error: Invalid value for 'study': file '{tmp_path / 'nope.yaml'}' does not exist."
    ]
    assert not (tmp_path / "r").exists()


def test_the_typed_choices_are_the_library_names():
    from typing import get_args

    from mnistlab.cli import Activation, Optimizer
    from mnistlab.models.components import ActivationSpec
    from mnistlab.training.optimizers import OPTIMIZER_NAMES

    union = get_args(ActivationSpec)[0]  # Annotated flattens: (the union, field, validator)
    assert [a.value for a in Activation] == [
        c.model_fields["name"].default for c in get_args(union)
    ]
    assert [o.value for o in Optimizer] == list(OPTIMIZER_NAMES)
    from mnistlab.cli import ExportTable
    from mnistlab.studies.summary import TABLE_KINDS

    assert [t.value for t in ExportTable] == list(TABLE_KINDS)
    from mnistlab.cli import Executor
    from mnistlab.studies.options import ExecutorKind

    assert [e.value for e in Executor] == [k.value for k in ExecutorKind]


def test_export_gives_every_table_with_numbers_in_their_own_columns(tmp_path):
    path = tmp_path / "sel.yaml"
    path.write_text(TINY_STUDY + "select: {metric: val_accuracy, over: model.activation}\n")
    results = str(tmp_path / "results")
    assert invoke("run", str(path), "--results", results).exit_code == 0
    summary = invoke("export", "tiny-cli", "--results", results).output.splitlines()
    assert "±" not in "\n".join(summary)
    header = summary[0].split(",")
    assert {"val_accuracy_mean", "val_accuracy_std", "val_accuracy_n"} <= set(header)
    n_column = header.index("val_accuracy_n")
    assert [row.split(",")[n_column] for row in summary[1:]] == ["2", "2"]
    selection = json.loads(
        invoke(
            "export", "tiny-cli", "--table", "selection", "--format", "json", "--results", results
        ).output
    )
    assert len(selection) == 1 and 0 <= selection[0]["val_accuracy_mean"] <= 1
    runs = invoke("export", "tiny-cli", "--table", "runs", "--results", results).output
    assert len(runs.strip().splitlines()) == 1 + 4
    missing = invoke("export", "tiny-cli", "--table", "cv", "--results", results)
    assert missing.exit_code == 2
    assert "study 'tiny-cli' has no cv table (it has: summary, selection, runs)" in missing.output


def test_a_diverged_train_exits_1_without_saving(tmp_path):
    weights = tmp_path / "w.safetensors"
    args = [
        "--hidden",
        "8",
        "--optimizer",
        "sgd",
        "--learning-rate",
        "1e30",
        "--save",
        str(weights),
    ]
    result = invoke("train", "--dataset", "digits", *args)
    assert result.exit_code == 1, result.output
    assert "run diverged at epoch 1, batch 1" in result.output
    assert not weights.exists()


def test_a_failed_train_exits_1_with_one_line(monkeypatch):
    import mnistlab.api

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(mnistlab.api, "fit", broken)
    result = invoke("train", "--dataset", "digits", "--hidden", "8")
    assert result.exit_code == 1, result.output
    assert "run failed: RuntimeError: out of memory" in result.output.splitlines()


def test_set_and_variant_run_a_derived_study_beside_the_full_one(tiny_study, tmp_path):
    results = str(tmp_path / "results")
    derived = ("--set", "training.epochs=1", "--set", "model.activation=relu")
    ran = invoke("run", str(tiny_study), "--results", results, "--no-report", *derived)
    assert ran.exit_code == 0, ran.output
    assert "tiny-cli--epochs-1-activation-relu: ran 2 runs; 2 done" in ran.output
    listed = invoke("studies", "--results", results)
    assert "tiny-cli--epochs-1-activation-relu" in listed.output
    assert "tiny-cli " not in listed.output  # the full study's name holds no runs
    again = invoke("run", str(tiny_study), "--results", results, "--no-report", *derived)
    assert "ran 0 runs" in again.output  # the same derivation resumes


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--set", "training.epochz=1"), "--set training.epochz: 'epochz' is not a field"),
        (("--variant", "x"), "--variant: study 'tiny-cli' has no variants"),
    ],
)
def test_bad_set_or_variant_is_one_line_exit_2(tiny_study, tmp_path, args, message):
    for verb in ("check", "run"):
        extra = ("--results", str(tmp_path / "r")) if verb == "run" else ()
        result = invoke(verb, str(tiny_study), *extra, *args)
        assert result.exit_code == 2
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--address", "auto"], "error: --address: only with --executor ray"),
        (
            ["--cpus-per-run", "2", "--gpus-per-run", "0.5"],
            "error: --cpus-per-run, --gpus-per-run: only with --executor ray",
        ),
        (
            ["--executor", "ray", "--jobs", "2"],
            "error: --jobs: only with --executor local (on Ray, use --cpus-per-run)",
        ),
        (["--executor", "spark"], "error: Invalid value for '--executor'"),
        (["--executor", "ray", "--cpus-per-run", "0"], "error: Invalid value for '--cpus-per-run'"),
        (
            ["--executor", "ray", "--gpus-per-run", "-1"],
            "error: Invalid value for '--gpus-per-run'",
        ),
    ],
)
def test_executor_flags_that_do_not_fit_are_one_line_exit_2(tiny_study, tmp_path, args, message):
    result = invoke("run", str(tiny_study), "--results", str(tmp_path / "r"), *args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(message), result.output
    assert not (tmp_path / "r").exists()


def test_run_on_ray_without_ray_or_a_gpu_is_one_line_exit_2(tiny_study, tmp_path, monkeypatch):
    import sys

    on_ray = ["run", str(tiny_study), "--results", str(tmp_path / "r"), "--executor", "ray"]
    cuda = invoke(*on_ray, "--device", "cuda")
    lines = [line for line in cuda.output.splitlines() if line.strip()]
    assert cuda.exit_code == 2
    assert lines == ["error: device: --device cuda on Ray needs --gpus-per-run > 0"]
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails, as when not installed
    monkeypatch.delitem(sys.modules, "mnistlab.studies.ray_executor", raising=False)
    missing = invoke(*on_ray)
    lines = [line for line in missing.output.splitlines() if line.strip()]
    assert missing.exit_code == 2
    assert lines == ["error: --executor ray needs Ray: pip install -e '.[ray]'"]
    assert not (tmp_path / "r").exists()  # refused before the store was made


def test_evaluate_each_epoch_feeds_the_zero_one_error(tiny_study, tmp_path):
    results = str(tmp_path / "results")
    ran = invoke(
        "run",
        str(tiny_study),
        "--results",
        results,
        "--no-report",
        "--name",
        "ev",
        "--set",
        "training.evaluate_each_epoch=[train, test]",
    )
    assert ran.exit_code == 0, ran.output
    from mnistlab.studies import open_store

    with open_store(tmp_path / "results") as store:
        runs = store.runs("ev")
        history = store.history(runs[0].run_id)
        assert len(history["train_eval_accuracy"]) == len(history["test_eval_loss"]) == 2
        assert history["test_eval_accuracy"][-1] == pytest.approx(runs[0].metrics["test_accuracy"])
    analyzed = invoke("analyze", "ev", "--analysis", "zero_one_error", "--results", results)
    assert analyzed.exit_code == 0, analyzed.output
    page = (tmp_path / "results" / "ev" / "analysis-zero_one_error.html").read_text()
    assert "re-evaluated after each epoch in inference mode" in page


def test_show_runs_names_each_runs_engine_and_run_engine_forces_one(tiny_study, tmp_path):
    results = str(tmp_path / "results")
    assert invoke("run", str(tiny_study), "--results", results, "--no-report").exit_code == 0
    chosen = invoke("show", "tiny-cli", "--runs", "--results", results)
    assert "engine compiled (batch 64 × 64·8 = 32,768 multiply-adds < 4,000,000): 4 runs" in (
        chosen.output
    )
    forced = invoke("run", str(tiny_study), "--results", results, "--fresh", "--engine", "autograd")
    assert forced.exit_code == 0, forced.output
    shown = invoke("show", "tiny-cli", "--runs", "--results", results)
    assert "engine autograd (requested): 4 runs" in shown.output
    unknown = invoke("run", str(tiny_study), "--results", results, "--engine", "jit")
    assert unknown.exit_code == 2
    assert "'jit' is not one of 'auto', 'autograd', 'lean', 'compiled'" in unknown.output


def test_export_to_trackers_prints_one_line_each(tiny_results, tmp_path):
    results = ["--results", str(tiny_results)]
    uri = (tmp_path / "mlruns").as_uri()
    for _ in range(2):
        exported = invoke(
            "export", "tiny-results", "--to", "mlflow", "--tracking-uri", uri, *results
        )
        assert exported.exit_code == 0, exported.output
    assert exported.output.strip().endswith("0 runs written, 4 skipped")
    board = invoke("export", "tiny-results", "--to", "tensorboard", str(tmp_path / "tb"), *results)
    assert board.exit_code == 0, board.output
    assert board.output.strip() == (
        f"tiny-results -> {tmp_path / 'tb' / 'tiny-results'}: 4 runs written, 0 skipped"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "mlflow"], "pip install -e '.[mlflow]'"),
        (["--to", "tensorboard"], "pip install -e '.[tensorboard]'"),
        (["somewhere"], "a folder is only for --to tensorboard"),
        (["--to", "wandb"], "--to"),
    ],
)
def test_export_mistakes_are_one_line_and_exit_2(tiny_results, monkeypatch, args, message):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if the extras were not installed
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    result = invoke("export", "tiny-results", *args, "--results", str(tiny_results))
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines
