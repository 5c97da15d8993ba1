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
  (503: the commit of its batch failed; ``path`` names the file, the log
  event the batch's request ids). ``retries`` is at most :data:`MAX_RETRIES` and ``timeout`` at
  most :data:`MAX_TIMEOUT` s (msgspec constraints: a decoded ``Submit`` past
  them is a validation error, a 422 at the gateway, shown in its schema).
* ``Status{job_id}`` -> ``JobStatus`` or ``JobNotFound`` (404).
* ``Cancel{job_id}`` -> ``JobStatus`` (now ``cancelled``), ``JobNotFound``,
  ``AlreadyFinished`` (409), or ``StorageUnavailable`` (503: it could not be
  recorded; nothing changed). A queued job never runs. A running job is marked
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
backoff_initial * 2 ** (attempt - 1))`` seconds, stretched by up to ``backoff_jitter`` at
random (:func:`vibe_actors.backoff_delay`), up to ``retries`` more
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
is acknowledged, and before it is acted on unless the disk is full (below).
Execution is **at least once**: a job whose
attempt was running when the coordinator (or the process) died goes back to
``queued`` when the coordinator starts again, that attempt counted (with no
attempt left it ends ``failed``), and every queued job is dispatched; so a
job may run twice if the process dies after the job ran but before its
result was committed, or, after a crash of the coordinator alone, while
the interrupted attempt still runs on its worker (its result is ignored).
Across a restart everything but timers is rebuilt from the file: a job
waiting out a retry backoff is dispatched at once, and results of attempts
started by an earlier incarnation are ignored. The ``keep_finished`` most
recently finished jobs are kept; older ones are deleted. A file that cannot
be opened (corrupt), or whose data is found damaged, degrades the agent: it
answers ``Unavailable`` and the rest of the system runs.

