"""What the gateway knows about agents: their message types and decoders.

Built from the running system (``ActorSystem.message_types``) and cached per
agent name; the cache is dropped on a live reload. JSON Schemas come
from the schema agent's functions (:mod:`vibe_actors.agents.schema`), and so
do the agent operations of the OpenAPI document (:mod:`gateway._openapi`
adds the gateway's own routes), so both speak the same catalogue.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from gateway._openapi import openapi_document
from vibe_actors import (
    ActorSystem,
    AgentStatus,
    DynamicChildStarted,
    DynamicChildTerminated,
    Ref,
    RuntimeEvent,
    UnknownAgent,
)
from vibe_actors.agents import schema

__all__ = ["Catalog", "HasStatus", "HotEntry"]

#: What the hot path needs per agent and tag: the message type, its JSON decoder,
#: a ref, and the agent's cell (its status is read per request), None for a pool
#: or a supervisor (their status is computed from their children's).
HotEntry = tuple[type, "msgspec.json.Decoder[Any]", Ref, "HasStatus | None"]


class HasStatus(Protocol):
    """An agent's cell, as the hot path sees it (``ActorSystem.cell``)."""

    status: AgentStatus


class Catalog:
    """Message types by agent name, with their JSON decoders."""

    def __init__(self, system: ActorSystem) -> None:
        self._system = system
        self._types: dict[str, dict[str, type]] = {}
        self._decoders: dict[type, msgspec.json.Decoder[Any]] = {}
        self._hot: dict[str, dict[str, HotEntry]] = {}
        self._openapi: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        system.events.subscribe(self._on_event)

    def _on_event(self, event: RuntimeEvent) -> None:
        # A dynamic child's name may be taken again by another cell, of another class.
        if isinstance(event, DynamicChildStarted | DynamicChildTerminated):
            self.forget(event.agent)

    def forget(self, name: str) -> None:
        """Forget what is cached of agent ``name`` (any thread)."""
        self._types.pop(name, None)
        self._hot.pop(name, None)

    def clear(self) -> None:
        """Forget everything (after a live reload)."""
        self._types.clear()
        self._hot.clear()
        self._openapi = None

    def lookup(self, name: str, tag: str) -> HotEntry | None:
        """The hot path's entry for a known agent and tag, cached; None if unknown."""
        by_tag = self._hot.get(name)
        if by_tag is None:
            if name in self._system.entity_kinds():  # asked by id: /v1/entities
                return None
            try:
                types = self.types(name)
            except UnknownAgent:
                return None
            by_tag = self._hot[name] = {t: self.entry(name, c) for t, c in types.items()}
        return by_tag.get(tag)

    def entry(self, name: str, message_type: type) -> HotEntry:
        """The hot path's entry for ``message_type`` of agent ``name``; raises UnknownAgent."""
        cell = self._system.cell(name)
        direct = None if cell.children else cell
        return message_type, self.decoder(message_type), self._system.ref(name), direct

    def types(self, name: str) -> dict[str, type]:
        """Public message types of agent ``name`` by tag; raises UnknownAgent."""
        types = self._types.get(name)
        if types is None:
            types = self._types[name] = schema.tagged_types(self._system, name)
        return types

    def decoder(self, message_type: type) -> msgspec.json.Decoder[Any]:
        decoder = self._decoders.get(message_type)
        if decoder is None:
            decoder = self._decoders[message_type] = msgspec.json.Decoder(message_type)
        return decoder

    def schemas(self, name: str) -> dict[str, Any]:
        """JSON Schema of each message type of ``name``, by tag (each one standalone)."""
        return schema.agent_schemas(self.types(name))

    def openapi(self, *, secured: bool, chaos: bool, console: bool = True) -> dict[str, Any]:
        """The OpenAPI 3.1 document of every route, rebuilt when the tree changes shape."""
        key = (schema.tree_shape(self._system), secured, chaos, console)
        if self._openapi is None or self._openapi[0] != key:
            document = openapi_document(
                self._system,
                title="vibe-actors gateway",
                secured=secured,
                chaos=chaos,
                console=console,
            )
            self._openapi = (key, document)
        return self._openapi[1]
