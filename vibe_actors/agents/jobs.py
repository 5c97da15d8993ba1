"""Jobs: a durable job queue run on a pool of worker agents.

Wiring: a :class:`Jobs` coordinator owns the queue (an SQLite file at
``database_path(data_dir, name)``) and a separate pool of :class:`JobWorker`
agents runs the jobs::

    WorkerSpec(name="job-workers", agent=JobWorker, pool=PoolSpec(size=4))
    WorkerSpec(name="jobs", agent=Jobs, depends_on=("job-workers",),
               config=JobsConfig(kinds={"echo": "vibe_actors.agents.job_kinds:echo"}))

A *kind* names a function ``fn(args: dict, ctx: JobContext) -> JSON-like`` by
import string (``config.kinds``); every one is imported when the coordinator
starts, and an unknown module or attribute, or a non-callable, fails the
start with a message naming it (a configuration error).

Protocol:

* ``Submit{kind, args, retries, timeout}`` -> ``Accepted{job_id}`` once the job
  is committed as ``queued``; ``UnknownKind`` (422), ``InvalidJob`` (422: args
  not JSON-encodable), ``JobsNotSaved`` (503: the commit failed).
* ``Status{job_id}`` -> ``JobStatus`` or ``JobNotFound`` (404).
* ``Cancel{job_id}`` -> ``JobStatus`` (now ``cancelled``), ``JobNotFound``, or
  ``AlreadyFinished`` (409). A queued job never runs. A running job is marked
  cancelled at once and its eventual result is discarded, but its worker
  keeps running it: a Python thread cannot be interrupted (a job that must
  stop early has to check for itself, e.g. with ``Status``).
* ``List{state, limit}`` -> ``JobList``: the latest jobs, newest first.

Execution: at most ``max_concurrency`` jobs run at once, each on a worker
known to be idle. The coordinator addresses the pool's members
(``<workers>.1`` ... ``<workers>.N``, or ``workers`` itself if it is a single
agent) one by one rather than through the pool's router, which cannot tell
a busy worker from an idle one; it follows the pool's membership (live
reload) every few seconds, and it trusts a worker only once that worker has
answered a ``Ping`` (a Ping is answered after the job ahead of it). An attempt
fails when the job raises, returns something that is not JSON-like, exceeds
its ``timeout``, or its worker crashes or is unavailable; a failed attempt
is retried after ``min(backoff_max, backoff_initial * 2 ** (attempt - 1))``
seconds, up to ``retries`` more times, and the job then ends ``failed`` with
the last error. A worker still busy with a timed-out job gets no new job
until it answers its probe.

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
returned, as timed by the worker).
"""

from __future__ import annotations

import math
import sqlite3
import uuid
from collections import deque
from typing import Any, ClassVar

import msgspec

from vibe_actors import (
    Agent,
    DeadlineExceeded,
    Deferred,
    ErrorReply,
    Message,
    Ping,
    Pong,
    Unavailable,
    handler,
)
from vibe_actors.agents._jobs_messages import (
    Done,
    Flight,
    Flush,
    Freed,
    Probe,
    Refresh,
    Retry,
    Timeout,
)
from vibe_actors.agents._jobs_messages import describe as _describe
from vibe_actors.agents._jobs_metrics import build_metrics
from vibe_actors.agents._jobs_store import FINISHED, JobRow, JobState, JobStore, NewJob
from vibe_actors.agents._jobs_worker import (
    JobContext,
    JobWorker,
    JobWorkerConfig,
    Run,
    RunResult,
    load_callable,
)
from vibe_actors.agents._metrics import system_metrics
from vibe_actors.agents._sqlite import StoreError, database_path, degrade_for

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
    "Status",
    "Submit",
    "UnknownKind",
    "backoff_delay",
]

#: A probe waits behind the job in the worker's mailbox; it may take as long as the job.
_PROBE_TIMEOUT = 86_400.0
_REPROBE_AFTER = 1.0
_REFRESH_EVERY = 5.0
_PRUNE_EVERY = 256


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
            module, sep, attr = target.partition(":")
            if not (kind and module and sep and attr):
                raise ValueError(f"kind {kind!r}: {target!r} is not an import string 'module:fn'")
        if self.max_concurrency < 1 or self.default_retries < 0 or self.keep_finished < 0:
            raise ValueError("max_concurrency must be >= 1, default_retries and keep_finished >= 0")
        if not (math.isfinite(self.default_timeout) and self.default_timeout > 0):
            raise ValueError(f"default_timeout must be > 0, got {self.default_timeout}")
        if not 0 <= self.backoff_initial <= self.backoff_max:
            raise ValueError("backoff needs 0 <= backoff_initial <= backoff_max")


