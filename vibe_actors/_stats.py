"""Per-agent counters written by the agent's own thread, read at scrape time.

Updating prometheus-client metrics costs a lock per call; at a million
messages a second that is most of the budget. Each agent instead counts into
plain dicts and a bucket list that only its thread writes (so no lock), and
:mod:`vibe_actors._collector` turns them into Prometheus families on scrape.
"""

from __future__ import annotations

import bisect
import threading

__all__ = ["DURATION_BUCKETS", "AgentStats", "ChildStarts", "FailureCounts", "Outcome"]

#: Upper bounds (seconds) of ``vibe_message_duration_seconds``; handlers run in µs to s.
DURATION_BUCKETS: tuple[float, ...] = (
    0.00001,
    0.00005,
    0.0001,
    0.0005,
    0.001,
    0.005,
    0.01,
    0.05,
    0.1,
    0.5,
    1.0,
    5.0,
)


class Outcome:
    """Values of the ``outcome`` label of ``vibe_messages_total``."""

    OK = "ok"  #: handled; an ask got its reply
    ERROR_REPLY = "error_reply"  #: handled; the reply was an ErrorReply
    CRASHED = "crashed"  #: the handler raised
    FAILED = "failed"  #: the handler raised and the agent resumed (Directive.RESUME)
    EXPIRED = "expired"  #: an ask's deadline passed before its handler started
    UNHANDLED = "unhandled"  #: no handler for the type


class AgentStats:
    """Message counts by type and outcome, and a duration histogram, for one agent name.

    One dict per outcome, keyed by message class, so the hot path builds no
    tuple: the receive loop updates these attributes inline.
    """

    __slots__ = (
        "buckets",
        "by_outcome",
        "crashed",
        "duration_sum",
        "error_reply",
        "expired",
        "failed",
        "ok",
        "restarts",
        "unhandled",
    )

    def __init__(self) -> None:
        self.ok: dict[type, int] = {}
        self.error_reply: dict[type, int] = {}
        self.crashed: dict[type, int] = {}
        self.failed: dict[type, int] = {}
        self.expired: dict[type, int] = {}
        self.unhandled: dict[type, int] = {}
        self.by_outcome: dict[str, dict[type, int]] = {
            Outcome.OK: self.ok,
            Outcome.ERROR_REPLY: self.error_reply,
            Outcome.CRASHED: self.crashed,
            Outcome.FAILED: self.failed,
            Outcome.EXPIRED: self.expired,
            Outcome.UNHANDLED: self.unhandled,
        }
        self.buckets: list[int] = [0] * (len(DURATION_BUCKETS) + 1)
        #: One-element list: ``sums[0] += d`` is cheaper than an attribute store.
        self.duration_sum: list[float] = [0.0]
        self.restarts = 0

    def record(self, message_type: type, outcome: str, duration: float) -> None:
        """Count one handled message (only from the agent's thread; the loop inlines this)."""
        counts = self.by_outcome[outcome]
        counts[message_type] = counts.get(message_type, 0) + 1
        self.buckets[bisect.bisect_left(DURATION_BUCKETS, duration)] += 1
        self.duration_sum[0] += duration

    def count(self, message_type: type, outcome: str) -> None:
        """Count a message that reached no handler (no duration)."""
        counts = self.by_outcome[outcome]
        counts[message_type] = counts.get(message_type, 0) + 1

    def items(self) -> list[tuple[type, str, int]]:
        """(message type, outcome, count) for everything counted so far."""
        return [
            (message_type, outcome, n)
            for outcome, counts in self.by_outcome.items()
            for message_type, n in list(counts.items())
        ]

    def total(self, outcome: str | None = None) -> int:
        """Messages counted so far, optionally of one outcome."""
        return sum(n for _, o, n in self.items() if outcome in (None, o))


class FailureCounts:
    """Supervisors that gave up and incarnations abandoned, counted by name (thread-safe).

    Read by the metrics (``vibe_escalations_total``, ``vibe_abandoned_total``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._escalations: dict[str, int] = {}
        self._abandoned: dict[str, int] = {}

    def escalated(self, supervisor: str) -> None:
        with self._lock:
            self._escalations[supervisor] = self._escalations.get(supervisor, 0) + 1

    def abandoned(self, agent: str) -> None:
        with self._lock:
            self._abandoned[agent] = self._abandoned.get(agent, 0) + 1

    def escalations(self) -> dict[str, int]:
        with self._lock:
            return dict(self._escalations)

    def abandonments(self) -> dict[str, int]:
        with self._lock:
            return dict(self._abandoned)


class ChildStarts:
    """Requests to start a dynamic child, by supervisor and outcome (thread-safe).

    Outcomes: ``started``, ``start_failed``, ``full``, ``name_taken``. Read by
    the metrics (``vibe_dynamic_child_starts_total``).
    """

    OUTCOMES = ("started", "start_failed", "full", "name_taken")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}

    def count(self, supervisor: str, outcome: str) -> None:
        with self._lock:
            key = (supervisor, outcome)
            self._counts[key] = self._counts.get(key, 0) + 1

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)
