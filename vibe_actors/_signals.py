"""Internal signals between cells and supervisors (never serialized, never public)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

__all__ = ["AgentStatus", "ChildExited", "InjectedFault", "RestartDue"]


class AgentStatus(enum.StrEnum):
    """Where an agent is in its life, as shown by ``ActorSystem.tree()``."""

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"  #: crashed (or stopped for a sibling); a new incarnation is due
    STOPPING = "stopping"
    STOPPED = "stopped"  #: stopped for good: sends to it are dead letters


class ChildExited:
    """A child incarnation ended by itself: it crashed, or stopped normally."""

    __slots__ = ("abnormal", "error", "incarnation", "name")

    def __init__(self, name: str, incarnation: int, error: BaseException | None) -> None:
        self.name = name
        self.incarnation = incarnation
        self.error = error
        self.abnormal = error is not None


class InjectedFault:
    """Fault injection (chaos, tests): crash, or hang for ``seconds``, in the agent's thread.

    ``action`` (the test kit's faults): a callable run with the agent, in its
    thread, instead; raising from it crashes the agent like a handler.
    """

    __slots__ = ("action", "kind", "seconds")

    def __init__(
        self, kind: str, seconds: float = 0.0, action: Callable[[Any], None] | None = None
    ) -> None:
        if kind not in ("crash", "hang"):
            raise ValueError(f"fault kind must be 'crash' or 'hang', got {kind!r}")
        self.kind = kind
        self.seconds = seconds
        self.action = action


class RestartDue:
    """A backoff delay has passed: restart these children (if ``token`` is still current)."""

    __slots__ = ("names", "token")

    def __init__(self, names: tuple[str, ...], token: int) -> None:
        self.names = names
        self.token = token
