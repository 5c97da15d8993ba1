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
    """A child incarnation ended by itself: it crashed, or stopped normally.

    ``source`` is the child's cell (None: not known). A supervisor ignores a
    signal from a cell that is no longer its child of that name: a name can
    be taken again by a new cell (a dynamic child terminated and started
    again), whose incarnations count from 1 again.
    """

    __slots__ = ("abnormal", "error", "incarnation", "name", "source")

    def __init__(
        self, name: str, incarnation: int, error: BaseException | None, source: object = None
    ) -> None:
        self.name = name
        self.incarnation = incarnation
        self.error = error
        self.abnormal = error is not None
        self.source = source


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
