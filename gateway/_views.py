"""The read-only views: ``/v1/agents``, ``/v1/agents/{name}`` and ``/v1/tree``.

Their source is the introspect agent (it adds message rates), asked without
blocking the event loop. A system wired without one is described in-process
by the same functions (:mod:`vibe_actors.agents.introspect`), minus rates.
While the introspect agent restarts, a view is its error reply (the app
answers 503 with Retry-After), like any other agent's.
"""

from __future__ import annotations

from typing import Any

from vibe_actors import ActorSystem, ErrorReply, UnknownAgent
from vibe_actors.agents import introspect

__all__ = ["Views"]


class Views:
    """Builds each view, from the introspect agent named ``agent`` when it exists."""

    def __init__(self, system: ActorSystem, agent: str) -> None:
        self._system = system
        self._agent = agent

    def _wired(self) -> bool:
        try:
            return issubclass(self._system.agent_class(self._agent), introspect.Introspect)
        except UnknownAgent:
            return False

    async def _ask(self, message: Any, request_id: str, timeout: float) -> Any:
        return await self._system.ref(self._agent).ask_async(
            message, timeout=timeout, request_id=request_id, raise_errors=False
        )

    async def agents(
        self, request_id: str, timeout: float
    ) -> list[introspect.AgentView] | ErrorReply:
        """Every agent's view."""
        if not self._wired():
            return introspect.describe(self._system)
        reply = await self._ask(introspect.Agents(), request_id, timeout)
        return reply if isinstance(reply, ErrorReply) else reply.agents

    async def agent(
        self, name: str, request_id: str, timeout: float
    ) -> introspect.AgentView | ErrorReply:
        """One agent's view; :class:`~vibe_actors.agents.introspect.NoSuchAgent` if unknown."""
        if not self._wired():
            for view in introspect.describe(self._system):
                if view.name == name:
                    return view
            return introspect.NoSuchAgent(name=name, detail=f"no agent named {name!r}")
        reply = await self._ask(introspect.Describe(name=name), request_id, timeout)
        return reply if isinstance(reply, ErrorReply) else reply.agent

    async def tree(self, request_id: str, timeout: float) -> introspect.TreeView | ErrorReply:
        """The supervision tree."""
        if not self._wired():
            return introspect.tree(self._system)
        reply = await self._ask(introspect.Tree(), request_id, timeout)
        return reply if isinstance(reply, ErrorReply) else reply.root
