"""Introspect: the system's view of itself.

The supervision tree with each node's status, restarts, incarnation, mailbox
depth, last failure (and when), degraded reason, message types, messages
handled and message rate: the source of the gateway's ``/v1/agents`` and
``/v1/tree``.

Rates are sampled: every ``sample_interval`` seconds the agent reads each
agent's handled-message counter and keeps the rate over the last window
(messages per second, all outcomes). Until the first window has passed a rate
is 0. The view itself is computed on request from the live tree, so statuses
are current even when rates are a window old.

:func:`describe` and :func:`tree` are pure functions of a system (plus
rates), usable without the agent; the agent adds the rates.

Across its own restart the agent rebuilds everything: rates start again
from 0 and are meaningful again after one window. A failing sample (an agent
removed mid-walk by a live reload) is skipped, never fatal.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import ClassVar

import msgspec

from vibe_actors import (
    ActorSystem,
    Agent,
    Message,
    TreeNode,
    UnknownAgent,
    handler,
)
from vibe_actors.agents.introspect.protocol import (
    AgentList,
    Agents,
    AgentView,
    Describe,
    Description,
    IntrospectConfig,
    NoSuchAgent,
    Tree,
    TreeReply,
    TreeView,
)
from vibe_actors.store import store_in_use

__all__ = [
    "AgentList",
    "AgentView",
    "Agents",
    "Describe",
    "Description",
    "Introspect",
    "IntrospectConfig",
    "NoSuchAgent",
    "Tree",
    "TreeReply",
    "TreeView",
    "describe",
    "status_of",
    "tree",
]


def status_of(node: TreeNode) -> str:
    """running | restarting | stopped, as the HTTP API reports a node's status."""
    if node.status == "running":
        return "running"
    return "stopped" if node.status == "stopped" else "restarting"


def _handled(system: ActorSystem, name: str) -> int:
    try:
        return system.cell(name).stats.total()
    except UnknownAgent:  # removed by a live reload since the walk
        return 0


def _counted(node: TreeNode, per_name: Mapping[str, float]) -> float:
    """A node's figure; a pool's is the sum of its workers', an entity kind's of its shards'."""
    if node.kind in ("pool", "entities"):
        return sum(per_name.get(child.name, 0) for child in node.children)
    return per_name.get(node.name, 0)


def _failure_details(system: ActorSystem, name: str) -> tuple[float | None, str | None]:
    """When ``name`` last failed, and the traceback of that failure if it was a crash."""
    try:
        cell = system.cell(name)
    except UnknownAgent:
        return None, None
    return cell.last_failure_at, cell.last_traceback


def _messages(system: ActorSystem, name: str) -> list[str]:
    try:
        return sorted(t.__name__ for t in system.message_types(name) if issubclass(t, Message))
    except UnknownAgent:
        return []


def _placement(system: ActorSystem, name: str) -> str:
    try:
        agent_class = system.agent_class(name)
    except UnknownAgent:
        return "local"
    return str(getattr(agent_class, "_placement", "local"))  # a Ray proxy says "ray"


def describe(system: ActorSystem, rates: Mapping[str, float] | None = None) -> list[AgentView]:
    """Every node that receives messages (workers and pools), in tree order."""
    rates = rates or {}
    handled = {name: _handled(system, name) for name in system.names()}
    views = []
    for node in system.walk():
        if node.kind == "supervisor":
            continue
        failed_at, trace = _failure_details(system, node.name)
        views.append(
            AgentView(
                name=node.name, kind=node.kind, status=status_of(node), restarts=node.restarts,
                mailbox_size=node.mailbox_depth, messages=_messages(system, node.name),
                agent=node.agent, incarnation=node.incarnation,
                handled=int(_counted(node, handled)), rate=float(_counted(node, rates)),
                last_failure=node.last_failure,
                last_failure_at=failed_at, last_traceback=trace,
                degraded=node.degraded, impaired=node.impaired,
                placement=_placement(system, node.name),
                store=store_in_use(system, node.name),
            )
        )  # fmt: skip
    return views


def tree(system: ActorSystem, rates: Mapping[str, float] | None = None) -> TreeView:
    """The whole supervision tree. Raises :class:`vibe_actors.SystemNotRunning` before start."""
    rates = rates or {}
    handled = {name: _handled(system, name) for name in system.names()}

    def view(node: TreeNode) -> TreeView:
        return TreeView(
            name=node.name, kind=node.kind, agent=node.agent, status=node.status,
            restart=node.restart, restarts=node.restarts, incarnation=node.incarnation,
            mailbox_size=node.mailbox_depth, handled=int(_counted(node, handled)),
            rate=float(_counted(node, rates)), last_failure=node.last_failure,
            degraded=node.degraded, impaired=node.impaired, strategy=node.strategy,
            children=[view(child) for child in node.children],
            placement="local" if node.kind == "supervisor" else _placement(system, node.name),
            dynamic=node.dynamic, store=store_in_use(system, node.name),
        )  # fmt: skip

    return view(system.tree())


class _Sample(msgspec.Struct, frozen=True):
    """Timer message: take a sample of the counters."""


# -- the agent ------------------------------------------------------------------------


class Introspect(Agent[Agents | Describe | Tree]):
    """The system's view of itself, with message rates.

    Protocol: ``Agents`` -> ``AgentList``; ``Describe{name}`` ->
    ``Description`` or ``NoSuchAgent`` (404); ``Tree`` -> ``TreeReply``.
    """

    Config: ClassVar = IntrospectConfig

    def on_start(self) -> None:
        self._counts: dict[str, int] = {}
        self._sampled_at = time.monotonic()
        self._rates: dict[str, float] = {}
        self._take_sample()
        self.start_timer("sample", _Sample(), self.config.sample_interval, repeat=True)

    @handler
    def agents(self, msg: Agents) -> AgentList:
        return AgentList(agents=describe(self.system, self._rates))

    @handler
    def describe_one(self, msg: Describe) -> Description | NoSuchAgent:
        for view in describe(self.system, self._rates):
            if view.name == msg.name:
                return Description(agent=view)
        return NoSuchAgent(name=msg.name, detail=f"no agent named {msg.name!r}")

    @handler
    def tree(self, msg: Tree) -> TreeReply:
        return TreeReply(root=tree(self.system, self._rates))

    @handler
    def _sample(self, msg: _Sample) -> None:
        self._take_sample()

    def _take_sample(self) -> None:
        now = time.monotonic()
        elapsed = now - self._sampled_at
        counts = {name: _handled(self.system, name) for name in self.system.names()}
        if elapsed > 0 and self._counts:
            self._rates = {
                name: max(0, count - self._counts.get(name, count)) / elapsed
                for name, count in counts.items()
            }
        self._counts, self._sampled_at = counts, now
