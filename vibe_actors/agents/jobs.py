"""Jobs: a durable job queue run on a pool of worker agents.

Wiring: a :class:`Jobs` coordinator owns the queue (its store: an SQLite file at
``<data_dir>/<name>.db``) and a separate pool of :class:`JobWorker`
agents runs the jobs::

    WorkerSpec(name="job-workers", agent=JobWorker, pool=PoolSpec(size=4))
    WorkerSpec(name="jobs", agent=Jobs, depends_on=("job-workers",),
               config=JobsConfig(kinds={"echo": "vibe_actors.agents.job_kinds:echo"}))

A *kind* names a function ``fn(args: dict, ctx: JobContext) -> JSON-like`` by
import string (``config.kinds``); every one is imported when the coordinator
starts, and an unknown module or attribute, or a non-callable, fails the
start with a message naming it (a configuration error). A kind may declare
its arguments' schema with :func:`job_args`; ``Submit`` then checks them.

Protocol:

* ``Submit{kind, args, retries, timeout}`` -> ``Accepted{job_id}`` once the job
  is committed as ``queued``; ``UnknownKind`` (422), ``InvalidJob`` (422: args
  not JSON-encodable, or not what the kind's schema allows), ``JobsNotSaved``
  (503: the commit of its batch failed; the log event names the batch's
  request ids). ``retries`` is at most :data:`MAX_RETRIES` and ``timeout`` at
  most :data:`MAX_TIMEOUT` s (msgspec constraints: a decoded ``Submit`` past
  them is a validation error, a 422 at the gateway, shown in its schema).
* ``Status{job_id}`` -> ``JobStatus`` or ``JobNotFound`` (404).
* ``Cancel{job_id}`` -> ``JobStatus`` (now ``cancelled``), ``JobNotFound``, or
  ``AlreadyFinished`` (409). A queued job never runs. A running job is marked
  cancelled at once and its eventual result is discarded, but its worker
  keeps running it until it returns or times out (a job that must stop
  early has to check for itself, e.g. with ``Status``).
* ``List{state, limit}`` -> ``JobList``: the latest jobs, newest first.

Execution: at most ``max_concurrency`` jobs run at once, each on a worker
known to be idle. The coordinator addresses the pool's members
(``<workers>.1`` ... ``<workers>.N``, or ``workers`` itself if it is a single
agent) one by one rather than through the pool's router, which cannot tell
a busy worker from an idle one; it follows the pool's membership (live
reload) every few seconds, and it trusts a worker only once that worker has
answered a ``Ping`` (a Ping is answered after the job ahead of it). Each
worker runs its jobs in a child process of its own (``_jobs_process``): an
attempt past its ``timeout`` has that process killed and replaced, so the
worker is free again within ``kill_grace`` of the timeout (not after the
job). An attempt fails when the job raises, returns something that is not
JSON-like, exceeds its ``timeout``, its process dies, or its worker crashes
or is unavailable; a failed attempt is retried after ``min(backoff_max,
backoff_initial * 2 ** (attempt - 1))`` seconds, up to ``retries`` more
times, and the job then ends ``failed`` with the last error. A worker whose
attempt timed out gets no new job until it answers its probe.

Authority: a job acts for whoever submitted it. The caller of ``Submit``
(the principal of the HTTP request; none for trusted code) is stored with
the job, and every ask or tell the job makes through ``ctx.system`` is sent
on that caller's behalf: the policy decides it as the caller's own request
(a denied ask raises ``ForbiddenError`` in the job, a denied tell is a
``forbidden`` dead letter). Jobs stored before callers were recorded act as
an anonymous caller.

Durability: every state change is committed (``synchronous=FULL``) before it
is acted on or acknowledged. Execution is **at least once**: a job whose
attempt was running when the coordinator (or the process) died goes back to
``queued`` when the coordinator starts again, that attempt counted (with no
attempt left it ends ``failed``), and every queued job is dispatched; so a
job may run twice if the process dies after the job ran but before its
result was committed, or, after a crash of the coordinator alone, while
the interrupted attempt still runs on its worker (its result is ignored).
Across a restart everything but timers is rebuilt from the file: a job
waiting out a retry backoff is dispatched at once, and results of attempts
started by an earlier incarnation are ignored. A commit that fails while
serving crashes the coordinator, so that its supervisor restarts it and the
new incarnation starts again from the file (a failed Submit commit is
answered ``JobsNotSaved`` instead). The
``keep_finished`` most recently finished jobs are kept; older ones are
deleted. A file that cannot be opened (corrupt) degrades the agent: it
answers ``Unavailable`` and the rest of the system runs.

Metrics: ``vibe_jobs_total{kind,outcome}`` (succeeded, failed, retried,
cancelled), ``vibe_jobs_queued`` and ``vibe_jobs_running`` (gauges: run one
jobs agent per system), ``vibe_job_duration_seconds{kind}`` (attempts that
returned, as timed by the worker), ``vibe_jobs_not_saved_total``; the
workers' ``vibe_job_processes_started_total``,
``vibe_job_processes_killed_total{reason}`` (timeout, stop, start, broken) and
``vibe_job_processes_died_total``.
"""

