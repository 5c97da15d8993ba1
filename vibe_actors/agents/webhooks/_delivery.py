"""The webhooks agent's delivery machinery: circuit breakers and HTTP worker threads.

HTTP never runs in the agent's thread: :class:`Workers` are daemon threads
owned by one incarnation of the agent; they resolve and check hosts
(:class:`Check`) and post deliveries (:class:`Post`) with a
:class:`~vibe_actors.agents.webhooks._http_client.PinnedClient`, and report each
result to the agent with ``tell`` (:class:`Checked`, :class:`Attempted`:
plain Structs, outside the public protocol, not forgeable over HTTP). A
:class:`Breaker` per URL is kept by the agent, in its thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import msgspec
import structlog

from vibe_actors import Ref
from vibe_actors.agents.webhooks._http_client import PinnedClient, Refused, ResolutionFailed

__all__ = [
    "Attempted",
    "Breaker",
    "Check",
    "Checked",
    "Outcome",
    "Pending",
    "Post",
    "Workers",
    "is_retryable",
    "origin",
]

_log = structlog.get_logger("vibe_actors.agents.webhooks")

_RETRYABLE_STATUS = frozenset({408, 425, 429})


def origin(url: str) -> str:
    """``scheme://host[:port]``: what may be shown of a URL (paths can hold tokens)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "<invalid URL>"
    host = parsed.netloc.decode("ascii", "replace").rpartition("@")[2]
    return f"{parsed.scheme}://{host}"


def is_retryable(outcome: str, status: int | None) -> bool:
    if outcome in ("network_error", "circuit_open"):
        return True
    if outcome == "http_error" and status is not None:
        return status in _RETRYABLE_STATUS or status >= 500
    return False


# -- worker reports (internal messages) --------------------------------------------------


class Checked(msgspec.Struct, frozen=True):
    incarnation: int
    token: str
    refusal: str | None


#: What became of one delivery attempt (DeliveryRecord.outcome).
Outcome = Literal[
    "delivered", "http_error", "network_error", "refused", "circuit_open", "dropped",
    "cancelled", "error",
]  # fmt: skip


class Attempted(msgspec.Struct, frozen=True):
    incarnation: int
    delivery: str
    attempt: int
    outcome: Outcome
    status: int | None
    error: str | None


# -- the circuit breaker --------------------------------------------------------------


class Breaker:
    """closed -> open after ``threshold`` consecutive failures -> half-open after ``cooldown``.

    Half-open lets one trial through: its success closes the circuit, its
    failure opens it again. Used from one thread (the agent's).
    """

    def __init__(self, threshold: int, cooldown: float) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.failures = 0
        self.opened_at: float | None = None
        self.trial = False

    def state(self, now: float) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.trial or now - self.opened_at >= self.cooldown else "open"

    def allow(self, now: float) -> bool:
        """Whether an attempt may go now (taking the half-open trial if it is due)."""
        if self.opened_at is None:
            return True
        if self.trial or now - self.opened_at < self.cooldown:
            return False
        self.trial = True
        return True

    def reopens_in(self, now: float) -> float:
        return 0.0 if self.opened_at is None else max(0.0, self.opened_at + self.cooldown - now)

    def success(self) -> None:
        self.failures, self.opened_at, self.trial = 0, None, False

    def failure(self, now: float) -> None:
        self.failures += 1
        if self.trial or self.failures >= self.threshold:
            self.opened_at, self.trial = now, False

    def release(self) -> None:
        """An attempt ended without saying anything about the endpoint."""
        self.trial = False


# -- delivery threads -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    token: str
    url: str


@dataclass(frozen=True, slots=True)
class Post:
    delivery: str
    attempt: int
    url: str
    body: bytes
    headers: dict[str, str]


def _post(client: PinnedClient, job: Post) -> tuple[Outcome, int | None, str | None]:
    try:
        status = client.post(job.url, job.body, job.headers)
    except Refused as exc:
        return "refused", None, str(exc)
    except ResolutionFailed as exc:
        return "network_error", None, str(exc)
    except httpx.HTTPError as exc:
        return "network_error", None, f"{type(exc).__name__}: {exc}"
    if 200 <= status < 300:
        return "delivered", status, None
    return "http_error", status, f"HTTP {status}"


def _check(client: PinnedClient, url: str) -> str | None:
    try:
        client.check(url)
    except (Refused, ResolutionFailed) as exc:
        return str(exc)
    return None


class Workers:
    """Daemon threads running checks and posts for one incarnation, reporting with ``tell``."""

    def __init__(
        self,
        name: str,
        count: int,
        make_client: Callable[[], PinnedClient],
        me: Ref,
        incarnation: int,
    ) -> None:
        self._jobs: queue.SimpleQueue[Check | Post | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._make_client = make_client
        self._me = me
        self._incarnation = incarnation
        self.threads = [
            threading.Thread(
                target=self._loop, name=f"webhooks:{name}#{incarnation}:{n}", daemon=True
            )
            for n in range(count)
        ]
        for thread in self.threads:
            thread.start()

    def submit(self, job: Check | Post) -> None:
        self._jobs.put(job)

    def stop(self) -> None:
        """Ask every thread to end after its current job; queued jobs are not run."""
        self._stopping.set()
        for _ in self.threads:
            self._jobs.put(None)

    def _loop(self) -> None:
        client = self._make_client()
        try:
            while (job := self._jobs.get()) is not None and not self._stopping.is_set():
                result = self._run(client, job)
                if self._stopping.is_set():
                    _log.info("webhook_result_discarded", agent=self._me.name, reason="stopping")
                    return
                self._me.tell(result)
        finally:
            client.close()

    def _run(self, client: PinnedClient, job: Check | Post) -> Checked | Attempted:
        if isinstance(job, Check):
            return Checked(self._incarnation, job.token, _check(client, job.url))
        try:
            outcome, status, error = _post(client, job)
        except Exception as exc:  # noqa: BLE001 - reported as the attempt's outcome, and logged
            _log.exception("webhook_attempt_bug", agent=self._me.name, delivery=job.delivery)
            outcome, status, error = "error", None, type(exc).__name__
        return Attempted(self._incarnation, job.delivery, job.attempt, outcome, status, error)


@dataclass(slots=True)
class Pending:
    """An unfinished delivery (agent thread only)."""

    delivery: str
    subscription: str
    topic: str
    seq: int | None
    url: str
    body: bytes
    headers: dict[str, str]
    #: The subscription's secret: each attempt is signed anew (its timestamp is its own).
    secret: str = field(default="", repr=False)
    attempt: int = 0
    #: The trace the event was delivered in (tracing on), and the current attempt's span.
    traceparent: str | None = None
    span: Any = None
