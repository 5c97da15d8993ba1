"""The jobs agent's table: one row per job, every state change a committed transaction.

Used from the coordinator's thread only (the connection is per thread). Each
method that changes state commits before it returns, so the caller may act
on (or acknowledge) the change afterwards: that ordering is the agent's
durability guarantee. A failed commit raises
:class:`~vibe_actors.store._database.StoreError` and nothing of it is kept.

A job's state changes are :class:`Transition` values: :meth:`JobStore.record`
commits a sequence of them in one transaction, and :func:`after` computes
the same change on a :class:`JobRow` in memory (what the coordinator shows
while a full disk keeps it from recording them, see
:mod:`~vibe_actors.agents.jobs._health`).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Sequence
from typing import Any, NamedTuple

import msgspec

from vibe_actors import Caller
from vibe_actors.agents.jobs.protocol import JobState
from vibe_actors.store import Schema, Store

__all__ = [
    "FINISHED",
    "STATES",
    "JobRow",
    "JobState",
    "JobStore",
    "NewJob",
    "Transition",
    "after",
    "encode_caller",
]

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = frozenset({"succeeded", "failed", "cancelled"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    args BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued','running','succeeded','failed','cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL,
    timeout REAL NOT NULL,
    result BLOB,
    error TEXT,
    submitted_at REAL NOT NULL,
    finished_at REAL,
    caller TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, seq);
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
"""

#: The same table on PostgreSQL (migration 1), with the lease of a running job: which
#: coordinator runs it (``owner``) and until when it vouches for it (``lease_until``), and
#: when a job waiting out a retry backoff may run again (``run_after``).
POSTGRES_V1 = """
CREATE TABLE jobs (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    args BYTEA NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued','running','succeeded','failed','cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL,
    timeout DOUBLE PRECISION NOT NULL,
    result BYTEA,
    error TEXT,
    submitted_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    caller TEXT,
    traceparent TEXT,
    owner TEXT,
    lease_until DOUBLE PRECISION,
    run_after DOUBLE PRECISION
);
CREATE INDEX jobs_state ON jobs (state, seq);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_leases ON jobs (lease_until) WHERE state = 'running';
"""

_COLUMNS = (
    "id, kind, args, state, attempts, retries, timeout, result, error, submitted_at, finished_at,"
    " caller, traceparent"
)
#: A job stored before callers were recorded runs its asks as an anonymous caller's: it may
#: have come from any request, so it gets no more authority than the least one.
_LEGACY_CALLER = ("jobs", "caller", "TEXT DEFAULT '{\"principal\":null}'")
#: Version 2: the W3C traceparent of the submission (tracing on), for its attempts' spans.
_TRACEPARENT = "ALTER TABLE jobs ADD COLUMN traceparent TEXT;"
_encode_caller = msgspec.json.Encoder().encode
_decode_caller = msgspec.json.Decoder(Caller).decode


def encode_caller(caller: Caller | None) -> str | None:
    """A caller as stored (None: trusted code)."""
    return None if caller is None else _encode_caller(caller).decode()


class NewJob(NamedTuple):
    """A job to insert (``args`` already JSON-encoded)."""

    id: str
    kind: str
    args: bytes
    retries: int
    timeout: float
    #: Who submitted it (encoded with :func:`encode_caller`; None: trusted code).
    caller: str | None = None
    #: The trace it was submitted in (W3C traceparent; None: tracing off, or no trace).
    traceparent: str | None = None


class JobRow(NamedTuple):
    """One job as stored; ``args`` and ``result`` decoded from JSON."""

    id: str
    kind: str
    args: dict[str, Any]
    state: JobState
    attempts: int
    retries: int
    timeout: float
    result: Any
    error: str | None
    submitted_at: float
    finished_at: float | None
    #: On whose behalf its asks are sent (None: trusted code).
    caller: Caller | None = None
    #: The trace it was submitted in: each attempt is a span of it (vibe_actors._tracing).
    traceparent: str | None = None


class Transition(NamedTuple):
    """One state change of job ``job_id``, to ``state``; each applies only from the states
    it names, else it changes nothing:

    * ``running``: from queued, one more attempt (the attempt starts);
    * ``queued``: from running, the failed attempt's ``error`` kept (a retry follows);
    * ``succeeded``, ``failed``, ``cancelled``: from queued or running, with ``result``
      (JSON), ``error`` and ``at`` (the time it finished).
    """

    job_id: str
    state: JobState
    result: bytes | None = None
    error: str | None = None
    at: float | None = None


_START = (
    "UPDATE jobs SET state = 'running', attempts = attempts + 1 WHERE id = ? AND state = 'queued'"
)
_REQUEUE = "UPDATE jobs SET state = 'queued', error = ? WHERE id = ? AND state = 'running'"
_FINISH = (
    "UPDATE jobs SET state = ?, result = ?, error = ?, finished_at = ?"
    " WHERE id = ? AND state IN ('queued', 'running')"
)