from __future__ import annotations

import uuid
from typing import ClassVar, NamedTuple

import msgspec

from vibe_actors import Agent, Deferred, Unavailable, handler
from vibe_actors._imports import split_import_string
from vibe_actors.agents._jobs_engine import Engine, backoff_delay
from vibe_actors.agents._jobs_messages import Done, Flush, Freed, Probe, Refresh, Retry, Timeout

# Re-exported: callers (the tests) import ``_describe`` from this module.
from vibe_actors.agents._jobs_messages import describe as _describe  # noqa: F401
from vibe_actors.agents._jobs_metrics import build_metrics
from vibe_actors.agents._jobs_protocol import (
    MAX_RETRIES,
    MAX_TIMEOUT,
    Accepted,
    AlreadyFinished,
    Cancel,
    InvalidJob,
    JobList,
    JobNotFound,
    JobsNotSaved,
    JobStatus,
    List,
    Status,
    Submit,
    UnknownKind,
)
from vibe_actors.agents._jobs_store import FINISHED, JobRow, JobStore, NewJob, encode_caller
from vibe_actors.agents._jobs_wire import args_schema, job_args, load_callable
from vibe_actors.agents._jobs_worker import JobContext, JobWorker, JobWorkerConfig
from vibe_actors.agents._metrics import system_metrics
from vibe_actors.agents._store import StoreError, StoreRejected
from vibe_actors.agents._store_base import degrade_for, open_store

__all__ = [
    "Accepted",
    "AlreadyFinished",
    "Cancel",
    "InvalidJob",
    "JobContext",
    "JobList",
    "JobNotFound",
    "JobStatus",
    "JobWorker",
    "JobWorkerConfig",
    "Jobs",
    "JobsConfig",
    "JobsNotSaved",
    "List",
    "MAX_RETRIES",
    "MAX_TIMEOUT",
    "Status",
    "Submit",
    "UnknownKind",
    "backoff_delay",
    "job_args",
]

_MAX_CONCURRENCY = 1024
_MAX_KEEP = 1_000_000_000


class JobsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of :class:`Jobs` (times in seconds)."""

    #: The worker pool (or single worker agent) that runs the jobs.
    workers: str = "job-workers"
    #: kind -> ``"module:function"``.
    kinds: dict[str, str] = {}
    max_concurrency: int = 4
    default_retries: int = 3
    default_timeout: float = 60.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    keep_finished: int = 10_000

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
        if not 0 <= self.backoff_initial <= self.backoff_max <= MAX_TIMEOUT:
            raise ValueError(
                f"backoff needs 0 <= backoff_initial <= backoff_max <= {MAX_TIMEOUT:g}"
            )


class _Pending(NamedTuple):
    """A submission waiting for its batch's commit."""

    deferred: Deferred
    job: NewJob
    request_id: str | None


def _status(row: JobRow) -> JobStatus:
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


