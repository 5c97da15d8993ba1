"""Runtime events: what supervision did, as messages anyone can subscribe to.

The audit agent records them; tests and operators may subscribe too. Each
event is a :class:`Message`, so it can be sent, stored or serialized as is.
Subscribers run in the emitting thread and must be quick (forward with a
``tell``); a failing subscriber is logged and kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog
from msgspec import structs

from vibe_actors._messages import Message
from vibe_actors._subscribers import Subscribers

__all__ = [
    "AgentAbandoned",
    "AgentCrashedEvent",
    "AgentRestarted",
    "CircuitOpened",
    "DeadLettered",
    "DynamicChildStarted",
    "DynamicChildTerminated",
    "EventStream",
    "RuntimeEvent",
    "SupervisorGaveUp",
    "TreeReloaded",
]

_log = structlog.get_logger("vibe_actors.events")


class RuntimeEvent(Message, kw_only=True):
    """Base of every runtime event; ``at`` is wall-clock seconds (time.time())."""

    at: float = 0.0


class AgentCrashedEvent(RuntimeEvent):
    """A handler raised (or ``on_start`` failed); the supervisor decides next."""

    agent: str
    incarnation: int
    error: str
    message_type: str | None = None


class AgentRestarted(RuntimeEvent):
    """A supervisor started a new incarnation of ``agent``."""

    agent: str
    incarnation: int
    supervisor: str


class SupervisorGaveUp(RuntimeEvent):
    """Restart intensity exceeded: ``supervisor`` stopped its children and failed upward."""

    supervisor: str
    reason: str


class AgentAbandoned(RuntimeEvent):
    """An incarnation did not stop within its shutdown timeout and was abandoned."""

    agent: str
    reason: str


class CircuitOpened(RuntimeEvent):
    """Requests of ``message_type`` to ``agent`` are refused for ``seconds``: they kept
    crashing its handler (a poison request must not spend the supervisors' restarts)."""

    agent: str
    message_type: str
    crashes: int
    seconds: float
    #: Who refuses them (a gateway).
    by: str
    #: The request whose crash opened it.
    request_id: str | None = None


class DeadLettered(RuntimeEvent):
    """A message could not be delivered or handled."""

    agent: str
    reason: str
    message_type: str


class DynamicChildStarted(RuntimeEvent):
    """``supervisor`` (a dynamic supervisor) started ``agent`` at run time (start_child)."""

    agent: str
    supervisor: str
    #: The Agent class, ``module:Class``.
    agent_class: str
    request_id: str | None = None


class DynamicChildTerminated(RuntimeEvent):
    """A dynamic child left its supervisor for good; its name is free again.

    ``reason``: ``terminated`` (terminate_child), ``supervisor restarted``
    (a dynamic supervisor restarts empty, as in OTP), or the exit of a child
    that is not restarted (a temporary one; a transient one that stopped):
    ``normal`` or its failure, ``ExcType: message``.
    """

    agent: str
    supervisor: str
    reason: str
    request_id: str | None = None


class TreeReloaded(RuntimeEvent):
    """A live reload was applied."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


class ReloadRejected(RuntimeEvent):
    """A live reload was refused before anything changed (an invalid wiring file).

    Published by whatever reloads (the gateway on SIGHUP); ``problems`` are its
    one-line problems (``file:line:col: path: message``), never a secret's value.
    """

    problems: tuple[str, ...]


class EventStream:
    """Publish/subscribe for :class:`RuntimeEvent` within one system."""

    def __init__(self) -> None:
        self._subscribers: Subscribers[RuntimeEvent] = Subscribers(_log, "event_subscriber_failed")

    def subscribe(self, callback: Callable[[RuntimeEvent], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns the unsubscribe function
        (idempotent)."""
        return self._subscribers.subscribe(callback)

    def publish(self, event: RuntimeEvent) -> None:
        """Deliver ``event`` (stamped with the time if ``at`` is 0) to every subscriber."""
        if not event.at:
            event = _stamped(event)
        self._subscribers.notify(event, event_type=type(event).__name__)


def _stamped(event: RuntimeEvent) -> RuntimeEvent:
    return structs.replace(event, at=time.time())
