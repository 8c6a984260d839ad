"""The results store: studies, runs, per-epoch histories and artifacts in one SQLite file.

One `Store` wraps one stdlib `sqlite3` connection. The file is in WAL mode with a busy
timeout, so several processes (a pool's workers, two `mnistlab run`s) can write to it at
once; every public write is one `BEGIN IMMEDIATE` transaction, so a killed process leaves
each run either fully finished or not finished at all. The schema version lives in
`PRAGMA user_version`; `MIGRATIONS[i]` takes a file from version i to i + 1.

JSON columns are written with `json.dumps(..., sort_keys=True)`, which writes NaN and
Infinity as bare words (not strict JSON): Python reads them back, so a diverged run's NaN
loss round-trips, but SQLite's own `json_*` functions reject such rows.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistlab.errors import MnistlabError
from mnistlab.status import FINISHED, RunStatus

if TYPE_CHECKING:  # records imports torch (1.7 s); the store needs them only to build RunRecords
    from mnistlab.studies.records import RunRecord, RunResult, RunSpec

STATUSES: tuple[RunStatus, ...] = tuple(RunStatus)
_WAL_RETRY_SECONDS = 0.05
CLAIMED = "claimed by "  # the worker of a run `claim_runs` holds, until `mark_running`
_BUSY_TIMEOUT_MS = 30_000


class StoreError(MnistlabError):
    """The results store cannot be opened, is too new, or was asked for a forbidden change."""


# --- schema ---

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # version 1: the initial schema
    (
        """CREATE TABLE studies (
            name TEXT PRIMARY KEY,
            description TEXT NOT NULL DEFAULT '',
            spec TEXT NOT NULL,            -- the validated study spec, JSON
            spec_hash TEXT NOT NULL,       -- identity of the study file's content
            source TEXT NOT NULL DEFAULT '',  -- the study file's text, as read
            created TEXT NOT NULL,         -- ISO 8601, UTC
            updated TEXT NOT NULL
        )""",
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            study TEXT NOT NULL REFERENCES studies(name) ON DELETE CASCADE,
            grp TEXT NOT NULL,             -- RunSpec.group ("group" is an SQL keyword)
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'running', 'done', 'diverged', 'failed')),
            config TEXT NOT NULL,          -- the resolved RunConfig, JSON
            seed INTEGER NOT NULL,
            repetition INTEGER NOT NULL,
            labels TEXT NOT NULL,          -- JSON
            variant TEXT,
            parent TEXT,                   -- continue mode: the run this one starts from
            role TEXT NOT NULL,
            ord INTEGER NOT NULL,          -- RunSpec.order
            metrics TEXT,                  -- final metrics, JSON; NULL until finished
            seconds REAL,
            error TEXT,
            added TEXT NOT NULL,
            started TEXT,
            finished TEXT,
            worker TEXT,
            pid INTEGER
        )""",
        "CREATE INDEX runs_by_order ON runs(study, ord)",
        "CREATE INDEX runs_by_status ON runs(study, status)",
        # one row per epoch, every metric of that epoch in one JSON object (REAL would turn NaN
        # into NULL); the primary key makes a run's history one range scan
        """CREATE TABLE epochs (
            run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
            epoch INTEGER NOT NULL,        -- 0-based, as History's lists and best_epoch
            metrics TEXT NOT NULL,
            PRIMARY KEY (run_id, epoch)
        ) WITHOUT ROWID""",
        """CREATE TABLE artifacts (
            run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
            kind TEXT NOT NULL,            -- e.g. "weights"
            path TEXT NOT NULL,            -- relative to the results folder
            sha256 TEXT,
            bytes INTEGER,
            PRIMARY KEY (run_id, kind)
        ) WITHOUT ROWID""",
        # the house rule "a finished run is never updated", enforced for every writer
        """CREATE TRIGGER finished_runs_are_final BEFORE UPDATE ON runs
            WHEN OLD.status IN ('done', 'diverged', 'failed')
            BEGIN SELECT RAISE(ABORT, 'a finished run is never updated'); END""",
    ),
    # version 2: the engine that trained each run, and why (`training.engines.choose_engine`)
    ("ALTER TABLE runs ADD COLUMN engine TEXT",),
)
SCHEMA_VERSION = len(MIGRATIONS)

