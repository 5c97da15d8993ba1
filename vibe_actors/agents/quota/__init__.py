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

Across a restart the agent keeps nothing: the buckets are rebuilt from the
configuration, full. A crash therefore grants every principal one more burst;
the limits themselves are never lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import ClassVar

from vibe_actors import Agent, handler
from vibe_actors.agents.quota.protocol import (
    WILDCARD,
    Acquire,
    CostExceedsBurst,
    Denied,
    Granted,
    Limit,
    QuotaConfig,
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
        keys = select(self.limits, principal, agent)
        if not keys:
            return Granted(remaining=None)
        for index, _, _ in keys:
            if cost > self.limits[index].burst:
                return CostExceedsBurst(
                    limit=index,
                    detail=f"cost {cost} exceeds the burst {self.limits[index].burst} of limit {index}",
                )
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


class Quota(Agent[Acquire]):
    """Rate limits as a service: ``Acquire`` -> ``Granted``, ``Denied`` or ``CostExceedsBurst``.

    Uses the system's clock. State (bucket levels) is per incarnation: a
    restart rebuilds full buckets from the configuration.
    """

    Config: ClassVar = QuotaConfig

    def on_start(self) -> None:
        settings = self.config
        self.buckets = QuotaBuckets(
            settings.limits, clock=self.system.clock, max_buckets=settings.max_buckets
        )

    @handler
    def acquire(self, msg: Acquire) -> Granted | Denied | CostExceedsBurst:
        reply = self.buckets.acquire(msg.principal, msg.agent, msg.cost)
        if isinstance(reply, Denied):
            self.log.debug(
                "quota_denied", principal=msg.principal, target=msg.agent, limit=reply.limit
            )
        return reply
