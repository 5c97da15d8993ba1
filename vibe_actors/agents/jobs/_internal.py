"""The jobs coordinator's internal messages and in-flight attempt records.

Plain Structs, outside the public protocol (not forgeable over HTTP): the
coordinator sends them to itself (timers, ask callbacks, group commit). Each
one that reports on an attempt carries the incarnation that started it, so a
new incarnation ignores what an earlier one left behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from vibe_actors import DeadlineExceeded, ErrorReply, ReplyFuture
from vibe_actors.agents.jobs._store import JobRow
from vibe_actors.agents.jobs.protocol import JobStatus

__all__ = [
    "Done",
    "Flight",
    "Flush",
    "Freed",
    "Lease",
    "Probe",
    "Refresh",
    "Retry",
    "Timeout",
    "describe",
    "job_status",
]


class Flush(msgspec.Struct, frozen=True):
    incarnation: int


class Done(msgspec.Struct, frozen=True):
    """An attempt ended. ``free``: the worker answered, so it is idle now."""

    incarnation: int
    job_id: str
    attempt: int
    ok: bool
    result: Any
    error: str | None
    seconds: float | None
    free: bool


class Timeout(msgspec.Struct, frozen=True):
    job_id: str
    attempt: int


class Retry(msgspec.Struct, frozen=True):
    job_id: str


class Probe(msgspec.Struct, frozen=True):
    worker: str


class Freed(msgspec.Struct, frozen=True):
    incarnation: int
    worker: str
    available: bool


class Refresh(msgspec.Struct, frozen=True):
    pass


class Lease(msgspec.Struct, frozen=True):
    """Renew this coordinator's leases, requeue the expired ones, take queued jobs (a shared
    store only)."""


@dataclass(slots=True)
class Flight:
    """An attempt in progress (coordinator thread only)."""

    job_id: str
    kind: str
    worker: str
    attempt: int
    retries: int
    future: ReplyFuture
    cancelled: bool = False
    #: The attempt's span (tracing on, submitted in a trace), ended with the attempt.
    span: Any = None


def describe(reply: Any) -> str:
    if isinstance(reply, DeadlineExceeded):
        return f"timed out after {reply.timeout:g}s"
    if isinstance(reply, ErrorReply):
        fields = [f for f in reply.__struct_fields__ if f not in ("detail", "agent")]
        extra = ", ".join(f"{f}={getattr(reply, f)}" for f in fields)
        return (
            f"{type(reply).__name__} from {getattr(reply, 'agent', '?')}: {extra or reply.detail}"
        )
    return f"unexpected reply {type(reply).__name__}"


def job_status(row: JobRow) -> JobStatus:
    """Job ``row`` as the protocol shows it."""
    return JobStatus(
        job_id=row.id,
        kind=row.kind,
        state=row.state,
        attempts=row.attempts,
        result=row.result,
        error=row.error,
        submitted_at=row.submitted_at,
        finished_at=row.finished_at,
    )
