"""When a durable write fails at run time: answer 503, stay up, recover by itself.

A full disk, an I/O error or a locked file makes a write fail (the store
raises :class:`~vibe_actors.store._database.StoreError`, nothing of the write
is kept). Crashing the agent would not help: the next incarnation finds the
same disk, and a few dozen requests would spend the supervisors' restart
intensity until the process exits. Instead an agent mixing in
:class:`GuardedWrites`:

* answers the request :class:`StorageUnavailable` (503, naming the file; the
  gateway adds ``Retry-After``) and keeps serving everything else (reads);
* reports itself impaired (:meth:`vibe_actors.Agent.impair`), so ``/readyz``
  is not ready and names it while its writes fail;
* probes the store with a one-row write every ``store_retry_interval``
  seconds, and the first write that succeeds (a probe or a request) clears
  the impairment: writes resume by themselves when space returns.

A read that fails (a shared database out of reach) is answered the same way
(:meth:`GuardedWrites.read_failed`).

Metrics: ``vibe_store_write_failures_total{agent}`` counts failed writes,
``vibe_store_read_failures_total{agent}`` failed reads;
``vibe_agents{state="impaired"}`` counts the agents impaired now.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from vibe_actors import Agent, ErrorReply, handler
from vibe_actors.store._database import StoreError
from vibe_actors.store._health_metrics import build_metrics

__all__ = ["GuardedWrites", "StorageUnavailable"]


class StorageUnavailable(ErrorReply):
    """A durable write failed (disk full, I/O error): nothing of it was kept; retry later."""

    agent: str
    path: str
    http_status: ClassVar[int] = 503


class _ProbeStore(msgspec.Struct, frozen=True, tag=True):
    """Try a small write again (internal: not a Message, not routable over HTTP).

    Tagged so that an agent placeable on Ray (quota) can forward it in a msgpack union.
    """

    incarnation: int


class GuardedWrites:
    """Mixin (before ``Agent`` in the bases) for an agent whose durable writes may fail.

    The agent calls :meth:`write_failed` where a write raised
    :class:`StoreError` (and returns its reply), :meth:`write_succeeded` after
    a write committed, and implements :meth:`_probe_store_write`.
    """

    #: Seconds between probes while writes fail.
    store_retry_interval: ClassVar[float] = 1.0

    def _probe_store_write(self) -> None:
        """One small durable write; raises :class:`StoreError` if it fails."""
        raise NotImplementedError

    def write_failed(self, error: StoreError, what: str) -> StorageUnavailable:
        """Log and count the failed write ``what``, impair the agent, start probing.

        Returns the reply for the asker (503).
        """
        detail = f"cannot write {error.path}: {error.reason}; nothing of this {what} was kept"
        return self._failed(error, what, write=True, detail=detail)

    def read_failed(self, error: StoreError, what: str) -> StorageUnavailable:
        """Like :meth:`write_failed`, for a read (a shared database out of reach): logged,
        counted, the agent impaired until a probe write succeeds; returns the 503 reply."""
        return self._failed(
            error, what, write=False, detail=f"cannot read {error.path}: {error.reason}"
        )

    def _failed(
        self, error: StoreError, what: str, *, write: bool, detail: str
    ) -> StorageUnavailable:
        agent = self._as_agent()
        env = agent.envelope
        agent.log.error(
            "store_write_failed" if write else "store_read_failed",
            path=error.path, error=error.reason, **{"write" if write else "read": what},
            request_id=env.request_id if env is not None else None,
        )  # fmt: skip
        metrics = agent.system.shared_metrics("store_health", build_metrics)
        counter = metrics.failures if write else metrics.read_failures
        counter.labels(agent=agent.name).inc()
        agent.impair(f"durable writes fail: {error}" if write else f"reads fail: {error}")
        agent.start_timer(_ProbeStore, _ProbeStore(agent.incarnation), self.store_retry_interval)
        return StorageUnavailable(agent=agent.name, path=error.path, detail=detail)

    def write_succeeded(self) -> None:
        """A write committed: if the agent was impaired, it is not any more."""
        agent = self._as_agent()
        if agent.impaired is None:  # the common case
            return
        agent.cancel_timer(_ProbeStore)
        agent.impair(None)

    @handler
    def _probe_store(self, msg: _ProbeStore) -> None:
        agent = self._as_agent()
        if msg.incarnation != agent.incarnation:
            return
        try:
            self._probe_store_write()
        except StoreError as exc:
            agent.log.warning("store_still_failing", path=exc.path, error=exc.reason)
            agent.start_timer(_ProbeStore, msg, self.store_retry_interval)
            return
        self.write_succeeded()

    def _as_agent(self) -> Agent[Any]:
        assert isinstance(self, Agent)
        return self
