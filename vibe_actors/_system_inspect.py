"""The introspection part of the embedding API (:class:`~vibe_actors.ActorSystem`): cells,
statuses, protocols, threads, the tree, and fault injection for tests and chaos."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from vibe_actors._entity import split_address
from vibe_actors._entity_kind import EntityRouter
from vibe_actors._envelope import Envelope
from vibe_actors._errors import AgentHung, SystemNotRunning, UnknownAgent
from vibe_actors._incarnation import thread_stack
from vibe_actors._router import Router
from vibe_actors._signals import AgentStatus, InjectedFault
from vibe_actors._spec import SupervisorSpec, WorkerSpec
from vibe_actors._tree import TreeNode, all_specs, snapshot

if TYPE_CHECKING:
    from vibe_actors._agent import Agent
    from vibe_actors._cell import Cell
    from vibe_actors._route_table import RouteTable

__all__ = ["Introspection"]


class Introspection:
    """Mixed into :class:`~vibe_actors.ActorSystem`."""

    routes: RouteTable
    root_spec: SupervisorSpec
    _cells: dict[str, Cell]
    _lock: threading.RLock
    _root: Cell | None

    def cells(self) -> list[Cell]:
        """Every cell (workers, pools, supervisors), in no particular order (runtime
        internals: the metrics and the progress monitor read them)."""
        with self._lock:
            return list(self._cells.values())

    def cell(self, name: str) -> Cell:
        """The cell behind ``name`` (runtime internals, for introspection and tests).

        Raises :class:`UnknownAgent`.
        """
        cell = self._cells.get(name)
        if cell is None:
            raise UnknownAgent(name)
        return cell

    def inject_fault(self, name: str, kind: str, seconds: float = 0.0) -> None:
        """Make ``name``'s next handler crash (``"crash"``) or block ``seconds`` (``"hang"``).

        The fault runs inside the agent's own thread, ahead of any bound (it is
        a system message), after the messages already queued. For a pool, one
        worker is picked as a message would be, for an entity kind its first shard.
        Raises :class:`UnknownAgent`,
        and ValueError for another kind.
        """
        self._inject(name, InjectedFault(kind, seconds))

    def _inject(self, name: str, fault: InjectedFault) -> None:
        """Put ``fault`` in ``name``'s mailbox as a system message (see :meth:`inject_fault`)."""
        kind = self.routes.entity_kind(name)
        route = kind.shards[0] if kind is not None and kind.shards else self.routes.get(name)
        if route is None or isinstance(route, EntityRouter):
            raise UnknownAgent(name)
        envelope = Envelope(fault)
        target = route.pick(envelope) if isinstance(route, Router) else route
        target.mailbox.put_system(envelope)

    def replace_hung(self, name: str, reason: str) -> AgentHung | None:
        """Declare ``name`` hung: abandon its stuck incarnation, let its supervisor replace it.

        For the watchdog. Returns the failure reported to the supervisor (with
        the stuck thread's stack), or None if ``name`` had no running
        incarnation. Raises :class:`UnknownAgent`.
        """
        return self.cell(name).replace_hung(reason)

    def status(self, name: str) -> AgentStatus:
        """The status of agent ``name``; a pool is RUNNING while any worker runs.

        Raises :class:`UnknownAgent`.
        """
        cell = self.cell(name)
        if self.routes.is_pool(name) or self.routes.entity_kind(name) is not None:
            statuses = {child.status for child in list(cell.children.values())}
            if AgentStatus.RUNNING in statuses:
                return AgentStatus.RUNNING
        return cell.status

    def agent_class(self, name: str) -> type[Agent]:
        """The Agent class behind ``name`` (a pool's worker class, an entity kind's Entity
        class; for ``kind/id``, the kind's). Raises :class:`UnknownAgent`."""
        address = split_address(name)
        if address is not None:
            name = address[0]
            if self.routes.entity_kind(name) is None:
                raise UnknownAgent(name)
        cell = self.cell(name)
        kind = self.routes.entity_kind(name)
        if kind is not None:
            return kind.entity_class  # type: ignore[return-value] # same protocol API
        if self.routes.is_pool(name):
            spec = next(s for s in all_specs(self.root_spec) if s.name == name)
            assert isinstance(spec, WorkerSpec)
            agent: type[Agent] = spec.agent
            return agent
        return cell.agent_class

    def message_types(self, name: str) -> tuple[type, ...]:
        """The message types the agent (or pool) ``name`` handles: its protocol.

        Raises :class:`UnknownAgent`.
        """
        return self.agent_class(name).message_types()

    def names(self) -> list[str]:
        """Every agent name in the tree (supervisors and pool workers included)."""
        return [cell.name for cell in self.cells()]

    def thread_stack(self, name: str) -> str | None:
        """The current stack of agent ``name``'s thread (None if it has no live incarnation).

        For diagnosing a stuck agent. Raises :class:`UnknownAgent`.
        """
        host = self.cell(name).host
        return thread_stack(host.thread if host is not None else None)

    @staticmethod
    def _is_agent_thread() -> bool:
        return threading.current_thread().name.startswith("vibe:")

    def threads(self) -> list[threading.Thread]:
        """Live actor threads of this system (for leak checks after shutdown)."""
        mine = {cell.host.thread for cell in self.cells() if cell.host is not None}
        return [t for t in threading.enumerate() if t in mine and t.is_alive()]

    def tree(self) -> TreeNode:
        """A snapshot of the supervision tree. Raises :class:`SystemNotRunning` before start."""
        if self._root is None:
            raise SystemNotRunning("the system has not been started")
        return snapshot(self._root, self.routes)

    def walk(self) -> Iterator[TreeNode]:
        """Every node of :meth:`tree`, depth first."""
        stack = [self.tree()]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))
