"""The runner end to end on scikit-learn's digits: skip, resume, chains, failures, workers."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

from mnistlab.data.cache import DataCache
from mnistlab.studies.execute import RunTask, execute
from mnistlab.studies.expand import expand
from mnistlab.studies.loading import parse_study
from mnistlab.studies.options import RunOptions
from mnistlab.studies.results_folder import DB_NAME, open_store
from mnistlab.studies.runner import plan_study, run_study

BASE = """
name: tiny
data: {dataset: digits, scaling: minmax, validation: {kind: tail, n: 300}}
model: {hidden: [8]}
training: {optimizer: {name: adam, learning_rate: 0.01}, epochs: 2, batch_size: 64}
"""


def study(extra: str, name: str = "tiny"):
    text = BASE.replace("name: tiny", f"name: {name}") + textwrap.dedent(extra)
    return parse_study(text, "tiny.yaml"), text


def test_runs_everything_once_then_skips(tmp_path):
    spec, text = study("grid: {model.activation: [relu, tanh]}\nrepetitions: 2\n")
    first = run_study(spec, text, RunOptions(tmp_path))
    assert first.ran == 4
    assert first.counts == {"done": 4}
    again = run_study(spec, text, RunOptions(tmp_path))
    assert again.ran == 0
    with open_store(tmp_path) as store:
        runs = store.runs("tiny")
        assert {r.seed for r in runs} == {0, 1}
        assert all(0.3 < r.metrics["test_accuracy"] <= 1 for r in runs)  # chance is 0.1
        assert all(r.metrics["epochs_run"] == 2 for r in runs)
        artifact = store.artifacts(runs[0].run_id)["weights"]
        assert (tmp_path / artifact.path).is_file()
        assert len(store.history(runs[0].run_id)["loss"]) == 2
        assert store.integrity_check() == "ok"


def test_dry_run_plans_without_writing(tmp_path):
    spec, _ = study("grid: {model.hidden: [[4], [8], [16]]}\n")
    plan = plan_study(spec, RunOptions(tmp_path))
    assert len(plan.runs) == len(plan.todo) == 3
    assert plan.estimate_seconds is None
    assert not (tmp_path / DB_NAME).exists()


def test_a_failed_run_never_stops_the_study(tmp_path):
    spec, text = study("""
        variants:
          - {name: fine, set: {}}
          - {name: impossible, set: {data.train_subset: {kind: balanced, per_class: 143}}}
        """)  # 1,430 of 1,437 rows passes the check, but digit 8 has only 141 of them
    outcome = run_study(spec, text, RunOptions(tmp_path))
    assert outcome.counts == {"done": 1, "failed": 1}
    with open_store(tmp_path) as store:
        failed = [r for r in store.runs("tiny") if r.status == "failed"]
        assert "per_class" in failed[0].error


def test_continue_chain_starts_from_the_previous_weights(tmp_path):
    spec, text = study("""
        grid: {training.optimizer.learning_rate: [0.01, 0.02]}
        repetitions: {count: 2, mode: continue}
        """)
    run_study(spec, text, RunOptions(tmp_path))
    with open_store(tmp_path) as store:
        runs = sorted(store.runs("tiny"), key=lambda r: r.order)
        assert [r.parent for r in runs[1:]] == [r.run_id for r in runs[:-1]]
        assert runs[0].parent is None
        parent_file = tmp_path / store.artifacts(runs[0].run_id)["weights"].path
        stored = store.history(runs[1].run_id)["loss"]
    # a chain member starts from its parent's final weights: training the child again, alone,
    # from the parent's weights file reproduces its stored history exactly
    data = DataCache()
    child = next(r for r in expand(spec, data.fingerprint) if r.run_id == runs[1].run_id)
    task = RunTask((child,), tmp_path / "again", parent_weights=parent_file)
    (again,) = execute(task, data)
    assert again.history["loss"] == stored


def test_parallel_workers_share_the_store(tmp_path):
    spec, text = study("grid: {model.hidden: [[4], [8], [12], [16]]}\n")
    outcome = run_study(spec, text, RunOptions(tmp_path, jobs=2))
    assert outcome.counts == {"done": 4}
    with open_store(tmp_path) as store:
        assert store.integrity_check() == "ok"
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        workers = {row[0] for row in conn.execute("SELECT worker FROM runs")}
    assert workers == {f"pool of 2 in {os.getpid()}"}  # the pool reports its runs up front


def test_changed_study_file_needs_fresh(tmp_path):
    spec, text = study("")
    run_study(spec, text, RunOptions(tmp_path))
    changed, changed_text = study("repetitions: 2\n")
    with pytest.raises(Exception, match="different file; use --fresh"):
        run_study(changed, changed_text, RunOptions(tmp_path))
    assert run_study(changed, changed_text, RunOptions(tmp_path, fresh=True)).counts == {"done": 2}


def test_editing_what_a_study_reports_keeps_its_runs(tmp_path):
    spec, text = study("")
    run_study(spec, text, RunOptions(tmp_path))
    reported, reported_text = study(
        "description: now with curves\nanalyses: [curves]\n"
        "table: {columns: [{title: acc, metric: test_accuracy}]}\n"
    )
    assert run_study(reported, reported_text, RunOptions(tmp_path, captures=())).ran == 0
    with open_store(tmp_path) as store:
        stored = store.get_study("tiny")
    assert "analyses: [curves]" in stored.source
    assert '"curves"' in stored.spec_json


def test_killed_study_resumes_without_redoing_finished_runs(tmp_path):
    study_file = tmp_path / "slow.yaml"
    study_file.write_text(
        BASE.replace("name: tiny", "name: slow").replace("epochs: 2", "epochs: 40")
        + "grid: {model.hidden: [[4], [6], [8], [10], [12], [14]]}\n"
    )
    results = tmp_path / "results"
    command = [
        sys.executable,
        "-m",
        "mnistlab.cli",
        "run",
        str(study_file),
        "--results",
        str(results),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = _wait_for_done_runs(results / DB_NAME, at_least=2, proc=proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with open_store(results) as store:
        assert store.integrity_check() == "ok"
        finished_before = {r.run_id for r in store.runs("slow") if r.status == "done"}
    assert len(finished_before) >= done
    spec = parse_study(study_file.read_text(), str(study_file))
    outcome = run_study(spec, study_file.read_text(), RunOptions(results))
    assert outcome.ran == 6 - len(finished_before)
    assert outcome.counts == {"done": 6}


def _wait_for_done_runs(db: Path, at_least: int, proc: subprocess.Popen) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the study finished before it could be killed"
        if db.exists():
            try:
                with sqlite3.connect(db) as conn:
                    count = conn.execute(
                        "select count(*) from runs where status='done'"
                    ).fetchone()[0]
            except sqlite3.OperationalError:
                count = 0
            if count >= at_least:
                return count
        time.sleep(0.05)
    raise AssertionError("no run finished in time")


def test_stacked_runs_equal_single_runs(tmp_path):
    spec, text = study("grid: {training.optimizer.learning_rate: [0.01, 0.03]}\nrepetitions: 2\n")
    # batch norm keeps these tiny runs off the lean step, which would train them faster alone;
    # alone they run on autograd, the reference the stack is tested against (the compiled
    # engine, which `auto` picks for them, sums in another order: a metric of the stack and
    # of the compiled run differed by 7e-5 relative, each within 1e-5 of autograd's)
    text = text.replace(
        "model: {hidden: [8]}", "model: {hidden: [8], dropout: 0.1, batch_norm: after}"
    )
    spec = parse_study(text, "tiny.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a stack that fell back to single runs would warn
        stacked = run_study(spec, text, RunOptions(tmp_path / "stacked"))
    alone = run_study(spec, text, RunOptions(tmp_path / "alone", engine="autograd"))
    assert stacked.counts == alone.counts == {"done": 4}
    with open_store(tmp_path / "stacked") as a, open_store(tmp_path / "alone") as b:
        for x, y in zip(a.runs("tiny"), b.runs("tiny"), strict=True):
            assert x.run_id == y.run_id
            for key in ("loss", "accuracy", "val_loss", "test_accuracy"):
                assert x.metrics[key] == pytest.approx(y.metrics[key], rel=1e-5, abs=1e-6)
            history_a, history_b = a.history(x.run_id)["loss"], b.history(y.run_id)["loss"]
            assert history_a == pytest.approx(history_b, rel=1e-5)


def test_the_runner_stacks_compatible_runs_only():
    from mnistlab.studies.execute import RunTask
    from mnistlab.studies.stacking import plan_stacks

    spec, _ = study(
        "grid: {model.hidden: [[4], [8]], training.optimizer.learning_rate: [0.01, 0.02],"
        " model.batch_norm: [after]}\nrepetitions: 2\n"
    )
    runs = expand(spec, lambda data: "fp")
    tasks = plan_stacks([RunTask((run,), Path("r")) for run in runs], DataCache())
    assert sorted(len(t.runs) for t in tasks) == [4, 4]
    assert all(t.stacked for t in tasks)
    assert {len({r.config.model.hidden for r in t.runs}) for t in tasks} == {1}


def test_small_runs_the_lean_step_takes_are_not_stacked():
    from mnistlab.studies.execute import RunTask
    from mnistlab.studies.stacking import plan_stacks

    spec, _ = study("grid: {training.optimizer.learning_rate: [0.01, 0.02]}\nrepetitions: 2\n")
    runs = expand(spec, lambda data: "fp")
    tasks = plan_stacks([RunTask((run,), Path("r")) for run in runs], DataCache())
    assert [len(t.runs) for t in tasks] == [1, 1, 1, 1]
    assert not any(t.stacked for t in tasks)


def test_runs_that_cannot_stack_run_alone(tmp_path):
    spec, text = study("grid: {model.hidden: [[4], [8]], training.optimizer: [sgd, adam]}\n")
    outcome = run_study(spec, text, RunOptions(tmp_path))
    assert outcome.counts == {"done": 4}


def test_a_cnn_variant_runs_beside_stacked_mlps(tmp_path):
    spec, text = study("""
        repetitions: 2
        variants:
          - {name: mlp, set: {}}
          - name: cnn
            set:
              model:
                kind: cnn
                layers:
                  - {layer: conv2d, filters: 8, kernel_size: 3, padding: same, activation: relu}
                  - max_pool2d
                  - flatten
        """)
    result = run_study(spec, text, RunOptions(tmp_path))
    assert result.counts == {"done": 4}
    with open_store(tmp_path) as store:
        cnn = [r for r in store.runs("tiny") if r.variant == "cnn"]
        assert [r.config["model"]["kind"] for r in cnn] == ["cnn", "cnn"]
        assert all(0.3 < r.metrics["test_accuracy"] <= 1 for r in cnn)  # chance is 0.1


def test_a_stack_feeds_the_progress_display_with_its_longest_member(tmp_path):
    spec, _ = study("grid: {training.epochs: [2, 3], model.batch_norm: [after]}\n")
    data = DataCache()
    runs = tuple(expand(spec, data.fingerprint))
    seen = []
    results = list(
        execute(
            RunTask(runs, tmp_path, stacked=True),
            data,
            on_epoch=lambda run, epoch, epochs, logs: seen.append((run.run_id, epoch, epochs)),
        )
    )
    assert [r.status for r in results] == ["done", "done"]
    longest = next(r for r in runs if r.config.training.epochs == 3)
    assert seen == [(longest.run_id, e, 3) for e in range(3)]


def test_threads_fix_torch_threads_for_every_run(tmp_path):
    import torch

    spec, text = study("")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert run_study(spec, text, RunOptions(tmp_path, threads=1, captures=())).ran == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