_RUN_COLUMNS = (
    "study, run_id, grp, status, config, seed, repetition, labels, variant, parent, role, ord,"
    " metrics, seconds, error, engine"
)


# --- rows ---


@dataclass(frozen=True)
class StudyRow:
    """A study as stored: its spec (JSON text), the hash that identifies it, its source."""

    name: str
    description: str
    spec_json: str
    spec_hash: str
    source: str
    created: str
    updated: str

    @property
    def spec(self) -> dict[str, Any]:
        """The stored spec, parsed."""
        return json.loads(self.spec_json)


@dataclass(frozen=True)
class StudySummary:
    """One line of a study listing: what it is and how many runs it has in each status."""

    name: str
    description: str
    created: str
    updated: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Number of runs, whatever their status."""
        return sum(self.counts.values())


@dataclass(frozen=True)
class ArtifactRow:
    """A file a run wrote: its path relative to the results folder, digest and size."""

    kind: str
    path: str
    sha256: str | None
    bytes: int | None


@dataclass(frozen=True)
class RunTimes:
    """When a run was added, started and finished (ISO 8601, UTC; None until then), and
    the worker that ran it."""

    added: str
    started: str | None
    finished: str | None
    worker: str | None


# --- the store ---


class Store:
    """The SQLite results store of one results folder; open it with `Store.open`."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn = conn
        self.path = path
        parent = Path(path).parent
        self._where = path if path == ":memory:" else f"{parent}{os.sep}"

    # --- opening ---

    @classmethod
    def open(cls, path: str | Path) -> Store:
        """Open (creating and migrating when needed) the store at `path`.

        Parameters
        ----------
        path : str or Path
            The database file, e.g. `results/mnistlab.db` (its folder is created), or
            ":memory:" for a private in-memory store.

        Returns
        -------
        Store
            Open, at schema version `SCHEMA_VERSION`.

        Raises
        ------
        StoreError
            The folder cannot be created or written, the file is not a mnistlab results
            store, or its schema is newer than this mnistlab knows.
        """
        name = str(path)
        if name != ":memory:":
            folder = Path(name).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{name}: cannot create folder {folder}: {exc.strerror}") from None
            if not os.access(folder, os.W_OK):
                raise StoreError(f"{name}: folder {folder} is not writable")
        try:
            conn = sqlite3.connect(name, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{name}: cannot open the results store: {exc}") from None
        store = cls(conn, name)
        try:
            store._configure()
            store._migrate()
        except BaseException:
            conn.close()
            raise
        return store

    @classmethod
    def open_readonly(cls, path: str | Path) -> Store:
        """Open an existing store for reading only (SQLite `mode=ro`): no folder is made, the
        file is never written, and a study writing to it meanwhile (WAL) is never blocked.

        A store of an older schema is read from a migrated copy in memory (a snapshot: the
        file stays as it is until a `run` migrates it).

        Raises
        ------
        StoreError
            The file is missing, is not a mnistlab results store, or its schema is newer
            than `SCHEMA_VERSION`.
        """
        name = str(path)
        if not Path(name).is_file():
            raise StoreError(f"{name}: no results store here")
        uri = f"{Path(name).resolve().as_uri()}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=_BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as exc:
            raise StoreError(f"{name}: cannot open the results store: {exc}") from None
        store = cls(conn, name)
        conn.row_factory = sqlite3.Row
        try:
            version = store._user_version()
            if version == 0:
                raise StoreError(f"{name}: not a mnistlab results store")
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{name}: results store has schema version {version}, this mnistlab reads"
                    f" up to {SCHEMA_VERSION}; upgrade mnistlab"
                )
            if version < SCHEMA_VERSION:
                return store._migrated_copy()
        except BaseException:
            conn.close()
            raise
        return store

    def _migrated_copy(self) -> Store:
        """This (read-only) store copied into memory and migrated there; this one closes."""
        memory = sqlite3.connect(":memory:")
        with self._errors():
            self._conn.backup(memory)
        self._conn.close()
        copy = type(self)(memory, self.path)
        memory.row_factory = sqlite3.Row
        copy._migrate()
        return copy

    def _configure(self) -> None:
        """Pragmas every connection needs: WAL, NORMAL sync, busy timeout, foreign keys."""
        conn = self._conn
        conn.row_factory = sqlite3.Row
        with self._errors():
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            self._enable_wal()
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL: a killed process loses no commit
            conn.execute("PRAGMA foreign_keys = ON")

    def _enable_wal(self) -> None:
        """Switch to WAL; a new file raced by several processes may be locked for a moment.

        The journal mode persists in the file, so this only writes the first time; SQLite
        does not call the busy handler for the switch, hence the short retry loop.
        """
        deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                mode = self._conn.execute("PRAGMA journal_mode").fetchone()[0]
                if mode in ("wal", "memory"):  # ":memory:" keeps "memory": fine
                    return
                self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(_WAL_RETRY_SECONDS)

    def _migrate(self) -> None:
        """Bring the file to `SCHEMA_VERSION`, one transaction per migration."""
        version = self._user_version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: results store has schema version {version}, this mnistlab knows"
                f" up to {SCHEMA_VERSION}; upgrade mnistlab"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self._transaction() as conn:
                current = self._user_version()  # under the write lock, at last
                if current >= target:
                    continue  # another process migrated while we waited for the lock
                if (
                    current == 0
                    and conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
                ):
                    raise StoreError(
                        f"{self.path}: a SQLite database, but not a mnistlab results store"
                    )
                for statement in MIGRATIONS[target - 1]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {target}")

    def _user_version(self) -> int:
        with self._errors():
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        """Close the connection (idempotent); WAL is checkpointed by the last one to close."""
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.path!r})"

    # --- plumbing ---

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn SQLite's errors into one-line `StoreError`s that name the file."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            message = str(exc)
            if message == "file is not a database":
                message = "not a mnistlab results store (file is not a database)"
            raise StoreError(f"{self.path}: {message}") from None
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE takes the write lock first, so writers queue."""
        with self._errors():
            self._conn.execute("BEGIN IMMEDIATE")
            with self._conn:  # commits, or rolls back when the body raises
                yield self._conn

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._errors():
            return self._conn.execute(sql, params).fetchall()

    # --- studies ---

    def save_study(
        self,
        name: str,
        description: str,
        spec_json: str,
        spec_hash: str,
        source: str,
        *,
        replace: bool = False,
    ) -> None:
        """Record a study, or check that the stored one was made from the same file.

        Parameters
        ----------
        name : str
            The study's name (its key).
        description : str
            One line for listings.
        spec_json : str
            The validated spec, as JSON text.
        spec_hash : str
            Identity of what the study runs; a stored study with another hash is a
            conflict. With the same hash, the stored spec, text and description are
            refreshed (what the study reports may change without rerunning it).
        source : str
            The study file's text, kept for the record.
        replace : bool
            Start over (`--fresh`): delete the study's runs, epochs and artifact rows and
            store this spec, whatever was there.

        Raises
        ------
        StoreError
            The name exists with another `spec_hash` and `replace` is False.
        """
        now = _now()
        with self._transaction() as conn:
            row = conn.execute("SELECT spec_hash FROM studies WHERE name = ?", (name,)).fetchone()
            if row is not None and not replace:
                if row["spec_hash"] != spec_hash:
                    raise StoreError(
                        f"study '{name}' in {self._where} was made from a different file;"
                        " use --fresh or rename it"
                    )
                # same runs: keep them, refresh the text, the analyses and the table
                conn.execute(
                    "UPDATE studies SET description = ?, spec = ?, source = ?, updated = ?"
                    " WHERE name = ?",
                    (description, spec_json, source, now, name),
                )
                return
            conn.execute("DELETE FROM studies WHERE name = ?", (name,))  # cascades to runs
            conn.execute(
                "INSERT INTO studies (name, description, spec, spec_hash, source, created,"
                " updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, description, spec_json, spec_hash, source, now, now),
            )

    def get_study(self, name: str) -> StudyRow | None:
        """The stored study called `name` (its spec JSON, hash and source), or None."""
        rows = self._read(
            "SELECT name, description, spec, spec_hash, source, created, updated FROM studies"
            " WHERE name = ?",
            (name,),
        )
        if not rows:
            return None
        r = rows[0]
        return StudyRow(
            r["name"],
            r["description"],
            r["spec"],
            r["spec_hash"],
            r["source"],
            r["created"],
            r["updated"],
        )

    def list_studies(self) -> list[StudySummary]:
        """Every study, by name, with its run counts per status.

        Returns
        -------
        list of StudySummary
            `counts` has every status in `STATUSES`, zeros included.
        """
        rows = self._read(
            "SELECT s.name, s.description, s.created, s.updated, r.status, count(r.run_id) AS n"
            " FROM studies s LEFT JOIN runs r ON r.study = s.name"
            " GROUP BY s.name, r.status ORDER BY s.name"
        )
        summaries: dict[str, StudySummary] = {}
        for r in rows:
            if r["name"] not in summaries:
                counts = dict.fromkeys(STATUSES, 0)
                summaries[r["name"]] = StudySummary(
                    r["name"], r["description"], r["created"], r["updated"], counts
                )
            if r["status"] is not None:
                summaries[r["name"]].counts[r["status"]] = r["n"]
        return list(summaries.values())

    def delete_study(self, name: str) -> bool:
        """Delete a study with its runs, epochs and artifact rows (files are left alone);
        return whether there was such a study."""
        with self._transaction() as conn:
            return conn.execute("DELETE FROM studies WHERE name = ?", (name,)).rowcount > 0

    # --- runs: writing ---

    def add_runs(self, runs: Sequence[RunSpec]) -> int:
        """Insert as pending the runs whose run_id is not stored yet; leave the others alone.

        Parameters
        ----------
        runs : sequence of RunSpec
            Runs of studies already saved with `save_study`.

        Returns
        -------
        int
            How many runs were new.

        Raises
        ------
        StoreError
            A run's study is not stored, or its run_id is stored under another study.
        """
        now = _now()
        with self._transaction() as conn:
            known = {r["name"] for r in conn.execute("SELECT name FROM studies")}
            missing = sorted({run.study for run in runs} - known)
            if missing:
                raise StoreError(f"study '{missing[0]}' is not in {self._where}; save it first")
            added = 0
            for run in runs:
                row = {f.name: getattr(run, f.name) for f in fields(run)} | {
                    "config": _dumps(run.config.model_dump(mode="json")),
                    "labels": _dumps(run.labels),
                    "added": now,
                }
                cursor = conn.execute(
                    "INSERT INTO runs (run_id, study, grp, config, seed, repetition, labels,"
                    " variant, parent, role, ord, added) VALUES (:run_id, :study, :group,"
                    " :config, :seed, :repetition, :labels, :variant, :parent, :role, :order,"
                    " :added) ON CONFLICT (run_id) DO NOTHING",
                    row,
                )
                if cursor.rowcount:
                    added += 1
                    continue
                owner = conn.execute(
                    "SELECT study FROM runs WHERE run_id = ?", (run.run_id,)
                ).fetchone()["study"]
                if owner != run.study:
                    raise StoreError(
                        f"run {run.run_id} of study '{run.study}' is already stored under"
                        f" study '{owner}' in {self._where}"
                    )
            return added

    def mark_running(self, run_id: str, worker: str) -> None:
        """Claim a pending run for `worker` (e.g. "host:pid"), recording this process's pid.

        A run this process holds by `claim_runs` (not started yet) is taken over as well.

        Parameters
        ----------
        run_id : str
            A pending run.
        worker : str
            Who runs it, for the record.

        Raises
        ------
        StoreError
            The run is not stored, or is not pending (another worker holds it, or it finished).
        """
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = 'running', started = ?, worker = ?, pid = ?"
                " WHERE run_id = ? AND (status = 'pending' OR (status = 'running' AND pid = ?"
                " AND worker LIKE ? || '%'))",
                (_now(), worker, os.getpid(), run_id, os.getpid(), CLAIMED),
            )
            if cursor.rowcount == 0:
                raise self._not_writable(conn, run_id, "pending")

    def reset_interrupted(self, study: str) -> int:
        """Put the study's `running` rows whose owner is gone back to `pending`.

        A row's owner is the process (pid) that claimed it: one no longer alive (killed), or
        this very process (an earlier call interrupted), has left it; a live other process
        is still running it, and its rows are left alone.

        Parameters
        ----------
        study : str
            The study's name.

        Returns
        -------
        int
            How many runs went back to pending.
        """
        with self._transaction() as conn:
            return self._reclaim(conn, study)

    def _reclaim(self, conn: sqlite3.Connection, study: str) -> int:
        """`reset_interrupted` inside an open transaction."""
        rows = conn.execute(
            "SELECT run_id, pid FROM runs WHERE study = ? AND status = 'running'", (study,)
        ).fetchall()
        gone = [(r["run_id"],) for r in rows if not _owner_alive(r["pid"])]
        conn.executemany(  # the epochs they stored live are redone when they run again
            "DELETE FROM epochs WHERE run_id = ?", gone
        )
        conn.executemany(
            "UPDATE runs SET status = 'pending', started = NULL, worker = NULL, pid = NULL"
            " WHERE run_id = ? AND status = 'running'",
            gone,
        )
        return len(gone)

    def claim_runs(self, study: str, run_ids: Sequence[str], worker: str) -> set[str]:
        """Atomically claim for this process those of `run_ids` that are pending.

        Runs left by a dead owner are reclaimed first; runs another live process holds,
        and finished ones, are not claimed. Two processes running one study thus split
        its runs, each run claimed once (the claim is `running` with this process's pid).

        Returns
        -------
        set of str
            The run_ids this process now holds.
        """
        wanted = list(run_ids)
        with self._transaction() as conn:
            self._reclaim(conn, study)
            conn.executemany(
                "UPDATE runs SET status = 'running', started = ?, worker = ?, pid = ?"
                " WHERE run_id = ? AND status = 'pending'",
                [(_now(), CLAIMED + worker, os.getpid(), run_id) for run_id in wanted],
            )
            held = conn.execute(
                "SELECT run_id FROM runs WHERE study = ? AND status = 'running' AND pid = ?",
                (study, os.getpid()),
            ).fetchall()
        return {r["run_id"] for r in held} & set(wanted)

    def record_epoch(self, run_id: str, epoch: int, metrics: Mapping[str, float]) -> None:
        """Store one epoch of a running run as it ends, so readers (`mnistlab ui`) follow it
        live; `finish_run` later replaces these rows with the run's whole History."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO epochs (run_id, epoch, metrics)"
                " SELECT run_id, ?, ? FROM runs WHERE run_id = ? AND status = 'running'",
                (epoch, _dumps(dict(metrics)), run_id),
            )

    def finish_run(
        self,
        result: RunResult,
        artifacts: Mapping[str, tuple[str, str, int]] | None = None,
    ) -> None:
        """Store a run's outcome in one transaction: status, metrics, history, artifacts.

        Parameters
        ----------
        result : RunResult
            A finished status (done, diverged, failed), final metrics (NaN allowed), the
            History dict (key -> one value per epoch; epoch i is list position i), seconds
            and error.
        artifacts : mapping of str to (str, str, int), optional
            kind -> (path relative to the results folder, sha256, bytes). When None, the
            result's own `artifacts` paths are stored as given, without digest and size.

        Raises
        ------
        StoreError
            The status is not a finished one, the run is not stored, or it is finished
            already (a finished run is never updated).
        """
        if result.status not in FINISHED:
            raise StoreError(
                f"run {result.run_id}: a finished status ({', '.join(sorted(FINISHED))}) is needed,"
                f" got '{result.status}'"
            )
        files: dict[str, tuple[str, str | None, int | None]] = dict(artifacts or {})
        if artifacts is None:
            files = {kind: (path, None, None) for kind, path in result.artifacts.items()}
        epochs = _epoch_rows(result.run_id, result.history)
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = ?, metrics = ?, seconds = ?, error = ?, engine = ?,"
                " finished = ? WHERE run_id = ? AND status IN ('pending', 'running')",
                (
                    result.status,
                    _dumps(result.metrics),
                    result.seconds,
                    result.error,
                    result.engine,
                    _now(),
                    result.run_id,
                ),
            )
            if cursor.rowcount == 0:
                raise self._not_writable(conn, result.run_id, "pending or running")
            conn.execute("DELETE FROM epochs WHERE run_id = ?", (result.run_id,))  # live rows
            conn.executemany("INSERT INTO epochs (run_id, epoch, metrics) VALUES (?, ?, ?)", epochs)
            conn.executemany(
                "INSERT INTO artifacts (run_id, kind, path, sha256, bytes) VALUES (?, ?, ?, ?, ?)",
                [(result.run_id, kind, *row) for kind, row in sorted(files.items())],
            )

    def _not_writable(self, conn: sqlite3.Connection, run_id: str, wanted: str) -> StoreError:
        """Why an update touched no row: the run is missing, or not in the wanted state."""
        row = conn.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return StoreError(f"run {run_id} is not in {self._where}")
        if row["status"] in FINISHED:
            return StoreError(
                f"run {run_id} is already finished ({row['status']}); a finished run is never"
                " updated"
            )
        return StoreError(f"run {run_id}: expected a {wanted} run, got '{row['status']}'")

    # --- runs: reading ---

    def runs(self, study: str, statuses: Iterable[str] | None = None) -> list[RunRecord]:
        """The study's runs in expansion order, optionally only those in `statuses`.

        Parameters
        ----------
        study : str
            The study's name.
        statuses : iterable of str, optional
            Keep only these statuses (a single status string works too).

        Returns
        -------
        list of RunRecord
            Ordered by `order`, then run_id; `metrics` is {} and `seconds` None until a run
            finishes.
        """
        sql = f"SELECT {_RUN_COLUMNS} FROM runs WHERE study = ?"
        params: list[Any] = [study]
        if statuses is not None:
            wanted = [statuses] if isinstance(statuses, str) else list(statuses)
            for status in wanted:
                if status not in STATUSES:
                    raise StoreError(
                        f"unknown run status '{status}'; expected one of {', '.join(STATUSES)}"
                    )
            sql += f" AND status IN ({', '.join('?' * len(wanted))})"
            params += wanted
        return [_record(r) for r in self._read(sql + " ORDER BY ord, run_id", params)]

    def run(self, run_id: str) -> RunRecord | None:
        """The run `run_id` as a RunRecord, or None when it is not stored."""
        rows = self._read(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        return _record(rows[0]) if rows else None

    def history(self, run_id: str) -> dict[str, list[float]]:
        """A run's History, metric key -> one value per epoch, as the run reported it (NaN
        included): a running run's epochs so far, {} for a pending or unknown run."""
        history: dict[str, list[float]] = {}
        rows = self._read("SELECT metrics FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,))
        for row in rows:
            for key, value in json.loads(row["metrics"]).items():
                history.setdefault(key, []).append(value)
        return history

    def histories(self, study: str) -> dict[str, dict[str, list[float]]]:
        """Every run's History in one read, by run id (runs without epochs are absent); each
        as `history` gives it."""
        histories: dict[str, dict[str, list[float]]] = {}
        rows = self._read(
            "SELECT e.run_id, e.metrics FROM epochs e JOIN runs r ON r.run_id = e.run_id"
            " WHERE r.study = ? ORDER BY r.ord, e.run_id, e.epoch",
            (study,),
        )
        for row in rows:
            history = histories.setdefault(row["run_id"], {})
            for key, value in json.loads(row["metrics"]).items():
                history.setdefault(key, []).append(value)
        return histories

    def times(self, study: str) -> dict[str, RunTimes]:
        """When each of the study's runs was added, started and finished (ISO 8601, UTC,
        None until it happens) and by which worker, by run id."""
        rows = self._read(
            "SELECT run_id, added, started, finished, worker FROM runs WHERE study = ?"
            " ORDER BY ord, run_id",
            (study,),
        )
        return {
            r["run_id"]: RunTimes(r["added"], r["started"], r["finished"], r["worker"])
            for r in rows
        }

    def last_activity(self) -> dict[str, str]:
        """Per study, the latest moment one of its runs was added, started or finished."""
        rows = self._read(
            "SELECT study, max(coalesce(finished, started, added)) AS at FROM runs GROUP BY study"
        )
        return {r["study"]: r["at"] for r in rows}

    def artifacts(self, run_id: str) -> dict[str, ArtifactRow]:
        """The files a run wrote, by kind (paths relative to the results folder)."""
        rows = self._read(
            "SELECT kind, path, sha256, bytes FROM artifacts WHERE run_id = ? ORDER BY kind",
            (run_id,),
        )
        return {r["kind"]: ArtifactRow(r["kind"], r["path"], r["sha256"], r["bytes"]) for r in rows}

    def counts(self, study: str) -> dict[str, int]:
        """How many of the study's runs are in each status: every status in `STATUSES`, in
        that order, zeros included."""
        counts = dict.fromkeys(STATUSES, 0)
        rows = self._read(
            "SELECT status, count(*) AS n FROM runs WHERE study = ? GROUP BY status", (study,)
        )
        counts.update({r["status"]: r["n"] for r in rows})
        return counts

    def integrity_check(self) -> str:
        """SQLite's integrity check plus a foreign-key check.

        Returns
        -------
        str
            "ok" when the file is sound, else the problems found, joined by "; ".
        """
        problems = [r[0] for r in self._read("PRAGMA integrity_check")]
        if problems == ["ok"]:
            problems = [
                f"{r[0]} row {r[1]}: dangling reference to {r[2]}"
                for r in self._read("PRAGMA foreign_key_check")
            ]
        return "; ".join(problems) or "ok"


# --- helpers ---


def _owner_alive(pid: int | None) -> bool:
    """Whether another process `pid` still runs on this machine (SQLite's WAL is local)."""
    if pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _dumps(value: Any) -> str:
    """JSON with sorted keys; NaN and Infinity are written as Python's json writes them."""
    return json.dumps(value, sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    """Numpy and torch scalars become Python numbers, paths strings; anything else fails."""
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _epoch_rows(run_id: str, history: Mapping[str, Sequence[float]]) -> list[tuple[str, int, str]]:
    """One (run_id, epoch, metrics JSON) row per epoch; a shorter list stops early."""
    epochs = max((len(values) for values in history.values()), default=0)
    return [
        (run_id, epoch, _dumps({k: v[epoch] for k, v in history.items() if epoch < len(v)}))
        for epoch in range(epochs)
    ]


def _record(row: sqlite3.Row) -> RunRecord:
    """A `runs` row as a RunRecord."""
    from mnistlab.studies.records import RunRecord  # here, not at the top: see TYPE_CHECKING

    return RunRecord(
        study=row["study"],
        run_id=row["run_id"],
        group=row["grp"],
        status=RunStatus(row["status"]),
        config=json.loads(row["config"]),
        seed=row["seed"],
        repetition=row["repetition"],
        labels=json.loads(row["labels"]),
        variant=row["variant"],
        parent=row["parent"],
        role=row["role"],
        order=row["ord"],
        metrics=json.loads(row["metrics"]) if row["metrics"] is not None else {},
        seconds=row["seconds"],
        error=row["error"],
        engine=row["engine"],
    )