Replicas (``store: postgresql://...``): every replica's coordinator of this
name serves one queue. A job starts only by a claim on the table (``UPDATE
... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING id``: the
oldest queued jobs that may run, as many as there are free slots and idle
workers here, whichever replica they were submitted to) that gives this
coordinator a lease of ``lease`` seconds, renewed every ``lease / 3``; an
attempt's outcome is recorded only while the coordinator still holds the
job. A coordinator that stops renewing (its replica died, or lost the
database for longer than the lease) has its running jobs requeued by another
replica, the interrupted attempt counted, once; with no attempt left they
fail. A job waiting out a retry backoff waits in the table (``run_after``),
and any replica may run it next. ``Cancel`` applies whichever replica holds
the job (its worker there runs on until the attempt ends, its result
ignored). ``vibe_jobs_queued`` is the table's count; ``vibe_jobs_total`` and
``vibe_jobs_running`` count what this replica ran. At start, only running
jobs whose lease expired are requeued (a restarted coordinator's own wait
for their lease).

A full disk (any failed write: :mod:`~vibe_actors.agents.jobs._health`)
never crashes the coordinator. A Submit whose batch cannot be committed is
answered ``JobsNotSaved`` (503, naming the file; the gateway adds
``Retry-After``), a Cancel that cannot be recorded ``StorageUnavailable``
(503); the agent stays up, impaired (``/readyz`` names it), and goes on
running the jobs it admitted: the state changes it cannot record (attempt
started, retry queued, job finished) are kept in memory, in order, and
``Status`` and ``List`` show them. It probes the file every
``store_retry_interval`` s; once a write succeeds it records what it kept,
in order, and is ready again by itself. A start whose recovery cannot write
(a full disk) starts impaired the same way (not degraded: no job runs and
``Status`` shows the file until a probe's write succeeds, then it recovers
and serves). Should the coordinator or the process die while changes are
kept (a stop tries once more to record them), the file holds the jobs as
they were at the first failed write, and at least once still holds: a job
whose finish was not recorded is requeued at the next start and runs again,
its attempt counted once if its start was recorded, not at all otherwise.

Metrics: ``vibe_jobs_total{kind,outcome}`` (succeeded, failed, retried,
cancelled), ``vibe_jobs_queued`` and ``vibe_jobs_running`` (gauges: run one
jobs agent per system), ``vibe_job_duration_seconds{kind}`` (attempts that
returned, as timed by the worker), ``vibe_jobs_not_saved_total``; the
workers' ``vibe_job_processes_started_total``,
``vibe_job_processes_killed_total{reason}`` (timeout, stop, start, broken) and
``vibe_job_processes_died_total``; ``vibe_store_write_failures_total{agent}``.
"""

# Past ~400 lines only by the docstring above: it is the agent's whole contract (its
# reference page), and the code it describes is about 300 lines.

from __future__ import annotations

import uuid
from typing import ClassVar, NamedTuple

import msgspec

from vibe_actors import Agent, Unavailable, _tracing, handler
from vibe_actors.agents.jobs._dispatcher import JobDispatcher
from vibe_actors.agents.jobs._health import Recorder
from vibe_actors.agents.jobs._internal import (
    Done,
    Flush,
    Freed,
    Lease,
    Probe,
    Refresh,
    Retry,
    Timeout,
    job_status,
)
from vibe_actors.agents.jobs._metrics import build_metrics
from vibe_actors.agents.jobs._store import FINISHED, JobStore, NewJob, encode_caller
from vibe_actors.agents.jobs._wire import args_schema, job_args, load_callable
from vibe_actors.agents.jobs._worker import JobContext, JobWorker, JobWorkerConfig
from vibe_actors.agents.jobs.protocol import (
    MAX_RETRIES,
    MAX_TIMEOUT,
    Accepted,
    AlreadyFinished,
    Cancel,
    InvalidJob,
    JobList,
    JobNotFound,
    JobsConfig,
    JobsNotSaved,
    JobStatus,
    List,
    Status,
    Submit,
    UnknownKind,
)
from vibe_actors.store import (
    BatchNotCommitted,
    GroupCommit,
    GuardedWrites,
    StorageUnavailable,
    StoreError,
    StoreRejected,
    degrade_for,
    open_store,
)

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
    "job_args",
]


class _Submission(NamedTuple):
    """A job to insert, and the request that submitted it (for the log)."""

    job: NewJob
    request_id: str | None


def _accepted(submission: _Submission) -> Accepted:
    """The reply to a submission whose job committed."""
    return Accepted(job_id=submission.job.id)


class Jobs(GuardedWrites, Agent[Submit | Status | List | Cancel]):
    """The coordinator (see the module docstring for the whole contract).

    It answers the public protocol and commits submissions in batches; the
    queue, the attempts and the workers belong to its engine
    (``_dispatcher.JobDispatcher``: None while degraded, until its start-up
    recovery could be written, or once released); the jobs' reads and state
    changes go through its recorder (``_jobs_health.Recorder``).
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
        self._metrics = self.system.shared_metrics("jobs", build_metrics)
        #: The submissions waiting for their batch's commit (group commit).
        self._batch: GroupCommit[_Submission] = GroupCommit(_accepted, self._not_saved)
        self._me = self.ref(self.name)
        self._engine: JobDispatcher | None = None
        self._jobs: Recorder | None = None
        try:
            store = open_store(JobStore, self)
        except StoreError as exc:
            degrade_for(self, exc)
            return
        store.owner = uuid.uuid4().hex  # this incarnation, as the holder of leases
        self._jobs = Recorder(store, self.write_failed, self.write_succeeded)
        try:
            self._start_engine()
        except StoreRejected as exc:  # damaged data: waiting will not cure it
            self._release("degraded")
            self.log.error("store_unavailable", path=store.path, error=f"recovery failed: {exc}")
            self.degrade(f"{store.path}: recovery failed: {exc}")
        except StoreError as exc:  # a full disk: impaired, the probe tries again
            self.write_failed(exc, "start-up recovery")

    def _start_engine(self) -> JobDispatcher:
        """Recover what an earlier incarnation left running, then serve; raises StoreError."""
        jobs = self._jobs
        assert jobs is not None
        requeued, failed = jobs.store.recover()
        jobs.prune(self._settings.keep_finished)  # a failure impairs, a later prune retries
        engine = self._engine = JobDispatcher(self, jobs, self._metrics, self._settings)
        engine.start(requeued, failed)
        return engine

    def _catch_up(self) -> JobDispatcher:
        """Write what this incarnation could not yet: its start-up recovery, or the state
        changes kept while writes failed; returns the engine. Raises StoreError."""
        engine = self._engine if self._engine is not None else self._start_engine()
        engine.jobs.catch_up()
        return engine

    def _probe_store_write(self) -> None:
        assert self._jobs is not None
        self._jobs.store.probe_write()
        self._catch_up()

    def on_stop(self) -> None:
        self._release("stopped")

    def on_failure(self, error: BaseException) -> None:
        self._release("crashed")

    def _release(self, why: str) -> None:
        batch: GroupCommit[_Submission] | None = getattr(self, "_batch", None)
        if batch is not None:
            batch.abandon(Unavailable(agent=self.name, reason=f"jobs {why} before the commit"))
        self._engine = None
        jobs, self._jobs = getattr(self, "_jobs", None), None
        if jobs is None:
            return
        if jobs.kept:  # a last try; else the next start requeues what they finished
            try:
                jobs.catch_up()
            except (StoreError, StoreRejected) as exc:
                self.log.error("job_changes_not_recorded", count=jobs.kept, error=str(exc))
        jobs.store.close()

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
        job = NewJob(
            uuid.uuid4().hex, msg.kind, args, retries, timeout, encode_caller(self.caller),
            _tracing.current_traceparent(),
        )  # fmt: skip
        envelope = self.envelope
        request_id = envelope.request_id if envelope is not None else None
        # Group commit: Submits queued behind this one join the batch, Flush commits it.
        if self._batch.submit(_Submission(job, request_id), self.defer()):
            self._me.tell(Flush(self.incarnation))
        return None

    @handler
    def status(self, msg: Status) -> JobStatus | JobNotFound:
        row = self._jobs.get(msg.job_id) if self._jobs is not None else None
        if row is None:
            return JobNotFound(job_id=msg.job_id, detail=f"no job {msg.job_id!r}")
        return job_status(row)

    @handler
    def list_jobs(self, msg: List) -> JobList:
        assert self._jobs is not None  # degraded agents never get here
        rows = self._jobs.listing(msg.state, msg.limit)
        return JobList(jobs=[job_status(row) for row in rows])

    @handler
    def cancel(self, msg: Cancel) -> JobStatus | JobNotFound | AlreadyFinished | StorageUnavailable:
        jobs = self._jobs
        row = jobs.get(msg.job_id) if jobs is not None else None
        if jobs is None or row is None:
            return JobNotFound(job_id=msg.job_id, detail=f"no job {msg.job_id!r}")
        if row.state not in FINISHED:
            try:
                engine = self._catch_up()
                row = jobs.get(msg.job_id)  # a start-up recovery may have just finished it
                assert row is not None
                if row.state not in FINISHED:
                    return job_status(engine.cancel(row))
            except StoreError as exc:
                return self.write_failed(exc, "Cancel")
        return AlreadyFinished(
            job_id=row.id, state=row.state, detail=f"job {row.id} is already {row.state}"
        )

    # -- internal messages: committing submissions, then the engine's ------------------

    @handler
    def _flush(self, msg: Flush) -> None:
        if msg.incarnation != self.incarnation or self._jobs is None or not self._batch:
            return
        try:
            committed = self._batch.commit(self._insert)
        except BatchNotCommitted:
            return  # every submission of it was answered JobsNotSaved
        assert self._engine is not None  # _insert started it
        self._engine.submitted(submission.job.id for submission in committed)

    def _insert(self, batch: list[_Submission]) -> None:
        """A batch's transaction: what was kept first (the file keeps the order), then its
        jobs. Raises StoreError (the storage) or StoreRejected (a constraint, or a value the
        store cannot hold: the message bounds exclude it); either way nothing is kept."""
        jobs = self._jobs
        assert jobs is not None
        self._catch_up()
        try:
            jobs.store.insert(submission.job for submission in batch)
        except OverflowError as exc:
            raise StoreRejected(jobs.store.path, f"{type(exc).__name__}: {exc}") from exc
        self.write_succeeded()

    def _not_saved(
        self, error: StoreError | StoreRejected, batch: list[_Submission]
    ) -> JobsNotSaved | StorageUnavailable:
        """The reply of every submission of a batch whose commit failed: logged, counted and,
        for a failure of the storage, the agent impaired first (``/readyz`` says so)."""
        path, reason = error.path, error.reason
        self._metrics.not_saved.inc(len(batch))
        self.log.error("jobs_not_saved", path=path, error=reason, count=len(batch),
                       request_ids=[s.request_id for s in batch],
                       job_ids=[s.job.id for s in batch])  # fmt: skip
        if isinstance(error, StoreError):
            self.write_failed(error, "Submit")
        return JobsNotSaved(path=path, detail=f"the job was not saved: {path}: {reason}")

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
    def _lease(self, msg: Lease) -> None:
        if self._engine is not None:
            self._engine.lease()

    @handler
    def _refresh(self, msg: Refresh) -> None:
        if self._engine is not None:
            self._engine.refresh()
