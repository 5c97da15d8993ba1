"""The jobs agent's public protocol: its messages, replies, settings and their bounds.

Defined apart from the coordinator (:mod:`vibe_actors.agents.jobs`, which
re-exports every public name) to keep each module small. Every number a client sends
that reaches the SQLite file or a timer is bounded by a msgspec constraint:
a decoded message past one is a validation error (a 422 at the gateway, and
the bound is in the OpenAPI schema); ``__post_init__`` checks the same bounds
for a message built in process.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta

from vibe_actors import ErrorReply, Message
from vibe_actors._imports import split_import_string
from vibe_actors._messages import namespaced
from vibe_actors.agents.jobs._child import JobContext
from vibe_actors.agents.jobs._wire import job_args

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
    "JobsConfig",
    "JobsNotSaved",
    "List",
    "Status",
    "Submit",
    "UnknownKind",
    "JobContext",
    "JobState",
    "job_args",
]


_tag = namespaced("jobs")


class _Message(Message, tag=_tag):
    """Base of the jobs agent's messages: tagged ``jobs.<ClassName>`` on the wire,
    named by the class name over HTTP."""


class _ErrorReply(ErrorReply, tag=_tag):
    """Base of the jobs agent's error replies, tagged like its messages."""


#: Upper bounds of what a submission (or the settings) may ask for: every number that
#: reaches the SQLite file or a timer is bounded, so none overflows an INTEGER column.
MAX_RETRIES = 100
MAX_TIMEOUT = 86_400.0
MAX_LIST = 10_000

#: A job's state; the table's CHECK constraint holds ``state`` to these values.
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]

_MAX_CONCURRENCY = 1024
_MAX_KEEP = 1_000_000_000


class JobsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of :class:`~vibe_actors.agents.jobs.Jobs` (times in seconds)."""

    #: The worker pool (or single worker agent) that runs the jobs.
    workers: str = "job-workers"
    #: kind -> ``"module:function"``.
    kinds: dict[str, str] = {}
    max_concurrency: int = 4
    default_retries: int = 3
    default_timeout: float = 60.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    #: Each retry's delay is stretched by up to this fraction, at random (see
    #: :func:`vibe_actors.backoff_delay`): jobs that failed together retry apart.
    backoff_jitter: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.2
    keep_finished: int = 10_000
    #: On a shared store: how long a coordinator's claim on a running job holds unless
    #: renewed (every ``lease / 3`` s); past it another replica runs the job again.
    lease: float = 30.0

    def __post_init__(self) -> None:
        for kind, target in self.kinds.items():
            if not (kind and split_import_string(target)):
                raise ValueError(f"kind {kind!r}: {target!r} is not an import string 'module:fn'")
        if not 1 <= self.max_concurrency <= _MAX_CONCURRENCY:
            raise ValueError(f"max_concurrency must be between 1 and {_MAX_CONCURRENCY}")
        if not 0 <= self.default_retries <= MAX_RETRIES:
            raise ValueError(f"default_retries must be between 0 and {MAX_RETRIES}")
        if not 0 <= self.keep_finished <= _MAX_KEEP:
            raise ValueError(f"keep_finished must be between 0 and {_MAX_KEEP}")
        if not 0 < self.default_timeout <= MAX_TIMEOUT:
            raise ValueError(f"default_timeout must be > 0 and <= {MAX_TIMEOUT:g}, "
                             f"got {self.default_timeout}")  # fmt: skip
        if not 0 < self.lease <= MAX_TIMEOUT:
            raise ValueError(f"lease must be > 0 and <= {MAX_TIMEOUT:g}, got {self.lease}")
        if not 0 <= self.backoff_initial <= self.backoff_max <= MAX_TIMEOUT:
            raise ValueError(
                f"backoff needs 0 <= backoff_initial <= backoff_max <= {MAX_TIMEOUT:g}"
            )


class Submit(_Message):
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


class Accepted(_Message):
    job_id: str


class Status(_Message):
    job_id: str


class Cancel(_Message):
    job_id: str


class List(_Message):
    """The latest ``limit`` jobs (in ``state`` if given), newest first."""

    state: JobState | None = None
    limit: Annotated[int, Meta(ge=1, le=MAX_LIST)] = 100

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIST:
            raise ValueError(f"limit must be between 1 and {MAX_LIST}, got {self.limit}")


class JobStatus(_Message):
    """A job. ``attempts``: started so far; ``error``: the last failed attempt's."""

    job_id: str
    kind: str
    state: JobState
    attempts: int
    submitted_at: float
    result: Any = None
    error: str | None = None
    finished_at: float | None = None


class JobList(_Message):
    jobs: list[JobStatus]


class UnknownKind(_ErrorReply):
    kind: str
    http_status: ClassVar[int] = 422


class InvalidJob(_ErrorReply):
    http_status: ClassVar[int] = 422


class JobNotFound(_ErrorReply):
    job_id: str
    http_status: ClassVar[int] = 404


class AlreadyFinished(_ErrorReply):
    job_id: str
    state: JobState
    http_status: ClassVar[int] = 409


class JobsNotSaved(_ErrorReply):
    """The commit of the submission's batch failed (a full disk...): nothing was saved."""

    #: The file that could not be written.
    path: str | None = None
    http_status: ClassVar[int] = 503
