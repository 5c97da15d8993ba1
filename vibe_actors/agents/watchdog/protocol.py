"""The watchdog agent's settings, messages, replies and event (re-exported by
:mod:`vibe_actors.agents.watchdog`); other agents import them from here.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from vibe_actors import Message, RuntimeEvent
from vibe_actors._messages import namespaced

__all__ = [
    "AgentDeclaredHung",
    "AgentWatch",
    "Heartbeat",
    "Incident",
    "Report",
    "WatchdogConfig",
    "WatchdogReport",
]


_tag = namespaced("watchdog")


class _Message(Message, tag=_tag):
    """Base of the watchdog agent's messages: tagged ``watchdog.<ClassName>`` on the wire,
    named by the class name over HTTP."""


_Positive = Annotated[float, msgspec.Meta(gt=0)]


class AgentWatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Per-agent override of the heartbeat deadline and the misses before "hung"."""

    deadline: _Positive | None = None
    misses: Annotated[int, msgspec.Meta(ge=1)] | None = None


class WatchdogConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of :class:`Watchdog`."""

    #: Seconds between heartbeat rounds.
    interval: _Positive = 1.0
    #: Seconds a Ping may take (it is also the Ping's mailbox deadline).
    deadline: _Positive = 1.0
    #: Consecutive misses without progress before an agent is declared hung.
    misses: Annotated[int, msgspec.Meta(ge=1)] = 3
    #: Agents (or pools, or entity kinds: all their workers or shards) never pinged.
    exclude: list[str] = []
    #: Per-agent overrides.
    agents: dict[str, AgentWatch] = {}
    #: Replace hung agents (False: detect, report and count only).
    replace: bool = True
    #: Incidents kept for ``Report{}``.
    keep_incidents: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 100


# -- messages -----------------------------------------------------------------------


class Report(_Message):
    """Ask for the watchdog's view: per-agent heartbeat state and recent incidents."""


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True):
    """One agent's heartbeat state."""

    agent: str
    incarnation: int
    #: Round-trip of the last answered Ping, seconds (None before the first).
    last_rtt: float | None
    #: Consecutive misses so far.
    misses: int
    #: "ok", "slow" (missing but draining) or "unresponsive" (missing, not draining).
    state: str
    hung: int


class Incident(msgspec.Struct, frozen=True, kw_only=True):
    """A hung agent that was declared (and replaced, if ``replaced``)."""

    agent: str
    incarnation: int
    at: float
    reason: str
    stack: str | None
    replaced: bool


class WatchdogReport(_Message):
    """The reply to :class:`Report`."""

    interval: float
    agents: list[Heartbeat]
    incidents: list[Incident]


class AgentDeclaredHung(RuntimeEvent):
    """The watchdog declared ``agent`` hung; ``stack`` is its stuck thread's stack."""

    agent: str
    incarnation: int
    reason: str
    stack: str | None
    replaced: bool
