"""Quota: token-bucket rate limits per principal and per agent.

Each :class:`Limit` is a bucket of ``burst`` tokens refilled at ``rate`` tokens
per second. Its ``principal`` and ``agent`` say whom it applies to:

* a name: that principal (or agent) only;
* ``"*"``: each principal (or agent) separately, one bucket each (the
  anonymous principal, ``None``, has its own);
* ``None``: not a dimension of this limit (shared by all).

So ``Limit(principal="*", rate=10, burst=20)`` limits every principal to 10/s
across all agents, ``Limit(agent="kv", rate=500, burst=500)`` limits the ``kv``
agent as a whole, and ``Limit(principal="*", agent="*", ...)`` each pair.
Among limits of the same shape (which of principal/agent are set) the most
specific one applies (a name beats ``"*"``; on a tie, the first listed);
limits of different shapes all apply. An acquire takes ``cost`` from every
applicable bucket or from none: it is granted only if all of them hold
enough, and otherwise ``retry_after`` is the longest wait among them.

:class:`QuotaBuckets` is the whole mechanism: pure token-bucket math over an
injected clock, guarded by a lock, so a gateway may use it directly from any
thread without an actor hop per request. The :class:`Quota` agent wraps one.

Where the buckets live depends on the system's store:

* SQLite (the default; one process): in memory. Across a restart the agent
  keeps nothing: the buckets are rebuilt from the configuration, full. A
  crash therefore grants every principal one more burst; the limits
  themselves are never lost. Placed on Ray, the agent keeps its buckets in
  memory whatever the store (its host offers it the clock only).
* A shared PostgreSQL store (``store: postgresql://...``, several replicas):
  **global buckets in the database**, one per key for every replica
  (:mod:`vibe_actors.agents.quota._store`): N replicas together grant at most
  ``burst + rate * elapsed`` per bucket, not N times that. Each ``Acquire``
  is one round trip (one statement: refill by the database's clock, take from
  every bucket or none). Levels survive a restart of the agent (a crash
  grants no new burst) but not a crash of the database server, after which
  every bucket starts full. A database out of reach answers
  ``StorageUnavailable`` (503) and impairs the agent until a probe write
  succeeds (:class:`~vibe_actors.store.GuardedWrites`); one that cannot be
  opened at start degrades it (every Acquire ``Unavailable``, 503). Buckets
  full again are deleted every ``sweep_interval`` seconds, so the rows of
  ``"*"`` limits are only those of the principals active within a refill
  time; ``max_buckets`` applies to memory only.

The gateway checks quotas on its request path: from its own in-memory
buckets on SQLite (no hop), by asking this agent on a shared store (see
:mod:`gateway._guards`).

Metrics: ``vibe_quota_acquires_total{agent,outcome}`` (``granted``,
``denied``, ``exceeds_burst``, ``unavailable``; the agent's answers, not the
gateway's in-memory checks) and, on a shared store,
``vibe_quota_buckets{agent}`` (rows held, counted at each sweep).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import ClassVar

import msgspec
from prometheus_client import Counter

from vibe_actors import ActorSystem, Agent, handler
from vibe_actors.agents.quota._metrics import build_metrics
from vibe_actors.agents.quota._store import QuotaStore, bucket_key
from vibe_actors.agents.quota.protocol import (
    WILDCARD,
    Acquire,
    CostExceedsBurst,
    Denied,
    Granted,
    Limit,
    QuotaConfig,
)
from vibe_actors.store import (
    ClosesStore,
    GuardedWrites,
    StorageUnavailable,
    StoreError,
    StoreUrlError,
    degrade_for,
    open_store,
    parse_store_url,
)

__all__ = [
    "Acquire",
    "CostExceedsBurst",
    "Denied",
    "Granted",
    "Limit",
    "Quota",
    "QuotaBuckets",
    "QuotaConfig",
    "TokenBucket",
]

#: Shortfalls below this (relative to the cost) count as none: float rounding,
#: so that waiting exactly ``retry_after`` is always enough.
_EPSILON = 1e-9


# -- the math ---------------------------------------------------------------------


class TokenBucket:
    """One bucket. Not thread-safe by itself (:class:`QuotaBuckets` holds the lock)."""

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = now

    def refill(self, now: float) -> None:
        """Add what accrued since the last refill (a clock going back adds nothing)."""
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def wait(self, cost: float) -> float:
        """Seconds until ``cost`` tokens are available (0: now)."""
        shortfall = cost - self.tokens
        if shortfall <= _EPSILON * max(1.0, cost):
            return 0.0
        return shortfall / self.rate

    def take(self, cost: float) -> None:
        self.tokens = max(0.0, self.tokens - cost)

    def full(self, now: float) -> bool:
        self.refill(now)
        return self.tokens >= self.burst


_Key = tuple[int, str | None, str | None]


def _applies(pattern: str | None, value: str | None) -> bool:
    return pattern is None or pattern in (WILDCARD, value)


def _specificity(limit: Limit) -> int:
    return (limit.principal not in (None, WILDCARD)) + (limit.agent not in (None, WILDCARD))


def select(limits: Sequence[Limit], principal: str | None, agent: str) -> list[_Key]:
    """The bucket keys an acquire by ``principal`` on ``agent`` draws from."""
    best: dict[tuple[bool, bool], tuple[int, int]] = {}
    for index, limit in enumerate(limits):
        if not (_applies(limit.principal, principal) and _applies(limit.agent, agent)):
            continue
        shape = (limit.principal is not None, limit.agent is not None)
        rank = _specificity(limit)
        if shape not in best or rank > best[shape][0]:
            best[shape] = (rank, index)
    keys = []
    for _, index in best.values():
        limit = limits[index]
        keys.append(
            (
                index,
                principal if limit.principal == WILDCARD else None,
                agent if limit.agent == WILDCARD else None,
            )
        )
    return keys


def applicable(
    limits: Sequence[Limit], principal: str | None, agent: str, cost: float
) -> list[_Key] | Granted | CostExceedsBurst:
    """The bucket keys an acquire draws from, or its answer when it needs no bucket."""
    keys = select(limits, principal, agent)
    if not keys:
        return Granted(remaining=None)
    for index, _, _ in keys:
        if cost > limits[index].burst:
            return CostExceedsBurst(
                limit=index,
                detail=f"cost {cost} exceeds the burst {limits[index].burst} of limit {index}",
            )
    return keys


class QuotaBuckets:
    """Every bucket of one set of limits; :meth:`acquire` is atomic and thread-safe.

    ``clock`` returns monotonic seconds (inject a fake one in tests).
    """

    def __init__(
        self,
        limits: Sequence[Limit],
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = 100_000,
    ) -> None:
        self.limits: tuple[Limit, ...] = tuple(limits)
        self._clock = clock
        self._max_buckets = max_buckets
        self._sweep_at = max_buckets
        self._buckets: dict[_Key, TokenBucket] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._buckets)

    def acquire(
        self, principal: str | None, agent: str, cost: float = 1.0
    ) -> Granted | Denied | CostExceedsBurst:
        """Take ``cost`` from every applicable bucket, or from none (see the module docstring)."""
        keys = applicable(self.limits, principal, agent, cost)
        if not isinstance(keys, list):
            return keys
        with self._lock:
            now = self._clock()
            buckets = [self._bucket(key, now) for key in keys]
            for bucket in buckets:
                bucket.refill(now)
            wait, worst = max((b.wait(cost), key[0]) for b, key in zip(buckets, keys, strict=True))
            if wait > 0:
                return Denied(
                    retry_after=wait,
                    limit=worst,
                    detail=f"rate limit {worst}: retry in {wait:.3f}s",
                )
            for bucket in buckets:
                bucket.take(cost)
            return Granted(remaining=min(b.tokens for b in buckets))

    def _bucket(self, key: _Key, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._sweep_at:
                self._sweep(now)
            limit = self.limits[key[0]]
            bucket = self._buckets[key] = TokenBucket(limit.rate, limit.burst, now)
        return bucket

    def _sweep(self, now: float) -> None:
        """Drop full buckets: a new bucket would be full too, so nothing changes."""
        for key in [k for k, b in self._buckets.items() if b.full(now)]:
            del self._buckets[key]
        self._sweep_at = max(self._max_buckets, 2 * len(self._buckets))


class _Sweep(msgspec.Struct, frozen=True, tag="quota._Sweep"):
    """Delete the shared buckets full again (internal: not a Message; tagged, as a private
    message of an agent placeable on Ray must be)."""


class Quota(GuardedWrites, ClosesStore, Agent[Acquire]):
    """Rate limits as a service: ``Acquire`` -> ``Granted``, ``Denied``, ``CostExceedsBurst``
    or, on a shared store out of reach, ``StorageUnavailable`` (503).

    Uses the system's clock in memory, the database's on a shared store (see
    the module docstring). In memory, bucket levels are per incarnation: a
    restart rebuilds full buckets from the configuration.
    """

    Config: ClassVar = QuotaConfig

    def on_start(self) -> None:
        settings = self.config
        self._store: QuotaStore | None = None
        self._outcomes: dict[str, Counter] = {}
        self.buckets = QuotaBuckets(
            settings.limits, clock=self.system.clock, max_buckets=settings.max_buckets
        )
        if not isinstance(self.system, ActorSystem):  # placed on Ray: its host has the clock only
            return
        self._metrics = self.system.shared_metrics("quota", build_metrics)
        self._outcomes = {
            outcome: self._metrics.acquires.labels(agent=self.name, outcome=outcome)
            for outcome in ("granted", "denied", "exceeds_burst", "unavailable")
        }
        if not (settings.limits and _shared(self.system.config.store)):
            return
        try:
            self._store = open_store(QuotaStore, self)
        except StoreError as exc:
            self._close()
            degrade_for(self, exc)
            return
        self.start_timer("sweep", _Sweep(), settings.sweep_interval, repeat=True)
        self.log.info("quota_opened", path=self._store.path, limits=len(settings.limits))

    @property
    def shared(self) -> bool:
        """Whether the buckets are the shared store's (every replica's), not this process's."""
        return self._store is not None

    def _probe_store_write(self) -> None:
        assert self._store is not None  # probes start only after a shared store failed
        self._store.probe_write()

    @handler
    def acquire(self, msg: Acquire) -> Granted | Denied | CostExceedsBurst | StorageUnavailable:
        if self._store is None:
            reply = self.buckets.acquire(msg.principal, msg.agent, msg.cost)
        else:
            try:
                reply = self._acquire_shared(self._store, msg)
            except StoreError as exc:
                self._count("unavailable")
                return self.write_failed(exc, "Acquire")
            self.write_succeeded()
        if isinstance(reply, Denied):
            self._count("denied")
            self.log.debug(
                "quota_denied", principal=msg.principal, target=msg.agent, limit=reply.limit
            )
        elif isinstance(reply, Granted):
            self._count("granted")
        else:
            self._count("exceeds_burst")
        return reply

    def _count(self, outcome: str) -> None:
        counter = self._outcomes.get(outcome)  # none on Ray: no metrics there
        if counter is not None:
            counter.inc()

    def _acquire_shared(
        self, store: QuotaStore, msg: Acquire
    ) -> Granted | Denied | CostExceedsBurst:
        limits = self.buckets.limits
        keys = applicable(limits, msg.principal, msg.agent, msg.cost)
        if not isinstance(keys, list):
            return keys
        rows = sorted((bucket_key(limits[k[0]], k[1], k[2]), k[0]) for k in keys)
        waits, remaining = store.acquire(
            [row for row, _ in rows],
            [limits[index].rate for _, index in rows],
            [limits[index].burst for _, index in rows],
            msg.cost,
            _EPSILON,
        )
        wait, worst = max(zip(waits, (index for _, index in rows), strict=True))
        if wait > 0:
            return Denied(
                retry_after=wait, limit=worst, detail=f"rate limit {worst}: retry in {wait:.3f}s"
            )
        return Granted(remaining=remaining)

    @handler
    def _sweep(self, msg: _Sweep) -> None:
        assert self._store is not None  # the timer runs on a shared store only
        try:
            removed = self._store.sweep()
            held = self._store.count()
        except StoreError as exc:
            self.write_failed(exc, "sweep")  # acquires answer 503 meanwhile, if they fail too
            return
        self.write_succeeded()
        self._metrics.buckets.labels(agent=self.name).set(held)
        if removed:
            self.log.debug("quota_swept", removed=removed, held=held)


def _shared(url: str) -> bool:
    """Whether the system's store URL names a shared database (a malformed one is
    reported by :func:`open_store`, which the agent then calls)."""
    try:
        return parse_store_url(url).shared
    except StoreUrlError:
        return True