class Jobs(Agent[Submit | Status | List | Cancel]):
    """The coordinator (see the module docstring for the whole contract).

    It answers the public protocol and commits submissions in batches; the
    queue, the attempts and the workers belong to its engine
    (``_jobs_engine.Engine``: None while degraded or once released).
    """

    Config: ClassVar = JobsConfig

    def on_start(self) -> None:
        settings = self._settings = self.config
        #: kind -> the argument schema its function declared (job_args), if any.
        self._schemas: dict[str, type[msgspec.Struct]] = {}
        # A config error (bad kind) fails the start: it will not fix itself on a restart.
        for kind, target in settings.kinds.items():
            try:
                schema = args_schema(load_callable(target))
            except ValueError as exc:
                raise ValueError(f"{self.name}: kind {kind!r}: {exc}") from exc
            if schema is not None:
                self._schemas[kind] = schema
        metrics = self._metrics = system_metrics(self.system, "jobs", build_metrics)
        self._batch: list[_Pending] = []
        self._me = self.ref(self.name)
        self._engine: Engine | None = None
        try:
            store = open_store(JobStore, self)
        except StoreError as exc:
            degrade_for(self, exc)
            return
        try:
            requeued, failed = store.recover()
            store.prune(settings.keep_finished)
        except (StoreError, StoreRejected) as exc:
            store.close()
            self.log.error("store_unavailable", path=store.path, error=f"recovery failed: {exc}")
            self.degrade(f"{store.path}: recovery failed: {exc}")
            return
        self._engine = Engine(self, store, metrics, settings)
        self._engine.start(requeued, failed)

    def on_stop(self) -> None:
        self._release("stopped")

    def on_failure(self, error: BaseException) -> None:
        self._release("crashed")

    def _release(self, why: str) -> None:
        for pending in getattr(self, "_batch", []):
            reason = f"jobs {why} before the commit"
            pending.deferred.resolve(Unavailable(agent=self.name, reason=reason))
        self._batch = []
        engine, self._engine = getattr(self, "_engine", None), None
        if engine is not None:
            engine.store.close()

    # -- the public protocol ---------------------------------------------------------

    @handler
    def submit(self, msg: Submit) -> Accepted | UnknownKind | InvalidJob | JobsNotSaved | None:
        settings = self._settings
        if msg.kind not in settings.kinds:
            return UnknownKind(kind=msg.kind, detail=f"no job kind {msg.kind!r}")
        try:
            args = msgspec.json.encode(msg.args)
        except (TypeError, msgspec.EncodeError) as exc:
            return InvalidJob(detail=f"args are not JSON-encodable: {exc}")
        schema = self._schemas.get(msg.kind)
        if schema is not None:
            try:
                msgspec.convert(msg.args, schema)
            except msgspec.ValidationError as exc:
                return InvalidJob(detail=f"args of kind {msg.kind!r}: {exc}")
        retries = settings.default_retries if msg.retries is None else msg.retries
        timeout = settings.default_timeout if msg.timeout is None else msg.timeout
        job = NewJob(uuid.uuid4().hex, msg.kind, args, retries, timeout, encode_caller(self.caller))
        envelope = self.envelope
        request_id = envelope.request_id if envelope is not None else None
        # Group commit: Submits queued behind this one join the batch, Flush commits it.
        self._batch.append(_Pending(self.defer(), job, request_id))
        if len(self._batch) == 1:
            self._me.tell(Flush(self.incarnation))
        return None

    @handler
    def status(self, msg: Status) -> JobStatus | JobNotFound:
        row = self._engine.store.get(msg.job_id) if self._engine is not None else None
        if row is None:
            return JobNotFound(job_id=msg.job_id, detail=f"no job {msg.job_id!r}")
        return _status(row)

    @handler
    def list_jobs(self, msg: List) -> JobList:
        assert self._engine is not None  # degraded agents never get here
        rows = self._engine.store.listing(msg.state, msg.limit)
        return JobList(jobs=[_status(row) for row in rows])

    @handler
    def cancel(self, msg: Cancel) -> JobStatus | JobNotFound | AlreadyFinished:
        engine = self._engine
        row = engine.store.get(msg.job_id) if engine is not None else None
        if engine is None or row is None:
            return JobNotFound(job_id=msg.job_id, detail=f"no job {msg.job_id!r}")
        if row.state in FINISHED:
            return AlreadyFinished(
                job_id=row.id, state=row.state, detail=f"job {row.id} is already {row.state}"
            )
        return _status(engine.cancel(row))

    # -- internal messages: committing submissions, then the engine's ------------------

    @handler
    def _flush(self, msg: Flush) -> None:
        engine = self._engine
        if msg.incarnation != self.incarnation or engine is None or not self._batch:
            return
        # The batch stays in self._batch until answered: should anything unforeseen
        # raise here, the crash hook (_release) still answers every asker.
        batch = self._batch
        try:
            engine.store.insert(pending.job for pending in batch)
        except StoreError as exc:
            self._not_saved(batch, exc.reason, path=exc.path)
            return
        except (OverflowError, StoreRejected) as exc:
            # A value the store cannot hold (the message bounds exclude it) or a
            # constraint: the transaction was rolled back, the store is as before.
            reason = (
                exc.reason if isinstance(exc, StoreRejected) else f"{type(exc).__name__}: {exc}"
            )
            self._not_saved(batch, reason, path=engine.store.path)
            return
        self._batch = []
        for pending in batch:
            pending.deferred.resolve(Accepted(job_id=pending.job.id))
        engine.submitted(pending.job.id for pending in batch)

    def _not_saved(self, batch: list[_Pending], reason: str, path: str) -> None:
        """Answer every submission of a batch whose commit failed ``JobsNotSaved``."""
        self._batch = []
        self._metrics.not_saved.inc(len(batch))
        self.log.error("jobs_not_saved", path=path, error=reason, count=len(batch),
                       request_ids=[p.request_id for p in batch],
                       job_ids=[p.job.id for p in batch])  # fmt: skip
        for pending in batch:
            pending.deferred.resolve(JobsNotSaved(detail=f"the job was not saved: {reason}"))

    @handler
    def _timeout(self, msg: Timeout) -> None:
        if self._engine is not None:
            self._engine.timeout(msg)

    @handler
    def _done(self, msg: Done) -> None:
        if msg.incarnation == self.incarnation and self._engine is not None:
            self._engine.done(msg)  # else: the job was requeued at this incarnation's start

    @handler
    def _retry(self, msg: Retry) -> None:
        if self._engine is not None:
            self._engine.retry(msg.job_id)

    @handler
    def _probe(self, msg: Probe) -> None:
        if self._engine is not None:
            self._engine.probe(msg.worker)

    @handler
    def _freed(self, msg: Freed) -> None:
        if msg.incarnation == self.incarnation and self._engine is not None:
            self._engine.freed(msg)

    @handler
    def _refresh(self, msg: Refresh) -> None:
        if self._engine is not None:
            self._engine.refresh()
