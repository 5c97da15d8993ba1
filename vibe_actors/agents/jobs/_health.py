"""The jobs coordinator on a full disk: state changes kept in order until they can be recorded.

The coordinator records each job's state change (an attempt started, a retry
queued, a job finished) as it decides it. When the store refuses a write (a
full disk, an I/O error: :class:`~vibe_actors.store._database.StoreError`),
crashing would not help (the next incarnation finds the same disk) and would
drop every attempt in flight. Instead the :class:`Recorder` keeps that change
and every later one in memory, in order, with each job as it is now; the
coordinator goes on running the jobs it admitted, is impaired (readiness
names it, see :mod:`~vibe_actors.store._health`) and probes the store.
When a probe's write succeeds the kept changes are recorded, in order, in
transactions of up to :data:`BATCH`, and the impairment clears once none
is left.

Meanwhile ``Status`` and ``List`` show the jobs as they are in memory
(:meth:`Recorder.get`, :meth:`Recorder.listing`), pruning waits, and a write
that must be durable before it is answered (a Submit's batch, a Cancel)
first records what was kept, and is refused (503) if that fails.
"""

from __future__ import annotations

from collections.abc import Callable

from vibe_actors.agents.jobs._store import JobRow, JobStore, Transition, after
from vibe_actors.store import StoreError

__all__ = ["BATCH", "Recorder"]

#: The most kept changes recorded in one transaction when the store takes writes again.
BATCH = 256


class Recorder:
    """The jobs' state changes: recorded at once, or kept in order while writes fail.

    ``failed(error, what)`` is called when a write fails (the agent impairs
    itself and starts probing: :meth:`GuardedWrites.write_failed`) and
    ``succeeded()`` when one commits (:meth:`GuardedWrites.write_succeeded`).
    The agent's probe calls :meth:`catch_up`. Coordinator thread only.
    """

    def __init__(
        self,
        store: JobStore,
        failed: Callable[[StoreError, str], object],
        succeeded: Callable[[], None],
    ) -> None:
        self.store = store
        self._failed = failed
        self._succeeded = succeeded
        #: Changes not recorded yet, oldest first.
        self._kept: list[Transition] = []
        #: Each job a kept change is about, as it is now (the file holds it as it was).
        self._jobs: dict[str, JobRow] = {}

    def report_failure(self, error: StoreError, what: str) -> None:
        """A write of the agent's own (a claim, a lease) failed: impaired, probing."""
        self._failed(error, what)

    @property
    def kept(self) -> int:
        """How many changes wait to be recorded."""
        return len(self._kept)

    # -- reads: the jobs as they are now -----------------------------------------------

    def get(self, job_id: str) -> JobRow | None:
        row = self._jobs.get(job_id)
        return row if row is not None else self.store.get(job_id)

    def listing(self, state: str | None, limit: int) -> list[JobRow]:
        """The ``limit`` most recently submitted jobs (in ``state`` if given), newest first."""
        jobs = self._jobs
        if not jobs:
            return self.store.listing(state, limit)
        if state is None:  # the same jobs as in the file, some of them changed
            return [jobs.get(row.id, row) for row in self.store.listing(None, limit)]
        # A job changed in memory may have entered or left ``state``: ask for those
        # too, and for enough more that ``limit`` remain once those that left are out.
        rows = self.store.listing(state, limit + len(jobs), also=jobs.keys())
        now = (jobs.get(row.id, row) for row in rows)
        return [row for row in now if row.state == state][:limit]

    # -- writes ----------------------------------------------------------------------

    def record(self, change: Transition) -> None:
        """Record ``change``, or keep it (after those kept before it) if the store refuses."""
        if not self._kept:
            try:
                self.store.record((change,))
            except StoreError as exc:
                self._failed(exc, "job state change")
            else:
                self._succeeded()
                return
        row = self.get(change.job_id)
        self._kept.append(change)
        if row is not None:
            self._jobs[change.job_id] = after(row, change)

    def record_now(self, change: Transition) -> JobRow | None:
        """Record what was kept, then ``change``, before returning the job as it is then.

        Raises :class:`StoreError` if it cannot (``change`` is not kept).
        """
        self.catch_up()
        self.store.record((change,))
        self._succeeded()
        return self.store.get(change.job_id)

    def catch_up(self) -> None:
        """Record the kept changes in order; raises :class:`StoreError` (the rest stay kept)."""
        while self._kept:
            batch = self._kept[:BATCH]
            self.store.record(batch)
            del self._kept[: len(batch)]
        self._jobs.clear()

    def prune(self, keep: int) -> int:
        """Delete finished jobs beyond the ``keep`` latest; returns how many.

        Not while changes are kept (the file does not hold every job's state
        yet); a failed prune is retried with a later one.
        """
        if self._kept:
            return 0
        try:
            pruned = self.store.prune(keep)
        except StoreError as exc:
            self._failed(exc, "prune of finished jobs")
            return 0
        self._succeeded()
        return pruned
