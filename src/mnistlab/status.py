"""A run's status, one vocabulary for the store, the records, the tables, the API and the CLI.

On the lowest floor (beside errors.py), so `api.py` and `studies/` both import it downward.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """Where a run stands: pending -> running -> done, diverged or failed (then final)."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    DIVERGED = "diverged"
    FAILED = "failed"


FINISHED = frozenset({RunStatus.DONE, RunStatus.DIVERGED, RunStatus.FAILED})
"""Final statuses: a finished run is never updated, and a resumed study skips it."""
WITH_RESULTS = frozenset({RunStatus.DONE, RunStatus.DIVERGED})
"""Finished with numbers: final metrics, a History and (for networks) weights."""
PROBLEMS = frozenset({RunStatus.DIVERGED, RunStatus.FAILED})
"""Finished badly: `show` lists these runs with their epoch or error."""
