"""Tests for studies/store.py: opening, migrations, the run lifecycle, crashes, concurrency."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mnistlab
from mnistlab.status import FINISHED, RunStatus
from mnistlab.studies.records import RunConfig, RunResult, RunSpec
from mnistlab.studies.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    STATUSES,
    ArtifactRow,
    Store,
    StoreError,
)
from mnistlab.training.spec import TrainSpec

CONFIG = RunConfig(training=TrainSpec(epochs=3, batch_size=8))
SRC = str(Path(mnistlab.__file__).parent)

# --- helpers ---


def spec(i: int, study: str = "s", **changes: object) -> RunSpec:
    """Run i of a study: two repetitions per group, labelled by width."""
    fields: dict = dict(
        study=study,
        run_id=f"r{i:04d}",
        group=f"g{i // 2}",
        config=CONFIG,
        seed=i,
        repetition=i % 2,
        labels={"model.hidden": [16 * (i // 2 + 1)]},
        order=i,
    )
    return RunSpec(**(fields | changes))


def result(run_id: str, status: RunStatus = "done", epochs: int = 3) -> RunResult:
    """A finished run with a Keras History of `epochs` epochs."""
    history = {
        "loss": [1.0 / (e + 1) for e in range(epochs)],
        "accuracy": [0.5 + 0.1 * e for e in range(epochs)],
        "val_loss": [1.5 / (e + 1) for e in range(epochs)],
    }
    metrics = {"loss": history["loss"][-1], "val_accuracy": 0.75, "epochs_run": float(epochs)}
    return RunResult(run_id, status, metrics=metrics, history=history, seconds=1.25)


def sql(store: Store, query: str, *params: object) -> list[tuple]:
    """Raw rows, for checks the public API does not expose."""
    return [tuple(r) for r in store._conn.execute(query, params)]


def open_study(path: str | Path = ":memory:", n: int = 0) -> Store:
    store = Store.open(path)
    store.save_study("s", "a study", '{"name": "s"}', "hash-1", "name: s\n")
    store.add_runs([spec(i) for i in range(n)])
    return store


@pytest.fixture
def store():
    with open_study(n=4) as store:
        yield store


# --- opening ---


def test_open_creates_folder_sets_pragmas_and_reopens_idempotently(tmp_path):
    path = tmp_path / "results" / "mnistlab.db"
    with open_study(path, n=2) as store:
        assert sql(store, "PRAGMA user_version") == [(SCHEMA_VERSION,)] == [(2,)]
        assert sql(store, "PRAGMA journal_mode") == [("wal",)]
        assert sql(store, "PRAGMA synchronous") == [(1,)]  # NORMAL
        assert sql(store, "PRAGMA foreign_keys") == [(1,)]
        assert sql(store, "PRAGMA busy_timeout") == [(30_000,)]
    with Store.open(str(path)) as store:  # reopening migrates nothing and keeps the data
        assert sql(store, "PRAGMA user_version") == [(2,)]
        assert [r.run_id for r in store.runs("s")] == ["r0000", "r0001"]
        assert store.integrity_check() == "ok"
    with pytest.raises(StoreError, match="Cannot operate on a closed database"):
        store.counts("s")


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "mnistlab.db"
    sqlite3.connect(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}").connection.close()
    with pytest.raises(StoreError) as err:
        Store.open(path)
    assert str(err.value) == (
        f"{path}: results store has schema version 5, this mnistlab knows up to 2; upgrade mnistlab"
    )


def test_a_version_1_store_gains_the_engine_column_and_keeps_its_runs(tmp_path):
    path = tmp_path / "mnistlab.db"
    open_study(path, n=2).close()
    conn = sqlite3.connect(path)  # the file as version 1 wrote it
    conn.execute("ALTER TABLE runs DROP COLUMN engine")
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    with Store.open(path) as store:
        assert sql(store, "PRAGMA user_version") == [(2,)]
        assert [(r.run_id, r.engine) for r in store.runs("s")] == [("r0000", None), ("r0001", None)]
        store.finish_run(RunResult("r0000", RunStatus.DONE, engine="compiled (requested)"), {})
        assert store.run("r0000").engine == "compiled (requested)"


def test_a_version_1_store_reads_migrated_in_memory_and_stays_version_1(tmp_path):
    path = tmp_path / "mnistlab.db"
    open_study(path, n=2).close()
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE runs DROP COLUMN engine")
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    before = path.read_bytes()
    with Store.open_readonly(path) as store:
        assert [(r.run_id, r.engine) for r in store.runs("s")] == [("r0000", None), ("r0001", None)]
        assert sql(store, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert path.read_bytes() == before
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (1,)


def test_a_file_that_is_not_a_store_is_refused(tmp_path):
    path = tmp_path / "mnistlab.db"
    path.write_text("epoch,loss\n" * 200)
    with pytest.raises(StoreError) as err:
        Store.open(path)
    assert str(err.value) == f"{path}: not a mnistlab results store (file is not a database)"

    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(StoreError) as err:
        Store.open(other)
    assert str(err.value) == f"{other}: a SQLite database, but not a mnistlab results store"


def test_a_folder_that_cannot_be_made_or_written_is_refused(tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(StoreError, match=r"^\S+/results/mnistlab.db: cannot create folder \S+"):
        Store.open(blocker / "mnistlab.db")

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: chmod does not stop writes")
        with pytest.raises(StoreError) as err:
            Store.open(locked / "mnistlab.db")
        assert str(err.value) == f"{locked}/mnistlab.db: folder {locked} is not writable"
    finally:
        locked.chmod(0o700)


def test_the_schema_knows_every_status_and_which_are_final():
    schema = "\n".join(MIGRATIONS[0])
    allowed = ", ".join(f"'{s}'" for s in STATUSES)
    assert f"CHECK (status IN ({allowed}))" in schema
    final = ", ".join(f"'{s}'" for s in RunStatus if s in FINISHED)
    assert f"WHEN OLD.status IN ({final})" in schema


def test_records_come_back_with_their_status_as_the_enum(store):
    store.finish_run(result("r0000", "diverged"))
    (record,) = store.runs("s", RunStatus.DIVERGED)
    assert record.status is RunStatus.DIVERGED


# --- studies ---


def test_save_study_keeps_the_same_file_and_names_the_fix_for_another(tmp_path):
    path = tmp_path / "results" / "mnistlab.db"
    with open_study(path, n=3) as store:
        store.finish_run(result("r0000"))
        store.save_study("s", "new words", '{"name": "s"}', "hash-1", "# comment\nname: s\n")
        assert store.counts("s")["done"] == 1  # same spec: resume, nothing deleted
        row = store.get_study("s")
        assert row is not None
        assert (row.description, row.source) == ("new words", "# comment\nname: s\n")
        assert row.spec == {"name": "s"}

        with pytest.raises(StoreError) as err:
            store.save_study("s", "", '{"name": "s", "x": 1}', "hash-2", "")
        assert str(err.value) == (
            f"study 's' in {tmp_path}/results/ was made from a different file;"
            " use --fresh or rename it"
        )
        assert store.get_study("s").spec_hash == "hash-1"  # type: ignore[union-attr]

        store.save_study("s", "fresh", '{"name": "s", "x": 1}', "hash-2", "", replace=True)
        assert store.get_study("s").spec_hash == "hash-2"  # type: ignore[union-attr]
        assert store.runs("s") == []
        assert sql(store, "SELECT count(*) FROM epochs") == [(0,)]
        assert store.integrity_check() == "ok"


def test_list_get_and_delete_studies(store):
    store.save_study("a", "first", "{}", "h", "")
    store.finish_run(result("r0001", "diverged"))
    summaries = store.list_studies()
    assert [(s.name, s.description, s.total) for s in summaries] == [
        ("a", "first", 0),
        ("s", "a study", 4),
    ]
    assert summaries[1].counts == {
        "pending": 3,
        "running": 0,
        "done": 0,
        "diverged": 1,
        "failed": 0,
    }
    assert store.get_study("nope") is None
    assert store.delete_study("s") is True
    assert store.delete_study("s") is False
    assert store.run("r0001") is None
    assert store.history("r0001") == {}
    assert sql(store, "SELECT count(*) FROM runs") == [(0,)]


# --- runs ---


def test_add_runs_is_idempotent_and_round_trips_the_spec(store):
    store.mark_running("r0000", "w")
    store.finish_run(result("r0001"))
    changed = spec(1, seed=99)  # existing rows are left alone, whatever comes in
    extra = spec(4, variant="wide", parent="r0003", role="cv-fold")
    assert store.add_runs([spec(0), changed, spec(2), spec(3), extra]) == 1
    assert [(r.run_id, r.status, r.seed) for r in store.runs("s")] == [
        ("r0000", "running", 0),
        ("r0001", "done", 1),
        ("r0002", "pending", 2),
        ("r0003", "pending", 3),
        ("r0004", "pending", 4),
    ]
    record = store.run("r0004")
    assert record is not None
    assert (record.study, record.group, record.repetition, record.order) == ("s", "g2", 0, 4)
    assert (record.variant, record.parent, record.role) == ("wide", "r0003", "cv-fold")
    assert record.labels == {"model.hidden": [48]}
    assert record.config == CONFIG.model_dump(mode="json")
    assert RunConfig.model_validate(record.config) == CONFIG
    assert (record.metrics, record.seconds, record.error) == ({}, None, None)


def test_add_runs_refuses_unknown_studies_and_run_ids_of_another_study(store):
    with pytest.raises(StoreError, match=r"^study 'ghost' is not in :memory:; save it first$"):
        store.add_runs([spec(9, study="ghost")])
    store.save_study("t", "", "{}", "h", "")
    with pytest.raises(StoreError) as err:
        store.add_runs([spec(9, study="t"), spec(0, study="t")])
    assert str(err.value) == "run r0000 of study 't' is already stored under study 's' in :memory:"
    assert store.counts("t")["pending"] == 0  # the whole call rolled back


def test_runs_filters_by_status_in_order(store):
    store.add_runs([spec(7, order=-1)])
    store.finish_run(result("r0002", "failed"))
    store.finish_run(result("r0003"))
    assert [r.run_id for r in store.runs("s")] == ["r0007", "r0000", "r0001", "r0002", "r0003"]
    assert [r.run_id for r in store.runs("s", FINISHED)] == ["r0002", "r0003"]
    assert [r.run_id for r in store.runs("s", "failed")] == ["r0002"]
    assert store.runs("other") == []
    with pytest.raises(StoreError, match=r"^unknown run status 'ok'; expected one of pending, "):
        store.runs("s", ["ok"])


def test_finish_run_stores_status_metrics_history_and_artifacts(store):
    store.mark_running("r0002", "host:1")
    store.finish_run(result("r0002"), {"weights": ("s/r0002.safetensors", "ab" * 32, 4321)})
    record = store.run("r0002")
    assert record is not None
    assert (record.status, record.seconds, record.error) == ("done", 1.25, None)
    assert record.metrics == {"loss": 1 / 3, "val_accuracy": 0.75, "epochs_run": 3.0}
    assert store.history("r0002") == result("r0002").history
    assert store.artifacts("r0002") == {
        "weights": ArtifactRow("weights", "s/r0002.safetensors", "ab" * 32, 4321)
    }
    assert store.counts("s") == {"pending": 3, "running": 0, "done": 1, "diverged": 0, "failed": 0}
    started, finished, worker, pid = sql(
        store, "SELECT started, finished, worker, pid FROM runs WHERE run_id = 'r0002'"
    )[0]
    assert started <= finished and (worker, pid) == ("host:1", os.getpid())


def test_finish_run_without_digests_and_with_ragged_history(store):
    failed = RunResult(
        "r0000", "failed", history={"loss": [2.0, 1.0], "val_loss": [3.0]}, error="boom"
    )
    failed.artifacts = {"weights": "s/r0000.safetensors"}
    store.finish_run(failed)
    assert store.history("r0000") == {"loss": [2.0, 1.0], "val_loss": [3.0]}
    assert store.artifacts("r0000")["weights"] == ArtifactRow(
        "weights", "s/r0000.safetensors", None, None
    )
    assert store.run("r0000").error == "boom"  # type: ignore[union-attr]


def test_nan_and_infinity_round_trip(store):
    diverged = result("r0001", "diverged")
    diverged.metrics = {"loss": math.nan, "val_loss": math.inf, "accuracy": 0.1}
    diverged.history["loss"][-1] = math.nan
    diverged.history["val_loss"][0] = -math.inf
    store.finish_run(diverged)
    metrics = store.run("r0001").metrics  # type: ignore[union-attr]
    assert math.isnan(metrics["loss"]) and metrics["val_loss"] == math.inf
    assert metrics["accuracy"] == 0.1
    history = store.history("r0001")
    assert history["loss"][:2] == [1.0, 0.5] and math.isnan(history["loss"][2])
    assert history["val_loss"][0] == -math.inf


def test_a_finished_run_is_never_updated(store):
    store.finish_run(result("r0000", "diverged"))
    message = r"^run r0000 is already finished \(diverged\); a finished run is never updated$"
    with pytest.raises(StoreError, match=message):
        store.finish_run(result("r0000", "done", epochs=5))
    with pytest.raises(StoreError, match=message):
        store.mark_running("r0000", "w")
    with (
        pytest.raises(StoreError, match="a finished run is never updated"),  # even raw SQL
        store._transaction() as conn,
    ):
        conn.execute("UPDATE runs SET status = 'pending' WHERE run_id = 'r0000'")
    assert store.run("r0000").status == "diverged"  # type: ignore[union-attr]
    assert len(store.history("r0000")["loss"]) == 3


def test_finish_run_is_all_or_nothing(store):
    store.mark_running("r0003", "w")
    with pytest.raises(StoreError, match="Incorrect number of bindings"):
        store.finish_run(result("r0003"), {"weights": ("path", "digest")})  # type: ignore[dict-item]
    assert store.run("r0003").status == "running"  # type: ignore[union-attr]
    assert store.history("r0003") == {}
    with pytest.raises(StoreError, match=r"^run r0003: a finished status .* got 'running'$"):
        store.finish_run(result("r0003", "running"))
    with pytest.raises(StoreError, match=r"^run nope is not in :memory:$"):
        store.finish_run(result("nope"))


def test_mark_running_and_reset_interrupted(store):
    store.save_study("t", "", "{}", "h", "")
    store.add_runs([spec(8, study="t")])
    for run_id in ("r0000", "r0001", "r0002", "r0008"):
        store.mark_running(run_id, "killed:42")
    with pytest.raises(StoreError, match=r"^run r0000: expected a pending run, got 'running'$"):
        store.mark_running("r0000", "other")
    with pytest.raises(StoreError, match=r"^run r9999 is not in :memory:$"):
        store.mark_running("r9999", "w")
    store.finish_run(result("r0002"))
    assert store.reset_interrupted("s") == 2
    assert store.reset_interrupted("s") == 0
    assert store.counts("s") == {"pending": 3, "running": 0, "done": 1, "diverged": 0, "failed": 0}
    assert store.counts("t")["running"] == 1  # another study's runs are left alone
    store.mark_running("r0000", "again")  # pending again, so claimable again


def test_a_running_run_stores_each_epoch_and_finishing_replaces_them(store):
    store.record_epoch("r0001", 0, {"loss": 9.0})  # not running yet: nothing is stored
    assert store.history("r0001") == {}
    store.mark_running("r0001", "host:1")
    store.record_epoch("r0001", 0, {"loss": 2.0, "accuracy": 0.4})
    store.record_epoch("r0001", 1, {"loss": 1.5, "accuracy": 0.5})
    assert store.history("r0001") == {"loss": [2.0, 1.5], "accuracy": [0.4, 0.5]}
    store.finish_run(result("r0001"))
    assert store.history("r0001") == result("r0001").history
    store.record_epoch("r0001", 5, {"loss": 0.0})  # a finished run is never updated
    assert store.history("r0001") == result("r0001").history
    store.mark_running("r0002", "killed:1")
    store.record_epoch("r0002", 0, {"loss": 2.0})
    assert store.reset_interrupted("s") == 1
    assert store.history("r0002") == {}  # an interrupted run starts its History over


# --- several processes ---

# Worker processes import the store alone: a stub `mnistlab` package skips mnistlab/__init__
# (torch, ~1.7 s a process); RunResult comes from records (torch too), so a namespace stands in.
WORKER = r"""
import json, os, signal, sys, time, types
from pathlib import Path
package = types.ModuleType("mnistlab")
package.__path__ = [sys.argv[1]]
sys.modules["mnistlab"] = package
from mnistlab.studies.store import Store