def after(row: JobRow, change: Transition) -> JobRow:
    """Job ``row`` once ``change`` is applied (what :meth:`JobStore.record` makes of it)."""
    if change.state == "running":
        if row.state != "queued":
            return row
        return row._replace(state="running", attempts=row.attempts + 1)
    if change.state == "queued":
        return row._replace(state="queued", error=change.error) if row.state == "running" else row
    if row.state in FINISHED:
        return row
    result = None if change.result is None else msgspec.json.decode(change.result)
    return row._replace(
        state=change.state, result=result, error=change.error, finished_at=change.at
    )


def _row(values: tuple[Any, ...]) -> JobRow:
    (job_id, kind, args, state, attempts, retries, timeout, result, error, sub, fin, who, tp) = (
        values
    )
    return JobRow(
        job_id,
        kind,
        msgspec.json.decode(args),
        state,
        attempts,
        retries,
        timeout,
        None if result is None else msgspec.json.decode(result),
        error,
        sub,
        fin,
        None if who is None else _decode_caller(who),
        tp,
    )


# -- a shared store (several coordinators, one per replica): leases ----------------------

#: Take the oldest queued jobs that may run now: a lease each, one more attempt. Those
#: another coordinator is taking at the same moment are skipped, not waited for.
_CLAIM = (
    "UPDATE jobs SET state = 'running', attempts = attempts + 1, owner = ?, lease_until = ?,"
    " run_after = NULL WHERE id IN (SELECT id FROM jobs WHERE state = 'queued'"
    " AND (run_after IS NULL OR run_after <= ?) ORDER BY seq LIMIT ? FOR UPDATE SKIP LOCKED)"
    " RETURNING id"
)
_RENEW = "UPDATE jobs SET lease_until = ? WHERE owner = ? AND state = 'running'"
_EXPIRED_FAIL = (
    "UPDATE jobs SET state = 'failed', finished_at = ?, owner = NULL,"
    " error = 'interrupted: its coordinator stopped renewing the lease during the last attempt'"
    " WHERE state = 'running' AND lease_until < ? AND attempts > retries"
)
_EXPIRED_REQUEUE = (
    "UPDATE jobs SET state = 'queued', owner = NULL,"
    " error = 'interrupted: its coordinator stopped renewing the lease during the attempt'"
    " WHERE state = 'running' AND lease_until < ?"
)
#: A change of a running job by the coordinator that holds it: none once its lease moved on.
_SHARED_REQUEUE = (
    "UPDATE jobs SET state = 'queued', error = ?, owner = NULL, run_after = ?"
    " WHERE id = ? AND state = 'running' AND owner = ?"
)
_SHARED_FINISH = (
    "UPDATE jobs SET state = ?, result = ?, error = ?, finished_at = ?, owner = NULL"
    " WHERE id = ? AND (state = 'queued' OR (state = 'running' AND owner = ?))"
)


