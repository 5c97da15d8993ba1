"""The documents the schema agent serves, built from a running system: the
message catalogue, the OpenAPI document and the Mermaid diagram of the tree
(re-exported by :mod:`vibe_actors.agents.schema`, which caches them per tree
shape and is where to import them from).
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterable
from typing import Any

import msgspec

from vibe_actors import (
    ActorSystem,
    AgentCrashed,
    DeadlineExceeded,
    ErrorReply,
    Forbidden,
    MailboxFull,
    Message,
    TreeNode,
    Unavailable,
    UnknownAgent,
    UnknownMessage,
)
from vibe_actors.agents.schema._components import schema_components

#: The error replies the runtime itself may give to any ask.
RUNTIME_ERROR_REPLIES = (
    AgentCrashed,
    DeadlineExceeded,
    Forbidden,
    MailboxFull,
    Unavailable,
    UnknownMessage,
)

__all__ = [
    "RUNTIME_ERROR_REPLIES",
    "error_replies",
    "ERROR_RESPONSES",
    "TIMEOUT_HEADER",
    "TIMEOUT_MS_DIGITS",
    "FieldError",
    "Problem",
    "agent_schemas",
    "catalogue",
    "mermaid",
    "message_types",
    "openapi",
    "receivers",
    "replies_none",
    "reply_types",
    "tagged_types",
]


class FieldError(msgspec.Struct, frozen=True):
    """One validation failure: the JSON path of the field and what was wrong."""

    path: str
    message: str


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    """application/problem+json (RFC 9457), as the gateway sends it (``gateway._problems``)."""

    type: str
    title: str
    status: int
    detail: str
    request_id: str
    #: The fields that failed validation (a 422).
    errors: list[FieldError] | None = None
    #: The agent's typed error reply, when the problem is one.
    reply: Any = None


#: X-Timeout-Ms past 9 digits (11.5 days) is no deadline anyone means.
TIMEOUT_MS_DIGITS = 9
#: The gateway's deadline header (``gateway._request``): digits only, not all zeros, at
#: most TIMEOUT_MS_DIGITS of them (the server caps the value lower).
TIMEOUT_HEADER: dict[str, Any] = {
    "name": "X-Timeout-Ms",
    "in": "header",
    "required": False,
    "description": "The deadline of the request's ask, in milliseconds (capped by the server)",
    "schema": {"type": "string", "pattern": "^0*[1-9][0-9]*$", "maxLength": TIMEOUT_MS_DIGITS},
}


#: The gateway's error responses (``gateway/_catalog.py``).
ERROR_RESPONSES: dict[int, str] = {
    400: "Malformed JSON or header",
    401: "Missing or wrong bearer token",
    403: "Denied by policy",
    404: "Unknown agent or message type",
    413: "Body over the limit",
    415: "Not application/json",
    422: "Body does not match the message type",
    429: "Mailbox full or quota exceeded",
    503: "Agent restarting or stopped",
    504: "Deadline exceeded",
}


# -- building blocks ----------------------------------------------------------------


def receivers(system: ActorSystem) -> list[TreeNode]:
    """Every node that receives messages (workers and pools), in tree order; entity kinds
    receive by id (``/v1/entities``), not by name."""
    return [node for node in system.walk() if node.kind not in ("supervisor", "entities")]


def tagged_types(system: ActorSystem, name: str) -> dict[str, type]:
    """Public message types of agent ``name`` by tag (the gateway's route segment).

    Raises :class:`~vibe_actors.UnknownAgent` if there is no agent ``name``.
    """
    return {t.__name__: t for t in system.message_types(name) if issubclass(t, Message)}


def message_types(system: ActorSystem, name: str) -> dict[str, type]:
    """:func:`tagged_types`, {} if the agent is gone (stopped since the tree was walked)."""
    try:
        return tagged_types(system, name)
    except UnknownAgent:
        return {}


def reply_types(system: ActorSystem, name: str, message_type: type) -> list[type]:
    """The reply types ``name``'s handler of ``message_type`` declares."""
    try:
        agent_class = system.agent_class(name)
    except UnknownAgent:
        return []
    return [t for t in agent_class.reply_types(message_type) if issubclass(t, Message)]


def error_replies(system: ActorSystem) -> list[type]:
    """Every error reply type the receiving agents declare (their handlers' annotations),
    and the runtime's own (``AgentCrashed``, ``DeadlineExceeded``, ...), without repeats."""
    found: dict[type, None] = {}
    for node in receivers(system):
        for message_type in message_types(system, node.name).values():
            for reply in reply_types(system, node.name, message_type):
                if issubclass(reply, ErrorReply):
                    found[reply] = None
    for runtime in RUNTIME_ERROR_REPLIES:
        found[runtime] = None
    return list(found)


def replies_none(system: ActorSystem, name: str, message_type: type) -> bool:
    """Whether ``name``'s handler of ``message_type`` may return None (the gateway's 204).

    :func:`reply_types` drops None from the return annotation, so it is read here.
    """
    try:
        agent_class = system.agent_class(name)
    except UnknownAgent:
        return False
    fn = agent_class.handler_for(message_type)
    if fn is None:
        return False
    try:
        annotation = typing.get_type_hints(fn).get("return", _MISSING)
    except (NameError, TypeError):
        return False  # the runtime resolved it at class creation; a broken hint is no promise
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return type(None) in typing.get_args(annotation)
    return annotation is type(None)


_MISSING = object()
_REF = re.compile(r"^#/\$defs/(.+)$")


def _refs(schema: Any) -> Iterable[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str) and (match := _REF.match(value)):
                yield match.group(1)
            else:
                yield from _refs(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _refs(item)


def _standalone(name: str, components: dict[str, Any]) -> dict[str, Any]:
    """Component ``name``, with the components it reaches in ``$defs``."""
    reached: dict[str, Any] = {}
    todo = list(_refs(components[name]))
    while todo:
        ref = todo.pop()
        if ref in reached or ref == name:
            continue
        reached[ref] = components[ref]
        todo.extend(_refs(components[ref]))
    schema = dict(components[name])
    if reached:
        schema["$defs"] = dict(sorted(reached.items()))
    return schema


def _component_names(refs: Iterable[dict[str, Any]], prefix: str) -> list[str]:
    return [ref["$ref"].removeprefix(prefix) for ref in refs]


def agent_schemas(types: dict[str, type]) -> dict[str, Any]:
    """Tag -> standalone JSON Schema for one agent's message types."""
    if not types:
        return {}
    refs, components = schema_components(types.values())
    names = _component_names(refs, "#/$defs/")
    return {tag: _standalone(name, components) for tag, name in zip(types, names, strict=True)}


def catalogue(system: ActorSystem) -> dict[str, dict[str, Any]]:
    """Agent name -> tag -> JSON Schema, for every receiving node."""
    return {
        node.name: agent_schemas(message_types(system, node.name)) for node in receivers(system)
    }


# -- OpenAPI ------------------------------------------------------------------------------

_COMPONENTS = "#/components/schemas/"


def openapi(system: ActorSystem, title: str = "vibe-actors", version: str = "1") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``POST /v1/agents/{name}/{Type}`` for every agent."""
    operations: list[tuple[str, str, type, list[type], bool]] = []
    every: list[type] = [Problem]
    for node in receivers(system):
        for tag, message_type in message_types(system, node.name).items():
            replies = reply_types(system, node.name, message_type)
            empty = replies_none(system, node.name, message_type)
            operations.append((node.name, tag, message_type, replies, empty))
            every.extend([message_type, *replies])
    unique = list(dict.fromkeys(every))
    refs, components = schema_components(unique, ref_template=_COMPONENTS + "{name}")
    ref_of = dict(zip(unique, refs, strict=True))
    for message_type in {message_type for _, _, message_type, _, _ in operations}:
        _tag_optional(components[ref_of[message_type]["$ref"].removeprefix(_COMPONENTS)])
    paths = {
        f"/v1/agents/{agent}/{tag}": {
            "post": _operation(agent, tag, ref_of, message_type, replies, empty)
        }
        for agent, tag, message_type, replies, empty in operations
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": components},
    }


def _tag_optional(component: dict[str, Any]) -> None:
    """A request body may leave out ``type``: the route names the message type already.

    The gateway decodes the body as that type, so a missing tag is that type
    and a different one is a 422. The component keeps ``type``'s enum; only
    its being required goes (replies that share the component always carry it).
    """
    required = [field for field in component.get("required", ()) if field != "type"]
    if required:
        component["required"] = required
    else:
        component.pop("required", None)


def _operation(
    agent: str,
    tag: str,
    ref_of: dict[type, Any],
    message_type: type,
    replies: list[type],
    empty: bool = False,
) -> dict[str, Any]:
    ok = [r for r in replies if not issubclass(r, ErrorReply)]
    ok_schema: dict[str, Any] = {"oneOf": [ref_of[r] for r in ok]} if ok else {}
    problem = {"application/problem+json": {"schema": ref_of[Problem]}}
    responses: dict[str, Any] = {
        "200": {
            "description": "The agent's reply",
            "content": {"application/json": {"schema": ok_schema}},
        },
        **{
            str(s): {"description": text, "content": problem} for s, text in ERROR_RESPONSES.items()
        },
    }
    if empty:  # the handler may return None: the gateway answers 204 with no body
        responses["204"] = {"description": "The agent's reply is None (no content)"}
    for error in (r for r in replies if issubclass(r, ErrorReply)):
        entry = responses.setdefault(
            str(error.http_status), {"description": error.__name__, "content": problem}
        )
        entry.setdefault("x-error-replies", []).append(error.__name__)
    return {
        "operationId": f"{agent}.{tag}",
        "summary": f"Ask {agent} with {tag}",
        "parameters": [TIMEOUT_HEADER],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ref_of[message_type]}},
        },
        "responses": dict(sorted(responses.items())),
    }


# -- Mermaid ---------------------------------------------------------------------------------

_SHAPES: dict[str, tuple[str, str]] = {
    "supervisor": ("[", "]"),
    "pool": ("[[", "]]"),
    "worker": ("(", ")"),
}


def _label(text: str) -> str:
    return (
        text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    )


def mermaid(root: TreeNode) -> str:
    """A ``graph TD`` of the tree: supervisors show strategy and restart, workers restart."""
    lines = ["graph TD"]
    ids: dict[int, str] = {}

    def visit(node: TreeNode, parent: str | None) -> None:
        node_id = ids.setdefault(id(node), f"n{len(ids)}")
        details = [node.kind, *([node.strategy] if node.strategy else []), node.restart]
        opening, closing = _SHAPES.get(node.kind, ("(", ")"))
        label = f"{_label(node.name)}<br/>{_label(', '.join(details))}"
        lines.append(f'    {node_id}{opening}"{label}"{closing}')
        if parent is not None:
            lines.append(f"    {parent} --> {node_id}")
        for child in node.children:
            visit(child, node_id)

    visit(root, None)
    return "\n".join(lines) + "\n"
