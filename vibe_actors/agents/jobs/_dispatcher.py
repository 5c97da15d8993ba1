"""The jobs coordinator's dispatcher: the queue, the attempts in flight, the worker pool's state.

The :class:`~vibe_actors.agents.jobs.Jobs` agent owns one :class:`JobDispatcher` per
incarnation (built once its store is open and recovered) and delegates to it
everything past its public protocol: dispatching queued jobs to idle
workers, ending attempts (success, retry after a backoff, failure), probing
workers and following the pool's membership. Used from the agent's thread
only; it acts through the agent (``ref``, timers, ``log``) and tells the
agent the internal messages of :mod:`~vibe_actors.agents.jobs._internal`,
each stamped with the incarnation. Nothing here survives a restart: the
next incarnation rebuilds it from the store.

Each job's state change goes through the agent's
:class:`~vibe_actors.agents.jobs._health.Recorder`, and so does each read of
a job: on a full disk the changes are kept in memory, in order, and the
engine goes on from the jobs as they are there.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import Any

import msgspec

from vibe_actors import Agent, DeadlineExceeded, Ping, Pong, _tracing, backoff_delay
from vibe_actors.agents.jobs._health import Recorder
from vibe_actors.agents.jobs._internal import (
    Done,
    Flight,
    Freed,
    Lease,
    Probe,
    Refresh,
    Retry,
    Timeout,
    describe,
)
from vibe_actors.agents.jobs._metrics import Metrics
from vibe_actors.agents.jobs._process import START_TIMEOUT
from vibe_actors.agents.jobs._store import JobRow, Transition
from vibe_actors.agents.jobs._worker import Run, RunResult
from vibe_actors.agents.jobs.protocol import JobsConfig
from vibe_actors.store import StoreError

__all__ = ["JobDispatcher"]

#: A probe waits behind the job in the worker's mailbox; it may take as long as the job.
_PROBE_TIMEOUT = 86_400.0
#: What a worker may add to a job's timeout: its process's start-up, then a kill
#: (SIGTERM, SIGKILL after kill_grace <= 10 s, a reap of <= 5 s).
_WORKER_SLACK = START_TIMEOUT + 20.0
_REPROBE_AFTER = 1.0
_REFRESH_EVERY = 5.0
_PRUNE_EVERY = 256


class JobDispatcher:
    """Queue and worker state of one incarnation of the jobs coordinator."""

    def __init__(
        self, agent: Agent, jobs: Recorder, metrics: Metrics, settings: JobsConfig
    ) -> None:
        self._agent = agent
        #: Reads and records the jobs (the store behind it: ``jobs.store``).
        self.jobs = jobs
        self._metrics = metrics
        self._settings = settings
        self._me = agent.ref(agent.name)
        self._ready: deque[str] = deque()
        self._queued: set[str] = set()  #: ready to dispatch (in _ready) and not cancelled
        self._backoff: set[str] = set()  #: waiting for a retry timer
        self._flights: dict[str, Flight] = {}
        self._known: set[str] = set()  #: worker names
        self._idle: dict[str, None] = {}  #: workers known to be idle (an ordered set)
        self._probing: set[str] = set()  #: workers with a Ping outstanding
        self._finished = 0
        #: A shared store: jobs are taken from the table by claims (leases), not from _ready.
        self._shared = jobs.store.shared

    def start(self, requeued: int, failed: int) -> None:
        """Queue the jobs the store holds as queued, find the workers, follow the pool."""
        queued = [] if self._shared else self.jobs.store.ids("queued")
        if self._shared:
            self._agent.start_timer("lease", Lease(), self._settings.lease / 3, repeat=True)
        self._ready.extend(queued)
        self._queued.update(queued)
        self._agent.log.info("jobs_started", queued=len(queued), requeued=requeued, failed=failed)
        self._gauges()
        self.refresh()
        self._agent.start_timer("refresh", Refresh(), _REFRESH_EVERY, repeat=True)

    def submitted(self, job_ids: Iterable[str]) -> None:
        """Jobs just committed as queued: dispatch them."""
        count = 0
        for job_id in [] if self._shared else job_ids:
            self._ready.append(job_id)
            self._queued.add(job_id)
            count += 1
        self._agent.log.debug("jobs_submitted", count=count)
        self._pump()

    def cancel(self, row: JobRow) -> JobRow:
        """Cancel unfinished job ``row``; the job as it is now.

        Recorded before it returns (the answer acknowledges it): raises
        :class:`~vibe_actors.store._database.StoreError`, changing nothing, if it cannot be.
        """
        agent = self._agent
        updated = self.jobs.record_now(
            Transition(row.id, "cancelled", None, row.error, time.time())
        )
        self._queued.discard(row.id)
        if row.id in self._backoff:
            self._backoff.discard(row.id)
            agent.cancel_timer(("retry", row.id))
        flight = self._flights.get(row.id)
        if flight is not None:
            flight.cancelled = True  # its worker stays busy until the attempt ends
        self._metrics.total.labels(kind=row.kind, outcome="cancelled").inc()
        agent.log.info("job_cancelled", job_id=row.id, kind=row.kind, was=row.state)
        self._gauges()
        self._finished_one()
        assert updated is not None
        return updated

    # -- dispatching ----------------------------------------------------------------------

    def _pump(self) -> None:
        """Start queued jobs while a slot and an idle worker are free."""
        if self._shared:
            self._claim()
            return
        jobs, limit = self.jobs, self._settings.max_concurrency
        while self._ready and self._idle and len(self._flights) < limit:
            job_id = self._ready.popleft()
            if job_id not in self._queued:
                continue  # cancelled while queued
            self._queued.discard(job_id)
            row = jobs.get(job_id)
            if row is None or row.state != "queued":
                continue
            target = self._settings.kinds.get(row.kind)
            if target is None:  # the configuration changed since it was submitted
                self._fail(row.id, row.kind, f"unknown kind {row.kind!r}", None)
                continue
            worker = next(iter(self._idle))
            del self._idle[worker]
            jobs.record(Transition(job_id, "running"))
            self._dispatch(row, target, worker, row.attempts + 1)
        self._gauges()

    def _claim(self) -> None:
        """A shared store: take as many queued jobs as there are free slots and idle
        workers (oldest first, whichever replica submitted them), and start them."""
        free = min(len(self._idle), self._settings.max_concurrency - len(self._flights))
        now = time.time()
        try:
            taken = self.jobs.store.claim(free, now, now + self._settings.lease) if free else []
        except StoreError as exc:
            self.jobs.report_failure(exc, "claim of queued jobs")
            return
        for job_id in taken:
            row = self.jobs.get(job_id)
            if row is None:
                continue
            target = self._settings.kinds.get(row.kind)
            if target is None:  # the configuration changed since it was submitted
                self._fail(row.id, row.kind, f"unknown kind {row.kind!r}", row.attempts)
                continue
            worker = next(iter(self._idle))
            del self._idle[worker]
            self._dispatch(row, target, worker, row.attempts)
        self._gauges()

    def lease(self) -> None:
        """A shared store: renew this coordinator's leases, requeue the jobs whose
        coordinator stopped renewing its own (another replica died), take queued jobs."""
        store, now = self.jobs.store, time.time()
        try:
            store.renew(now + self._settings.lease)
            requeued, failed = store.expire(now)
        except StoreError as exc:
            self.jobs.report_failure(exc, "renewal of job leases")
            return
        if requeued or failed:
            self._agent.log.warning("jobs_leases_expired", requeued=requeued, failed=failed)
        self._pump()

    def _dispatch(self, row: JobRow, target: str, worker: str, attempt: int) -> None:
        agent = self._agent
        me, incarnation, job_id = self._me, agent.incarnation, row.id

        def done(reply: Any) -> None:  # in the resolving thread: only a tell
            if isinstance(reply, RunResult):
                me.tell(Done(incarnation, job_id, attempt, reply.ok, reply.result, reply.error,
                              reply.seconds, free=True))  # fmt: skip
            else:
                me.tell(Done(incarnation, job_id, attempt, False, None, describe(reply), None,
                              free=False))  # fmt: skip

        run = Run(job_id=job_id, kind=row.kind, target=target, args=row.args, attempt=attempt,
                  timeout=row.timeout, caller=row.caller)  # fmt: skip
        # A job runs on its own timeout, not on the deadline of the Submit that queued it.
        ref = agent.ref(worker).without_deadline()
        attributes = {"vibe.job.id": job_id, "vibe.job.kind": row.kind, "vibe.job.attempt": attempt}
        span = _tracing.start("job attempt", row.traceparent, attributes)
        if span is None:
            future = ref.ask_future(run, timeout=row.timeout, callback=done)
        else:  # the worker's handling of the Run is the attempt span's child
            with _tracing.using(span):
                future = ref.ask_future(run, timeout=row.timeout, callback=done)
        self._flights[job_id] = Flight(
            job_id, row.kind, worker, attempt, row.retries, future, span=span
        )
        # The worker enforces the timeout (from when its process is ready: kills the
        # process, answers "timed out"). The ask's deadline only holds while the Run is
        # queued; this timer is the backstop for a worker that never answers (resolving
        # the future here sends the same Done), so it allows for a process start-up and
        # a kill on top of the job's own time.
        backstop = row.timeout + _WORKER_SLACK
        agent.start_timer(("timeout", job_id), Timeout(job_id, attempt), backstop)
        agent.log.debug("job_started", job_id=job_id, kind=row.kind, attempt=attempt,
                        worker=worker)  # fmt: skip

    def timeout(self, msg: Timeout) -> None:
        flight = self._flights.get(msg.job_id)
        if flight is not None and flight.attempt == msg.attempt:
            flight.future.resolve(
                DeadlineExceeded(agent=flight.worker, timeout=flight.future.timeout)
            )

    def done(self, msg: Done) -> None:
        """An attempt of this incarnation ended (the agent checked the incarnation)."""
        flight = self._flights.get(msg.job_id)
        if flight is None or flight.attempt != msg.attempt:
            return
        del self._flights[msg.job_id]
        self._agent.cancel_timer(("timeout", msg.job_id))
        self._worker_done(flight.worker, msg.free)
        if msg.seconds is not None:
            self._metrics.duration.labels(kind=flight.kind).observe(msg.seconds)
        if flight.span is not None:
            outcome = "cancelled" if flight.cancelled else "succeeded" if msg.ok else "failed"
            _tracing.finish(flight.span, outcome, None if msg.ok else msg.error or "failed")
        if flight.cancelled:
            self._agent.log.info("job_result_ignored", job_id=msg.job_id, reason="cancelled",
                                 ok=msg.ok)  # fmt: skip
        elif msg.ok:
            self._succeed(flight, msg.result)
        else:
            self._attempt_failed(flight, msg.error or "failed")
        self._pump()

    def _succeed(self, flight: Flight, result: Any) -> None:
        encoded = msgspec.json.encode(result)
        self.jobs.record(Transition(flight.job_id, "succeeded", encoded, None, time.time()))
        self._metrics.total.labels(kind=flight.kind, outcome="succeeded").inc()
        self._agent.log.info("job_succeeded", job_id=flight.job_id, kind=flight.kind,
                             attempt=flight.attempt)  # fmt: skip
        self._finished_one()

    def _attempt_failed(self, flight: Flight, error: str) -> None:
        if flight.attempt > flight.retries:
            self._fail(flight.job_id, flight.kind, error, flight.attempt)
            return
        settings = self._settings
        delay = backoff_delay(
            flight.attempt,
            initial=settings.backoff_initial,
            maximum=settings.backoff_max,
            jitter=settings.backoff_jitter,
        )
        # On a shared store ``at`` is when any replica may take the job again.
        self.jobs.record(Transition(flight.job_id, "queued", error=error, at=time.time() + delay))
        self._backoff.add(flight.job_id)
        self._agent.start_timer(("retry", flight.job_id), Retry(flight.job_id), delay)
        self._metrics.total.labels(kind=flight.kind, outcome="retried").inc()
        self._agent.log.warning("job_retry", job_id=flight.job_id, kind=flight.kind,
                                attempt=flight.attempt, error=error, retry_in=delay)  # fmt: skip

    def _fail(self, job_id: str, kind: str, error: str, attempt: int | None) -> None:
        self.jobs.record(Transition(job_id, "failed", None, error, time.time()))
        self._metrics.total.labels(kind=kind, outcome="failed").inc()
        self._agent.log.warning("job_failed", job_id=job_id, kind=kind, attempts=attempt,
                                error=error)  # fmt: skip
        self._finished_one()

    def _finished_one(self) -> None:
        self._finished += 1
        if self._finished % _PRUNE_EVERY == 0:
            pruned = self.jobs.prune(self._settings.keep_finished)
            self._agent.log.debug("jobs_pruned", count=pruned)

    def retry(self, job_id: str) -> None:
        """A retry backoff is over: queue the job again (unless it was cancelled meanwhile)."""
        if job_id in self._backoff:
            self._backoff.discard(job_id)
            if not self._shared:  # a shared store's claim finds it due in the table
                self._ready.append(job_id)
                self._queued.add(job_id)
            self._pump()

    # -- workers ------------------------------------------------------------------------

    def _worker_done(self, worker: str, free: bool) -> None:
        if worker not in self._known:
            return
        if free:
            self._idle[worker] = None
        else:
            self.probe(worker)

    def probe(self, worker: str) -> None:
        """Ask ``worker`` for a Pong: it answers once the job ahead of the Ping is over."""
        if worker not in self._known or worker in self._probing:
            return
        self._probing.add(worker)  # one at a time: a stale Pong must not free a busy worker
        me, incarnation = self._me, self._agent.incarnation

        def answered(reply: Any) -> None:
            me.tell(Freed(incarnation, worker, isinstance(reply, Pong)))

        self._agent.ref(worker).ask_future(Ping(), timeout=_PROBE_TIMEOUT, callback=answered)

    def freed(self, msg: Freed) -> None:
        """A probe was answered (the agent checked the incarnation)."""
        self._probing.discard(msg.worker)
        if msg.worker not in self._known:
            return
        if msg.available:
            if any(f.worker == msg.worker for f in self._flights.values()):
                return  # it has a job again (it was busy while the probe was out)
            self._idle[msg.worker] = None
            self._pump()
        else:  # stopped or not started yet: ask again later
            self._agent.start_timer(("probe", msg.worker), Probe(msg.worker), _REPROBE_AFTER)

    def refresh(self) -> None:
        """Follow the pool's membership (live reload may resize it)."""
        agent = self._agent
        names = set(agent.system.names())
        pool = self._settings.workers
        members = {n for n in names if n.startswith(pool + ".") and n[len(pool) + 1 :].isdigit()}
        if not members and pool in names:
            members = {pool}  # a single worker agent
        if not members and not self._known:
            agent.log.warning("job_workers_missing", workers=pool)
        for gone in self._known - members:
            self._idle.pop(gone, None)
            agent.cancel_timer(("probe", gone))
        for new in members - self._known:
            self._known.add(new)
            self.probe(new)
        self._known = members

    # -- metrics ----------------------------------------------------------------------

    def _gauges(self) -> None:
        if self._shared:  # the queue is every replica's: the gauge is the table's count
            try:
                self._metrics.queued.set(self.jobs.store.count("queued"))
            except StoreError as exc:
                self.jobs.report_failure(exc, "count of queued jobs")
        else:
            self._metrics.queued.set(len(self._queued) + len(self._backoff))
        self._metrics.running.set(sum(1 for f in self._flights.values() if not f.cancelled))