job = json.loads(sys.argv[2])
if job["ready"]:
    Path(job["ready"]).touch()
    while not Path(job["go"]).exists():
        time.sleep(0.002)
if job["fresh"]:  # race the other workers to create and migrate a new file
    Store.open(job["fresh"]).close()
with Store.open(job["db"]) as store:
    for i in range(job["first"], job["last"]):
        run_id = f"r{i:04d}"
        store.mark_running(run_id, job["worker"])
        if i == job["die_at"]:  # SIGKILL itself inside finish_run's transaction, mid-insert
            def die(sql):
                if sql.startswith("INSERT INTO epochs"):
                    os.kill(os.getpid(), signal.SIGKILL)
            store._conn.set_trace_callback(die)
        epochs = range(job["epochs"])
        history = {k: [0.1 * e for e in epochs] for k in ("loss", "accuracy", "val_loss")}
        result = types.SimpleNamespace(
            run_id=run_id, status="done", metrics={"loss": 0.5}, history=history,
            artifacts={}, seconds=0.1, error=None, engine=None,
        )
        store.finish_run(result, {"weights": (f"s/{run_id}.safetensors", "0" * 64, 100 + i)})
"""


def start_worker(db: Path, worker: str, runs: range, epochs: int, **job: object):
    """A process that claims and finishes `runs` (indices) of study 's' in `db`."""
    job = dict(ready="", go="", fresh="", die_at=None) | job
    job |= dict(db=str(db), worker=worker, first=runs.start, last=runs.stop, epochs=epochs)
    args = [sys.executable, "-c", WORKER, SRC, json.dumps(job)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def assert_whole_runs(store: Store, epochs: int) -> dict[str, int]:
    """Every run is finished with all its rows, or unfinished with none; return the counts."""
    assert store.integrity_check() == "ok"
    epoch_rows = dict(sql(store, "SELECT run_id, count(*) FROM epochs GROUP BY run_id"))
    artifact_rows = dict(sql(store, "SELECT run_id, count(*) FROM artifacts GROUP BY run_id"))
    for record in store.runs("s"):
        if record.status == "done":
            assert (epoch_rows.get(record.run_id), artifact_rows.get(record.run_id)) == (epochs, 1)
            assert record.metrics == {"loss": 0.5} and record.seconds == 0.1
        else:
            assert record.status in ("pending", "running"), record
            assert record.run_id not in epoch_rows and record.run_id not in artifact_rows
            assert record.metrics == {} and record.seconds is None
    return store.counts("s")


def test_a_writer_killed_at_any_moment_leaves_whole_runs(tmp_path):
    db, n, epochs = tmp_path / "mnistlab.db", 1500, 40
    open_study(db, n).close()
    child = start_worker(db, "doomed", range(n), epochs)
    try:
        with Store.open(db) as watcher:
            wait_until(lambda: watcher.counts("s")["done"] >= 25, 20, "the worker's first runs")
        child.send_signal(signal.SIGKILL)  # wherever it is: between or inside transactions
        assert child.wait(10) == -signal.SIGKILL, child.stderr.read()  # type: ignore[union-attr]
    finally:
        child.kill()
        child.wait()
    with Store.open(db) as store:
        counts = assert_whole_runs(store, epochs)
        assert counts["done"] >= 25 and counts["pending"] >= 1
        assert counts["running"] <= 1  # at most the run it had just claimed
        assert store.reset_interrupted("s") == counts["running"]
        assert store.counts("s")["pending"] == n - counts["done"]


def test_a_writer_killed_inside_finish_run_leaves_the_run_unfinished(tmp_path):
    db, epochs = tmp_path / "mnistlab.db", 40
    open_study(db, 50).close()
    child = start_worker(db, "doomed", range(50), epochs, die_at=30)
    assert child.wait(20) == -signal.SIGKILL, child.stderr.read()  # type: ignore[union-attr]
    with Store.open(db) as store:
        counts = assert_whole_runs(store, epochs)
        assert (counts["done"], counts["running"], counts["pending"]) == (30, 1, 19)
        assert store.run("r0030").status == "running"  # type: ignore[union-attr]
        assert store.reset_interrupted("s") == 1


def test_concurrent_writers_all_land(tmp_path):
    db, workers, per, epochs = tmp_path / "mnistlab.db", 3, 40, 20
    open_study(db, workers * per).close()
    go, fresh = tmp_path / "go", tmp_path / "fresh" / "mnistlab.db"
    ready = [tmp_path / f"ready{k}" for k in range(workers)]
    together = dict(go=str(go), fresh=str(fresh))
    children = [
        start_worker(db, f"w{k}", range(k * per, (k + 1) * per), epochs, ready=str(r), **together)
        for k, r in enumerate(ready)
    ]
    try:
        wait_until(lambda: all(r.exists() for r in ready), 20, "the workers to start")
        go.touch()  # start together, so that their transactions contend for the file
        outcomes = [(c.wait(30), c.stderr.read()) for c in children]  # type: ignore[union-attr]
    finally:
        for c in children:
            c.kill()
            c.wait()
    assert outcomes == [(0, "")] * workers
    with Store.open(db) as store:
        assert assert_whole_runs(store, epochs)["done"] == workers * per
        assert sql(store, "SELECT worker, count(*) FROM runs GROUP BY worker ORDER BY worker") == [
            (f"w{k}", per) for k in range(workers)
        ]
        assert sql(store, "SELECT sum(bytes) FROM artifacts") == [(sum(range(100, 220)),)]
    with Store.open(fresh) as store:
        assert sql(store, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
        assert store.list_studies() == []


def test_claim_runs_skips_a_live_owner_and_reclaims_a_dead_one(tmp_path):
    db = tmp_path / "mnistlab.db"
    with open_study(db, 4) as store:
        owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            sql(
                store,
                "UPDATE runs SET status = 'running', pid = ? WHERE run_id = 'r0001'",
                owner.pid,
            )
            assert store.claim_runs("s", ["r0000", "r0001", "r0002"], "me") == {"r0000", "r0002"}
            assert store.reset_interrupted("s") == 2  # this process's own claims only
            assert store.run("r0001").status == "running"  # type: ignore[union-attr]
        finally:
            owner.kill()
            owner.wait()
        assert store.claim_runs("s", ["r0001", "r0003"], "me") == {"r0001", "r0003"}
        store.mark_running("r0001", "me:1")  # a claimed run starts in the claiming process
        store.finish_run(result("r0001"))
        assert store.claim_runs("s", ["r0001"], "me") == set()  # finished: never claimed again
