"""The jobs agent's public protocol: its messages, replies and their bounds.

Defined apart from the coordinator (:mod:`vibe_actors.agents.jobs`, which
re-exports every name) to keep each module small. Every number a client sends
that reaches the SQLite file or a timer is bounded by a msgspec constraint:
a decoded message past one is a validation error (a 422 at the gateway, and
the bound is in the OpenAPI schema); ``__post_init__`` checks the same bounds
for a message built in process.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from msgspec import Meta

from vibe_actors import ErrorReply, Message
from vibe_actors.agents._jobs_store import JobState

__all__ = [
    "MAX_LIST",
    "MAX_RETRIES",
    "MAX_TIMEOUT",
    "Accepted",
    "AlreadyFinished",
    "Cancel",
    "InvalidJob",
    "JobList",
    "JobNotFound",
    "JobStatus",
    "JobsNotSaved",
    "List",
    "Status",
    "Submit",
    "UnknownKind",
]

#: Upper bounds of what a submission (or the settings) may ask for: every number that
#: reaches the SQLite file or a timer is bounded, so none overflows an INTEGER column.
MAX_RETRIES = 100
MAX_TIMEOUT = 86_400.0
MAX_LIST = 10_000


class Submit(Message):
    """Run ``kind`` with ``args``; ``retries``/``timeout`` default to the agent's settings.

    The bounds are msgspec constraints (checked when a Submit is decoded, shown
    in the schema) and are checked again here for a Submit built in process.
    """

    kind: str
    args: dict[str, Any] = {}
    retries: Annotated[int, Meta(ge=0, le=MAX_RETRIES)] | None = None
    timeout: Annotated[float, Meta(gt=0, le=MAX_TIMEOUT)] | None = None

    def __post_init__(self) -> None:
        if self.retries is not None and not 0 <= self.retries <= MAX_RETRIES:
            raise ValueError(f"retries must be between 0 and {MAX_RETRIES}, got {self.retries}")
        if self.timeout is not None and not 0 < self.timeout <= MAX_TIMEOUT:
            raise ValueError(f"timeout must be > 0 and <= {MAX_TIMEOUT:g}, got {self.timeout}")


class Accepted(Message):
    job_id: str


class Status(Message):
    job_id: str


class Cancel(Message):
    job_id: str


class List(Message):
    """The latest ``limit`` jobs (in ``state`` if given), newest first."""

    state: JobState | None = None
    limit: Annotated[int, Meta(ge=1, le=MAX_LIST)] = 100

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIST:
            raise ValueError(f"limit must be between 1 and {MAX_LIST}, got {self.limit}")


class JobStatus(Message):
    """A job. ``attempts``: started so far; ``error``: the last failed attempt's."""

    job_id: str
    kind: str
    state: JobState
    attempts: int
    submitted_at: float
    result: Any = None
    error: str | None = None
    finished_at: float | None = None


class JobList(Message):
    jobs: list[JobStatus]


class UnknownKind(ErrorReply):
    kind: str
    http_status: ClassVar[int] = 422


class InvalidJob(ErrorReply):
    http_status: ClassVar[int] = 422


class JobNotFound(ErrorReply):
    job_id: str
    http_status: ClassVar[int] = 404


class AlreadyFinished(ErrorReply):
    job_id: str
    state: JobState
    http_status: ClassVar[int] = 409


class JobsNotSaved(ErrorReply):
    http_status: ClassVar[int] = 503
