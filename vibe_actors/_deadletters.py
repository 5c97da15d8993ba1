"""Dead letters: every message that could not be delivered or handled.

Nothing is dropped silently: each dead letter is counted by reason (exported
as ``vibe_dead_letters_total{reason}``), kept in a bounded ring for
inspection, passed to subscribers, and logged at a limited rate (a summary
of suppressed ones follows when logging resumes).
"""

from __future__ import annotations

import collections
import enum
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec
import structlog

from vibe_actors._envelope import Envelope
from vibe_actors._subscribers import Subscribers

__all__ = ["DeadLetter", "DeadLetterReason", "DeadLetters"]

_log = structlog.get_logger("vibe_actors.dead_letters")


class DeadLetterReason(enum.StrEnum):
    """Why a message became a dead letter."""

    UNKNOWN_AGENT = "unknown_agent"  #: sent to a name no agent has
    STOPPED = "stopped"  #: sent to an agent that has stopped
    MAILBOX_FULL = "mailbox_full"  #: refused by a full mailbox (reject, or block timed out)
    DROPPED_OLDEST = "dropped_oldest"  #: evicted from a full drop_oldest mailbox
    DROPPED_NEWEST = "dropped_newest"  #: refused by a full drop_newest mailbox
    LEFT_IN_MAILBOX = "left_in_mailbox"  #: still queued when its agent stopped for good
    UNHANDLED = "unhandled"  #: the agent has no handler for its type
    EXPIRED = "expired"  #: an ask whose deadline passed before its handler started
    FORBIDDEN = "forbidden"  #: the caller it was sent for may not send it there (policy)
    BUFFER_FULL = "buffer_full"  #: dropped by a fan-out for a subscriber too far behind (pubsub)


class DeadLetter(msgspec.Struct, frozen=True):
    """One undeliverable message, as recorded."""

    recipient: str
    reason: DeadLetterReason
    message_type: str
    message: Any
    request_id: str | None
    sender: str | None
    at: float  #: wall-clock time (time.time())


def _redacted(message: Any) -> Any:
    """``message`` with its ``sensitive_fields`` masked (secrets never kept or logged)."""
    fields = getattr(message, "sensitive_fields", None)
    if not fields:
        return message
    return msgspec.structs.replace(message, **{name: "***" for name in fields})


class DeadLetters:
    """The system's dead-letter stream.

    ``publish`` is thread-safe and never raises for a subscriber's failure:
    a failing subscriber is logged with its error and kept.
    """

    def __init__(self, keep: int = 1000, log_per_second: float = 10.0) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {reason.value: 0 for reason in DeadLetterReason}
        self._recent: collections.deque[DeadLetter] = collections.deque(maxlen=keep)
        self._subscribers: Subscribers[DeadLetter] = Subscribers(
            _log, "dead_letter_subscriber_failed"
        )
        self._log_interval = 1.0 / log_per_second if log_per_second > 0 else float("inf")
        self._next_log_at = 0.0
        self._suppressed = 0

    def publish(self, recipient: str, envelope: Envelope, reason: DeadLetterReason) -> None:
        """Record ``envelope`` as undeliverable to ``recipient`` for ``reason``."""
        message = _redacted(envelope.message)
        letter = DeadLetter(
            recipient=recipient,
            reason=reason,
            message_type=type(message).__name__,
            message=message,
            request_id=envelope.request_id,
            sender=envelope.sender,
            at=time.time(),
        )
        now = time.monotonic()
        with self._lock:
            self._counts[reason.value] += 1
            self._recent.append(letter)
            should_log = now >= self._next_log_at
            if should_log:
                suppressed, self._suppressed = self._suppressed, 0
                self._next_log_at = now + self._log_interval
            else:
                self._suppressed += 1
        if should_log:
            _log.warning(
                "dead_letter",
                agent=recipient,
                reason=reason.value,
                message_type=letter.message_type,
                request_id=letter.request_id,
                sender=letter.sender,
                suppressed_since_last=suppressed,
            )
        self._subscribers.notify(letter)

    def subscribe(self, callback: Callable[[DeadLetter], None]) -> Callable[[], None]:
        """Call ``callback`` (in the publishing thread) for every dead letter.

        Returns a function that unsubscribes (idempotent).
        """
        return self._subscribers.subscribe(callback)

    def counts(self) -> dict[str, int]:
        """Dead letters so far, by reason (every reason present, zero included)."""
        with self._lock:
            return dict(self._counts)

    def total(self) -> int:
        """All dead letters so far."""
        with self._lock:
            return sum(self._counts.values())

    def recent(self, limit: int = 100) -> list[DeadLetter]:
        """The newest dead letters, oldest first (at most ``limit``)."""
        with self._lock:
            items = list(self._recent)
        return items[-limit:] if limit > 0 else []
