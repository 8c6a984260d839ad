"""Crash campaign: a study killed with SIGKILL at many moments, and two processes on one store."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from mnistlab.studies.results_folder import DB_NAME, open_store

STUDY = """\
name: crash
data: {dataset: digits, scaling: minmax, validation: {kind: tail, n: 300}}
model: {hidden: [8]}
training: {optimizer: {name: adam, learning_rate: 0.02}, epochs: 15, batch_size: 32}
grid: {model.hidden: [[4], [6], [8], [10], [12], [14]]}
analyses: [curves]
"""
RUNS = 6
KILL_AFTER_S = (0.3, 0.8, 1.5, 2.2, 3.0, 3.6, 4.3, 5.0, 6.0, 7.5)
"""From the first second (imports, store creation) through the runs to the report."""


def _command(study: Path, results: Path) -> list[str]:
    return [sys.executable, "-m", "mnistlab.cli", "run", str(study), "--results", str(results)]


def _counts(results: Path) -> dict[str, int]:
    with sqlite3.connect(results / DB_NAME) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())


def test_killed_at_ten_moments_the_store_stays_whole_and_resumes(tmp_path):
    study, results = tmp_path / "crash.yaml", tmp_path / "results"
    study.write_text(STUDY)
    for delay in KILL_AFTER_S:
        proc = subprocess.Popen(
            _command(study, results), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if (results / DB_NAME).exists():
            with open_store(results) as store:
                assert store.integrity_check() == "ok", f"killed after {delay} s"
    finished = subprocess.run(_command(study, results), capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert _counts(results) == {"done": RUNS}
    with open_store(results) as store:
        assert store.integrity_check() == "ok"
        runs = store.runs("crash")
        assert len({r.run_id for r in runs}) == RUNS
        assert all(len(store.history(r.run_id)["loss"]) == 15 for r in runs)
    assert (results / "crash" / "report.html").is_file()


def test_two_processes_on_one_study_share_its_runs_without_duplicates(tmp_path):
    study, results = tmp_path / "crash.yaml", tmp_path / "results"
    study.write_text(STUDY.replace("analyses: [curves]\n", ""))
    procs = [
        subprocess.Popen(
            [*_command(study, results), "--no-report"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    assert _counts(results) == {"done": RUNS}
    ran = [int(out.split(" ran ")[1].split()[0]) for out, _ in outputs]
    assert sum(ran) == RUNS  # every run trained once, by one of the two
    with open_store(results) as store:
        assert store.integrity_check() == "ok"
