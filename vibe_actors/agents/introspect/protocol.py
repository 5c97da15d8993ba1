"""The introspect agent's settings, views, messages and replies (re-exported by
:mod:`vibe_actors.agents.introspect`); other agents import them from here.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

from vibe_actors import ErrorReply, Message
from vibe_actors._messages import namespaced

__all__ = [
    "AgentList",
    "AgentView",
    "Agents",
    "Describe",
    "Description",
    "IntrospectConfig",
    "NoSuchAgent",
    "Tree",
    "TreeReply",
    "TreeView",
]


_tag = namespaced("introspect")


class _Message(Message, tag=_tag):
    """Base of the introspect agent's messages: tagged ``introspect.<ClassName>`` on the wire,
    named by the class name over HTTP."""


class _ErrorReply(ErrorReply, tag=_tag):
    """Base of the introspect agent's error replies, tagged like its messages."""


class IntrospectConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of :class:`Introspect`."""

    #: Seconds between samples of the message counters (the rate window).
    sample_interval: Annotated[float, msgspec.Meta(gt=0)] = 5.0


# -- the views ------------------------------------------------------------------------


class AgentView(msgspec.Struct, frozen=True, kw_only=True):
    """One agent (a worker or a pool) as the HTTP API shows it."""

    name: str
    kind: str
    #: running | restarting | stopped (starting and stopping count as restarting).
    status: str
    restarts: int
    mailbox_size: int
    #: The message types it accepts, by name.
    messages: list[str]
    agent: str = ""
    incarnation: int = 0
    handled: int = 0
    #: Messages per second over the last sample window.
    rate: float = 0.0
    last_failure: str | None = None
    last_failure_at: float | None = None
    #: The last handler crash's traceback (None when the last failure was no crash).
    last_traceback: str | None = None
    degraded: str | None = None
    #: Why it cannot do all its work while serving (durable writes failing), else None.
    impaired: str | None = None
    #: Where it runs: ``local`` (a thread of this process) or ``ray`` (a Ray actor).
    placement: str = "local"
    #: Where it keeps its data: ``sqlite:<file>``, or the PostgreSQL URL every replica shares
    #: (never its password); None: it keeps none.
    store: str | None = None


class TreeView(msgspec.Struct, frozen=True, kw_only=True):
    """One node of the supervision tree, with its children."""

    name: str
    kind: str
    agent: str
    status: str
    restart: str
    restarts: int
    incarnation: int
    mailbox_size: int
    handled: int
    rate: float
    last_failure: str | None
    degraded: str | None
    strategy: str | None = None
    impaired: str | None = None
    children: list[TreeView] = []
    #: Where it runs: ``local`` or ``ray`` (supervisors are always local).
    placement: str = "local"
    #: A dynamic supervisor, or a child it started at run time.
    dynamic: bool = False
    #: Where it keeps its data (as in :class:`AgentView`); None: it keeps none.
    store: str | None = None


# -- messages -------------------------------------------------------------------------


class Agents(_Message):
    """Ask for every agent's view."""


class AgentList(_Message):
    """Reply to :class:`Agents`."""

    agents: list[AgentView]


class Describe(_Message):
    """Ask for one agent's view."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Description(_Message):
    """Reply to :class:`Describe`."""

    agent: AgentView


class NoSuchAgent(_ErrorReply):
    """No agent (or pool) by that name receives messages."""

    name: str
    http_status: ClassVar[int] = 404


class Tree(_Message):
    """Ask for the supervision tree."""


class TreeReply(_Message):
    """Reply to :class:`Tree`."""

    root: TreeView
