"""What the gateway knows about agents: their message types, schemas and the OpenAPI document.

Built from the running system (``ActorSystem.message_types``) and cached per
agent name; the cache is dropped on a live reload.
"""

from __future__ import annotations

from typing import Any

import msgspec

from vibe_actors import ActorSystem, ErrorReply, Message, Ref, TreeNode, UnknownAgent

__all__ = ["AgentInfo", "Catalog", "agent_status"]


class AgentInfo(msgspec.Struct, frozen=True):
    """One entry of ``GET /v1/agents``."""

    name: str
    kind: str
    status: str
    restarts: int
    mailbox_size: int
    messages: list[str]


def agent_status(node: TreeNode) -> str:
    """running | restarting | stopped, as the HTTP API reports it."""
    if node.status == "running":
        return "running"
    return "stopped" if node.status == "stopped" else "restarting"


class Catalog:
    """Message types by agent name, with their JSON decoders."""

    def __init__(self, system: ActorSystem) -> None:
        self._system = system
        self._types: dict[str, dict[str, type]] = {}
        self._decoders: dict[type, msgspec.json.Decoder[Any]] = {}
        self._hot: dict[str, dict[str, tuple[type, msgspec.json.Decoder[Any], Ref]]] = {}

    def clear(self) -> None:
        """Forget everything (after a live reload)."""
        self._types.clear()
        self._hot.clear()

    def lookup(self, name: str, tag: str) -> tuple[type, msgspec.json.Decoder[Any], Ref] | None:
        """(type, decoder, ref) for a known agent and tag, cached; None if unknown."""
        by_tag = self._hot.get(name)
        if by_tag is None:
            try:
                types = self.types(name)
            except UnknownAgent:
                return None
            ref = self._system.ref(name)
            by_tag = self._hot[name] = {t: (c, self.decoder(c), ref) for t, c in types.items()}
        return by_tag.get(tag)

    def types(self, name: str) -> dict[str, type]:
        """Public message types of agent ``name`` by tag; raises UnknownAgent."""
        types = self._types.get(name)
        if types is None:
            found = self._system.message_types(name)
            types = {t.__name__: t for t in found if issubclass(t, Message)}
            self._types[name] = types
        return types

    def decoder(self, message_type: type) -> msgspec.json.Decoder[Any]:
        decoder = self._decoders.get(message_type)
        if decoder is None:
            decoder = self._decoders[message_type] = msgspec.json.Decoder(message_type)
        return decoder

    def agents(self) -> list[AgentInfo]:
        """Every node that receives messages (workers and pools), in tree order."""
        infos = []
        for node in self._system.walk():
            if node.kind == "supervisor":
                continue
            infos.append(self.info(node))
        return infos

    def info(self, node: TreeNode) -> AgentInfo:
        try:
            messages = sorted(self.types(node.name))
        except UnknownAgent:
            messages = []
        return AgentInfo(
            name=node.name,
            kind=node.kind,
            status=agent_status(node),
            restarts=node.restarts,
            mailbox_size=node.mailbox_depth,
            messages=messages,
        )

    def schemas(self, name: str) -> dict[str, Any]:
        """JSON Schema of each message type of ``name``, by tag."""
        types = self.types(name)
        _, components = msgspec.json.schema_components(list(types.values()))
        return {tag: components.get(tag, {}) for tag in types}

    def openapi(self, title: str = "vibe-actors gateway") -> dict[str, Any]:
        """An OpenAPI 3.1 document: one POST operation per agent and message type."""
        paths: dict[str, Any] = {}
        every: list[type] = [Problem]
        for info in self.agents():
            types = self.types(info.name)
            for tag, message_type in types.items():
                replies = _reply_types(self._system, info.name, message_type)
                every.extend([message_type, *replies])
                paths[f"/v1/agents/{info.name}/{tag}"] = {
                    "post": _operation(info.name, tag, replies)
                }
        _, components = msgspec.json.schema_components(
            every, ref_template="#/components/schemas/{name}"
        )
        return {
            "openapi": "3.1.0",
            "info": {"title": title, "version": "1"},
            "paths": paths,
            "components": {"schemas": components},
        }


class Problem(msgspec.Struct, frozen=True):
    """application/problem+json (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str
    request_id: str


def _reply_types(system: ActorSystem, name: str, message_type: type) -> list[type]:
    return [t for t in system.agent_class(name).reply_types(message_type) if issubclass(t, Message)]


def _operation(agent: str, tag: str, replies: list[type]) -> dict[str, Any]:
    ok = [r for r in replies if not issubclass(r, ErrorReply)]
    ok_schema: dict[str, Any] = (
        {"oneOf": [{"$ref": f"#/components/schemas/{r.__name__}"} for r in ok]} if ok else {}
    )
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {
        "operationId": f"{agent}.{tag}",
        "summary": f"Ask {agent} with {tag}",
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{tag}"}}},
        },
        "responses": {
            "200": {
                "description": "The agent's reply",
                "content": {"application/json": {"schema": ok_schema}},
            },
            **{
                str(status): {"description": text, "content": problem}
                for status, text in _ERROR_RESPONSES.items()
            },
        },
    }


_ERROR_RESPONSES = {
    400: "Malformed JSON or header",
    401: "Missing or wrong bearer token",
    404: "Unknown agent or message type",
    413: "Body over the limit",
    415: "Not application/json",
    422: "Body does not match the message type",
    429: "Mailbox full or quota exceeded",
    503: "Agent restarting or stopped",
    504: "Deadline exceeded",
}