def backoff_delay(attempt: int, initial: float, maximum: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based) before the next one."""
    return min(maximum, initial * 2.0 ** min(attempt - 1, 1000))  # 2.0 ** 1024 overflows


# -- messages ---------------------------------------------------------------------


class Submit(Message):
    """Run ``kind`` with ``args``; ``retries``/``timeout`` default to the agent's settings."""

    kind: str
    args: dict[str, Any] = {}
    retries: int | None = None
    timeout: float | None = None

    def __post_init__(self) -> None:
        if self.retries is not None and self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        if self.timeout is not None and not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ValueError(f"timeout must be a finite number > 0, got {self.timeout}")


class Accepted(Message):
    job_id: str


class Status(Message):
    job_id: str


class Cancel(Message):
    job_id: str


class List(Message):
    """The latest ``limit`` jobs (in ``state`` if given), newest first."""

    state: JobState | None = None
    limit: int = 100

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= 10_000:
            raise ValueError(f"limit must be between 1 and 10000, got {self.limit}")


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
    """The coordinator (see the module docstring for the whole contract)."""

    Config: ClassVar = JobsConfig

    def on_start(self) -> None:
        settings = self._settings = self.config
        # A config error (bad kind) fails the start: it will not fix itself on a restart.
        for kind, target in settings.kinds.items():
            try:
                load_callable(target)
            except ValueError as exc:
                raise ValueError(f"{self.name}: kind {kind!r}: {exc}") from exc
        self._metrics = system_metrics(self.system, "jobs", build_metrics)
        self._batch: list[tuple[Deferred, NewJob]] = []
        self._ready: deque[str] = deque()
        self._queued: set[str] = set()  #: ready to dispatch (in _ready) and not cancelled
        self._backoff: set[str] = set()  #: waiting for a retry timer
        self._flights: dict[str, Flight] = {}
        self._known: set[str] = set()  #: worker names
        self._idle: dict[str, None] = {}  #: workers known to be idle (an ordered set)
        self._probing: set[str] = set()  #: workers with a Ping outstanding
        self._finished = 0
        self._me = self.ref(self.name)
        path = database_path(self.system.config.data_dir, self.name)
        self._store: JobStore | None = None
        try:
            store = JobStore(path)
        except StoreError as exc:
            degrade_for(self, exc)
            return
        try:
            requeued, failed = store.recover()
            store.prune(settings.keep_finished)
        except (StoreError, sqlite3.Error) as exc:
            store.close()
            self.log.error("store_unavailable", path=str(path), error=f"recovery failed: {exc}")
            self.degrade(f"{path}: recovery failed: {exc}")
            return
        self._store = store
        queued = store.ids("queued")
        self._ready.extend(queued)
        self._queued.update(queued)
        self.log.info("jobs_started", queued=len(queued), requeued=requeued, failed=failed)
        self._gauges()
        self._refresh(Refresh())
        self.start_timer("refresh", Refresh(), _REFRESH_EVERY, repeat=True)

    def on_stop(self) -> None:
        self._release("stopped")

    def on_failure(self, error: BaseException) -> None:
        self._release("crashed")

    def _release(self, why: str) -> None:
        for deferred, _ in getattr(self, "_batch", []):
            deferred.resolve(Unavailable(agent=self.name, reason=f"jobs {why} before the commit"))
        self._batch = []
        store, self._store = getattr(self, "_store", None), None
        if store is not None:
            store.close()

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
        retries = settings.default_retries if msg.retries is None else msg.retries
        timeout = settings.default_timeout if msg.timeout is None else msg.timeout
        job = NewJob(uuid.uuid4().hex, msg.kind, args, retries, timeout)
        # Group commit: Submits queued behind this one join the batch, Flush commits it.
        self._batch.append((self.defer(), job))
        if len(self._batch) == 1:
            self._me.tell(Flush(self.incarnation))
        return None

    @handler
    def status(self, msg: Status) -> JobStatus | JobNotFound:
        row = self._store.get(msg.job_id) if self._store is not None else None
        if row is None:
            return JobNotFound(job_id=msg.job_id, detail=f"no job {msg.job_id!r}")
        return _status(row)

    @handler
    def list_jobs(self, msg: List) -> JobList:
        assert self._store is not None  # degraded agents never get here
        return JobList(jobs=[_status(row) for row in self._store.listing(msg.state, msg.limit)])

    @handler
    def cancel(self, msg: Cancel) -> JobStatus | JobNotFound | AlreadyFinished:
        store = self._store
        row = store.get(msg.job_id) if store is not None else None
        if store is None or row is None:
            return JobNotFound(job_id=msg.job_id, detail=f"no job {msg.job_id!r}")
        if row.state in FINISHED:
            return AlreadyFinished(
                job_id=row.id, state=row.state, detail=f"job {row.id} is already {row.state}"
            )
        store.finish(row.id, "cancelled", None, row.error)
        self._queued.discard(row.id)
        if row.id in self._backoff:
            self._backoff.discard(row.id)
            self.cancel_timer(("retry", row.id))
        flight = self._flights.get(row.id)
        if flight is not None:
            flight.cancelled = True  # its worker stays busy until the attempt ends
        self._metrics.total.labels(kind=row.kind, outcome="cancelled").inc()
        self.log.info("job_cancelled", job_id=row.id, kind=row.kind, was=row.state)
        self._gauges()
        self._finished_one()
        updated = store.get(row.id)
        assert updated is not None
        return _status(updated)

    # -- committing submissions ----------------------------------------------------------

    @handler
    def _flush(self, msg: Flush) -> None:
        if msg.incarnation != self.incarnation or self._store is None or not self._batch:
            return
        batch, self._batch = self._batch, []
        try:
            self._store.insert(job for _, job in batch)
        except StoreError as exc:
            self.log.error("jobs_not_saved", path=exc.path, error=exc.reason, count=len(batch))
            for deferred, _ in batch:
                deferred.resolve(JobsNotSaved(detail=f"the job was not saved: {exc.reason}"))
            return
        for deferred, job in batch:
            self._ready.append(job.id)
            self._queued.add(job.id)
            deferred.resolve(Accepted(job_id=job.id))
        self.log.debug("jobs_submitted", count=len(batch))
        self._pump()

    # -- dispatching ----------------------------------------------------------------------

    def _pump(self) -> None:
        """Start queued jobs while a slot and an idle worker are free."""
        store, limit = self._store, self._settings.max_concurrency
        assert store is not None
        while self._ready and self._idle and len(self._flights) < limit:
            job_id = self._ready.popleft()
            if job_id not in self._queued:
                continue  # cancelled while queued
            self._queued.discard(job_id)
            row = store.get(job_id)
            if row is None or row.state != "queued":
                continue
            target = self._settings.kinds.get(row.kind)
            if target is None:  # the configuration changed since it was submitted
                self._fail(row.id, row.kind, f"unknown kind {row.kind!r}", None)
                continue
            worker = next(iter(self._idle))
            del self._idle[worker]
            self._dispatch(row, target, worker, store.start_attempt(job_id))
        self._gauges()

    def _dispatch(self, row: JobRow, target: str, worker: str, attempt: int) -> None:
        me, incarnation, job_id = self._me, self.incarnation, row.id

        def done(reply: Any) -> None:  # in the resolving thread: only a tell
            if isinstance(reply, RunResult):
                me.tell(Done(incarnation, job_id, attempt, reply.ok, reply.result, reply.error,
                              reply.seconds, free=True))  # fmt: skip
            else:
                me.tell(Done(incarnation, job_id, attempt, False, None, _describe(reply), None,
                              free=False))  # fmt: skip

        run = Run(job_id=job_id, kind=row.kind, target=target, args=row.args, attempt=attempt)
        future = self.ref(worker).ask_future(run, timeout=row.timeout, callback=done)
        self._flights[job_id] = Flight(job_id, row.kind, worker, attempt, row.retries, future)
        # The ask's deadline only holds while the Run is queued: this timer covers a job
        # that runs too long (resolving the future here sends the same Done).
        self.start_timer(("timeout", job_id), Timeout(job_id, attempt), row.timeout)
        self.log.debug("job_started", job_id=job_id, kind=row.kind, attempt=attempt, worker=worker)

    @handler
    def _timeout(self, msg: Timeout) -> None:
        flight = self._flights.get(msg.job_id)
        if flight is not None and flight.attempt == msg.attempt:
            flight.future.resolve(
                DeadlineExceeded(agent=flight.worker, timeout=flight.future.timeout)
            )

    @handler
    def _done(self, msg: Done) -> None:
        if msg.incarnation != self.incarnation or self._store is None:
            return  # an attempt of an earlier incarnation: the job was requeued at start
        flight = self._flights.get(msg.job_id)
        if flight is None or flight.attempt != msg.attempt:
            return
        del self._flights[msg.job_id]
        self.cancel_timer(("timeout", msg.job_id))
        self._worker_done(flight.worker, msg.free)
        if msg.seconds is not None:
            self._metrics.duration.labels(kind=flight.kind).observe(msg.seconds)
        if flight.cancelled:
            self.log.info("job_result_ignored", job_id=msg.job_id, reason="cancelled", ok=msg.ok)
        elif msg.ok:
            self._succeed(flight, msg.result)
        else:
            self._attempt_failed(flight, msg.error or "failed")
        self._pump()

    def _succeed(self, flight: Flight, result: Any) -> None:
        assert self._store is not None
        self._store.finish(flight.job_id, "succeeded", msgspec.json.encode(result), None)
        self._metrics.total.labels(kind=flight.kind, outcome="succeeded").inc()
        self.log.info("job_succeeded", job_id=flight.job_id, kind=flight.kind,
                      attempt=flight.attempt)  # fmt: skip
        self._finished_one()

    def _attempt_failed(self, flight: Flight, error: str) -> None:
        assert self._store is not None
        if flight.attempt > flight.retries:
            self._fail(flight.job_id, flight.kind, error, flight.attempt)
            return
        settings = self._settings
        delay = backoff_delay(flight.attempt, settings.backoff_initial, settings.backoff_max)
        self._store.requeue(flight.job_id, error)
        self._backoff.add(flight.job_id)
        self.start_timer(("retry", flight.job_id), Retry(flight.job_id), delay)
        self._metrics.total.labels(kind=flight.kind, outcome="retried").inc()
        self.log.warning("job_retry", job_id=flight.job_id, kind=flight.kind,
                         attempt=flight.attempt, error=error, retry_in=delay)  # fmt: skip

    def _fail(self, job_id: str, kind: str, error: str, attempt: int | None) -> None:
        assert self._store is not None
        self._store.finish(job_id, "failed", None, error)
        self._metrics.total.labels(kind=kind, outcome="failed").inc()
        self.log.warning("job_failed", job_id=job_id, kind=kind, attempts=attempt, error=error)
        self._finished_one()

    def _finished_one(self) -> None:
        self._finished += 1
        if self._finished % _PRUNE_EVERY == 0 and self._store is not None:
            pruned = self._store.prune(self._settings.keep_finished)
            self.log.debug("jobs_pruned", count=pruned)

    @handler
    def _retry(self, msg: Retry) -> None:
        if msg.job_id in self._backoff and self._store is not None:
            self._backoff.discard(msg.job_id)
            self._ready.append(msg.job_id)
            self._queued.add(msg.job_id)
            self._pump()

    # -- workers ------------------------------------------------------------------------

    def _worker_done(self, worker: str, free: bool) -> None:
        if worker not in self._known:
            return
        if free:
            self._idle[worker] = None
        else:
            self._probe(Probe(worker))

    @handler
    def _probe(self, msg: Probe) -> None:
        """Ask ``worker`` for a Pong: it answers once the job ahead of the Ping is over."""
        if self._store is None or msg.worker not in self._known or msg.worker in self._probing:
            return
        self._probing.add(msg.worker)  # one at a time: a stale Pong must not free a busy worker
        me, incarnation, worker = self._me, self.incarnation, msg.worker

        def answered(reply: Any) -> None:
            me.tell(Freed(incarnation, worker, isinstance(reply, Pong)))

        self.ref(worker).ask_future(Ping(), timeout=_PROBE_TIMEOUT, callback=answered)

    @handler
    def _freed(self, msg: Freed) -> None:
        if msg.incarnation != self.incarnation or self._store is None:
            return
        self._probing.discard(msg.worker)
        if msg.worker not in self._known:
            return
        if msg.available:
            if any(f.worker == msg.worker for f in self._flights.values()):
                return  # it has a job again (it was busy while the probe was out)
            self._idle[msg.worker] = None
            self._pump()
        else:  # stopped or not started yet: ask again later
            self.start_timer(("probe", msg.worker), Probe(msg.worker), _REPROBE_AFTER)

    @handler
    def _refresh(self, msg: Refresh) -> None:
        """Follow the pool's membership (live reload may resize it)."""
        if self._store is None:
            return
        names = set(self.system.names())
        pool = self._settings.workers
        members = {n for n in names if n.startswith(pool + ".") and n[len(pool) + 1 :].isdigit()}
        if not members and pool in names:
            members = {pool}  # a single worker agent
        if not members and not self._known:
            self.log.warning("job_workers_missing", workers=pool)
        for gone in self._known - members:
            self._idle.pop(gone, None)
            self.cancel_timer(("probe", gone))
        for new in members - self._known:
            self._known.add(new)
            self._probe(Probe(new))
        self._known = members

    # -- metrics ----------------------------------------------------------------------

    def _gauges(self) -> None:
        self._metrics.queued.set(len(self._queued) + len(self._backoff))
        self._metrics.running.set(sum(1 for f in self._flights.values() if not f.cancelled))
