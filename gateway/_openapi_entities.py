"""The entity routes of the OpenAPI document (see :mod:`gateway._openapi`).

One ``POST /v1/entities/{kind}/{id}/{Type}`` operation per entity kind and
message type (its body, its replies, the agents' error responses; a durable
kind's 409 :class:`~vibe_actors.EntityConflict`), and the
entity views: ``GET /v1/entities``, ``/v1/entities/{kind}`` and
``/v1/entities/{kind}/{id}``. Bodies are described by the msgspec types that
encode them (:class:`vibe_actors.EntityKindInfo`, :class:`vibe_actors.EntitySnapshot`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from vibe_actors import (
    ActorSystem,
    EntityConflict,
    EntityKindInfo,
    EntitySnapshot,
    ErrorReply,
    Message,
)
from vibe_actors.agents import schema

__all__ = ["entity_paths"]

_REF = "#/components/schemas/{name}"
_PROBLEM = {"application/problem+json": {"schema": {"$ref": _REF.format(name="Problem")}}}
#: An entity id as the runtime allows it.
_ID = {"type": "string", "minLength": 1, "maxLength": 256}
_KIND = {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$"}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 0},
    }
}


def entity_paths(system: ActorSystem, components: dict[str, Any]) -> dict[str, Any]:
    """The entity paths for ``system``; their body types are added to ``components``."""
    operations: list[tuple[str, str, type, list[type], bool]] = []
    every: list[type] = [EntityKindInfo, EntitySnapshot]
    for kind in system.entity_kinds():
        entity_class = system.agent_class(kind)
        # A durable kind's write may conflict with another replica's (a shared store): 409.
        durable = [EntityConflict] if system.entity_info(kind).state == "durable" else []
        for message_type in entity_class.message_types():
            replies = [t for t in entity_class.reply_types(message_type) if issubclass(t, Message)]
            replies += durable
            empty = schema.replies_none(system, kind, message_type)
            operations.append((kind, message_type.__name__, message_type, replies, empty))
            every.extend([message_type, *replies])
    unique = list(dict.fromkeys(every))
    refs, found = msgspec.json.schema_components(unique, ref_template=_REF)
    for name, component in found.items():
        components.setdefault(name, component)
    ref_of = dict(zip(unique, refs, strict=True))
    paths = _views(ref_of[EntityKindInfo], ref_of[EntitySnapshot])
    for kind, tag, message_type, replies, empty in operations:
        paths[f"/v1/entities/{kind}/{{id}}/{tag}"] = {
            "post": _ask(kind, tag, ref_of, message_type, replies, empty)
        }
    return paths


def _views(info: dict[str, Any], snapshot: dict[str, Any]) -> dict[str, Any]:
    denied = {"403": _problem("Denied by policy"), "429": _problem("Quota exceeded", retry=True)}
    return {
        "/v1/entities": _get(
            "entities.list", "Every entity kind", {"type": "array", "items": info}, denied
        ),
        "/v1/entities/{kind}": _get(
            "entities.kind",
            "One entity kind: shards, active entities, activations, passivations",
            info,
            {**denied, "404": _problem("No entity kind of that name")},
            [_path("kind", _KIND)],
        ),
        "/v1/entities/{kind}/{id}": _get(
            "entities.inspect",
            "One entity: whether it is active, and its state (it is not activated)",
            snapshot,
            {
                **denied,
                "400": _problem("Malformed X-Timeout-Ms"),
                "404": _problem("No entity kind of that name"),
                "422": _problem("Invalid entity id"),
                "504": _problem("Deadline exceeded"),
            },
            [_path("kind", _KIND), _path("id", _ID), schema.TIMEOUT_HEADER],
        ),
    }


def _ask(
    kind: str,
    tag: str,
    ref_of: dict[type, Any],
    message_type: type,
    replies: list[type],
    empty: bool,
) -> dict[str, Any]:
    ok = [r for r in replies if not issubclass(r, ErrorReply)]
    responses: dict[str, Any] = {
        "200": {
            "description": "The entity's reply",
            "content": {"application/json": {"schema": {"oneOf": [ref_of[r] for r in ok]}}},
        },
        **{str(s): _problem(text) for s, text in schema.ERROR_RESPONSES.items()},
        "422": _problem("The body does not match the message type, or the id is invalid"),
    }
    if empty:
        responses["204"] = {"description": "The entity's reply is None (no content)"}
    for error in (r for r in replies if issubclass(r, ErrorReply)):
        entry = responses.setdefault(str(error.http_status), _problem(error.__name__))
        entry.setdefault("x-error-replies", []).append(error.__name__)
    return {
        "operationId": f"entities.{kind}.{tag}",
        "summary": f"Ask an entity of {kind} with {tag} (activated by it if not active)",
        "parameters": [_path("id", _ID), schema.TIMEOUT_HEADER],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ref_of[message_type]}},
        },
        "responses": dict(sorted(responses.items())),
    }


def _get(
    operation_id: str,
    summary: str,
    body: dict[str, Any],
    errors: dict[str, Any],
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": body}}},
            **errors,
        },
    }
    if parameters:
        operation["parameters"] = parameters
    return {"get": operation}


def _path(name: str, schema_: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema_}


def _problem(description: str, *, retry: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": _PROBLEM}
    if retry:
        response["headers"] = _RETRY_AFTER
    return response