class JobStore(Store):
    """The jobs table of one coordinator (see the module docstring).

    On a shared store (PostgreSQL, a coordinator per replica) ``owner`` names
    this coordinator's incarnation: a job starts only by a claim that takes
    its lease, and an attempt's outcome is recorded only while this
    coordinator still holds the job (a cancel applies whoever holds it).
    """

    schema = Schema(
        _SCHEMA,
        upgrades=(_TRACEPARENT,),
        legacy_columns=(_LEGACY_CALLER,),
        postgres=(POSTGRES_V1,),
    )
    owner = ""

    # -- reads -----------------------------------------------------------------------

    def get(self, job_id: str) -> JobRow | None:
        # _COLUMNS is a constant; every value is a bound parameter.
        sql = f"SELECT {_COLUMNS} FROM jobs WHERE id = ?"  # nosec B608
        found = self._db.execute(sql, (job_id,)).fetchone()
        return None if found is None else _row(found)

    def count(self, state: str) -> int:
        """How many jobs are in ``state``."""
        return int(
            self._db.execute("SELECT count(*) FROM jobs WHERE state = ?", (state,)).fetchone()[0]
        )

    def ids(self, state: str) -> list[str]:
        """Ids of the jobs in ``state``, oldest submission first."""
        rows = self._db.execute("SELECT id FROM jobs WHERE state = ? ORDER BY seq", (state,))
        return [job_id for (job_id,) in rows]

    def listing(self, state: str | None, limit: int, also: Collection[str] = ()) -> list[JobRow]:
        """The ``limit`` most recently submitted jobs (in ``state`` if given, or with an id
        in ``also``), newest first."""
        # _COLUMNS is a constant; every value is a bound parameter.
        if state is None:
            sql = f"SELECT {_COLUMNS} FROM jobs ORDER BY seq DESC LIMIT ?"  # nosec B608
            rows = self._db.execute(sql, (limit,))
        elif also and self._db.dialect == "postgresql":
            sql = (
                f"SELECT {_COLUMNS} FROM jobs WHERE state = ?"  # nosec B608
                " OR id = ANY(?) ORDER BY seq DESC LIMIT ?"
            )
            rows = self._db.execute(sql, (state, list(also), limit))
        elif also:
            sql = (
                f"SELECT {_COLUMNS} FROM jobs WHERE state = ?"  # nosec B608
                " OR id IN (SELECT value FROM json_each(?)) ORDER BY seq DESC LIMIT ?"
            )
            rows = self._db.execute(sql, (state, msgspec.json.encode(list(also)).decode(), limit))
        else:
            sql = f"SELECT {_COLUMNS} FROM jobs WHERE state = ? ORDER BY seq DESC LIMIT ?"  # nosec B608
            rows = self._db.execute(sql, (state, limit))
        return [_row(values) for values in rows]

    # -- writes: each one committed before it returns -------------------------------------

    def insert(self, jobs: Iterable[NewJob]) -> float:
        """Insert ``jobs`` as queued in one transaction; returns their submission time."""
        now = time.time()
        with self._db.transaction() as db:
            db.executemany(
                "INSERT INTO jobs"
                " (id, kind, args, state, retries, timeout, submitted_at, caller, traceparent)"
                " VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
                [
                    (j.id, j.kind, j.args, j.retries, j.timeout, now, j.caller, j.traceparent)
                    for j in jobs
                ],
            )
        return now

    def record(self, changes: Sequence[Transition]) -> None:
        """Apply ``changes`` in order, in one transaction.

        On a shared store a requeue's ``at`` is when the job may run again (its
        backoff), and only this coordinator's jobs move (see the class docstring).
        """
        shared = self._db.shared
        with self._db.transaction() as db:
            for change in changes:
                if change.state == "running":
                    db.execute(_START, (change.job_id,))
                elif change.state == "queued" and shared:
                    values = (change.error, change.at, change.job_id, self.owner)
                    db.execute(_SHARED_REQUEUE, values)
                elif change.state == "queued":
                    db.execute(_REQUEUE, (change.error, change.job_id))
                else:
                    at = time.time() if change.at is None else change.at
                    finish = (change.state, change.result, change.error, at, change.job_id)
                    if shared and change.state != "cancelled":
                        db.execute(_SHARED_FINISH, (*finish, self.owner))
                    else:
                        db.execute(_FINISH, finish)

    def claim(self, limit: int, now: float, lease_until: float) -> list[str]:
        """Take up to ``limit`` queued jobs that may run at ``now``, oldest first, for this
        coordinator until ``lease_until`` (each one attempt more). Shared store only;
        raises StoreError (nothing taken)."""
        with self._db.transaction() as db:
            rows = db.execute(_CLAIM, (self.owner, lease_until, now, limit)).fetchall()
        return [job_id for (job_id,) in rows]

    def renew(self, lease_until: float) -> int:
        """Extend this coordinator's leases to ``lease_until``; returns how many it holds."""
        with self._db.transaction() as db:
            return db.execute(_RENEW, (lease_until, self.owner)).rowcount

    def expire(self, now: float) -> tuple[int, int]:
        """Jobs whose coordinator stopped renewing its lease: requeued, their attempt counted
        (or failed, with no attempt left). Returns (requeued, failed)."""
        with self._db.transaction() as db:
            failed = db.execute(_EXPIRED_FAIL, (now, now)).rowcount
            requeued = db.execute(_EXPIRED_REQUEUE, (now,)).rowcount
        return requeued, failed

    def start_attempt(self, job_id: str) -> int:
        """queued -> running with one more attempt; returns the attempt number (1-based)."""
        with self._db.transaction() as db:
            db.execute(_START, (job_id,))
            (attempts,) = db.execute("SELECT attempts FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return int(attempts)

    def requeue(self, job_id: str, error: str | None) -> None:
        """running -> queued (a retry follows); ``error`` is the failed attempt's."""
        self.record((Transition(job_id, "queued", error=error),))

    def finish(
        self, job_id: str, state: JobState, result: bytes | None, error: str | None
    ) -> float:
        """Any unfinished state -> ``state`` (succeeded, failed or cancelled)."""
        now = time.time()
        self.record((Transition(job_id, state, result, error, now),))
        return now

    def recover(self) -> tuple[int, int]:
        """After an incarnation died: its running jobs go back to queued, their attempt
        counted; one that has no attempt left fails. Returns (requeued, failed).

        On a shared store the running jobs are those of every coordinator: only those whose
        lease expired go back (:meth:`expire`)."""
        if self._db.shared:
            return self.expire(time.time())
        with self._db.transaction() as db:
            failed = db.execute(
                "UPDATE jobs SET state = 'failed', finished_at = ?,"
                " error = 'interrupted: the coordinator stopped during the last attempt'"
                " WHERE state = 'running' AND attempts > retries",
                (time.time(),),
            ).rowcount
            requeued = db.execute(
                "UPDATE jobs SET state = 'queued',"
                " error = 'interrupted: the coordinator stopped during the attempt'"
                " WHERE state = 'running'"
            ).rowcount
        return requeued, failed

    def prune(self, keep: int) -> int:
        """Delete finished jobs beyond the ``keep`` most recently finished; returns how many."""
        everything = "ALL" if self._db.dialect == "postgresql" else "-1"
        with self._db.transaction() as db:
            return db.execute(
                "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE finished_at IS NOT NULL"
                f" ORDER BY finished_at DESC, seq DESC LIMIT {everything} OFFSET ?)",  # nosec B608
                (keep,),
            ).rowcount
