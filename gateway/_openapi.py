"""The gateway's OpenAPI 3.1 document: every route it serves, as it serves it.

The agent operations (``POST /v1/agents/{name}/{Type}``, one per agent and
message type) come from the schema agent's functions
(:func:`vibe_actors.agents.schema.openapi`); this module adds the gateway's own
routes: the views, the topic streams, the probes, ``/metrics``, the document
itself, the chaos routes when chaos is on, and the bearer scheme when tokens
are configured. Every response a route can give is listed with its media
type; the bodies are described by the same msgspec types that encode them
(:class:`~vibe_actors.agents.introspect.AgentView`, ``TreeView``,
:class:`gateway._ops.Health`, :class:`gateway._ops.Readiness`), so the
document cannot drift from the server.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway._children import NAME_PATTERN, ChildCreated, ChildRequest
from gateway._openapi_console import console_paths
from gateway._openapi_entities import entity_paths
from gateway._ops import MAX_HANG_SECONDS, Health, Readiness
from gateway._problem_types import ProblemType
from gateway._sse import TOPIC_PATTERN
from gateway._sse_wire import LAST_EVENT_ID_PATTERN
from vibe_actors import ActorSystem
from vibe_actors.agents import introspect, schema

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{name}"
_PROBLEM_MEDIA = "application/problem+json"
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 0},
    }
}
#: The header the asking routes read: the deadline of the ask (the server's rule exactly).
_TIMEOUT_HEADER = schema.TIMEOUT_HEADER
#: Agent names as vibe_actors._spec allows them (ASCII shown; any letter is accepted).
_NAME = {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$"}


def openapi_document(
    system: ActorSystem, *, title: str, secured: bool, chaos: bool, console: bool = True
) -> dict[str, Any]:
    """The whole document for a gateway serving ``system``.

    ``secured``: bearer tokens are configured (every ``/v1`` route answers 401
    without one; the probes and ``/metrics`` never ask for one). ``chaos``:
    the fault-injection routes are served. ``console``: the console's files
    are (``/ui``; gateway._console). Raises nothing for a running
    system; a message type whose schema msgspec cannot build raises its
    ``TypeError`` (a bug in that type, caught by the schema agent's tests).
    """
    document = schema.openapi(system, title=title)
    components: dict[str, Any] = document["components"]["schemas"]
    refs = _components(components)
    paths: dict[str, Any] = document["paths"]
    paths.update(_views(refs))
    paths.update(entity_paths(system, components))
    paths["/v1/agents/{name}"]["delete"] = _terminate_child()
    paths.update(_children(system, components, refs))
    paths.update(_streams())
    paths.update(console_paths(components, _problem, console=console))
    paths.update(_probes(refs))
    paths["/problems/{slug}"] = _get(
        "problems.describe",
        "What a problem type means (its title, status and description)",
        refs["ProblemType"],
        {"404": _problem("No such problem type")},
        parameters=[_path("slug", {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"})],
    )
    if chaos:
        paths.update(_chaos())
    for route, path_item in paths.items():
        for operation in path_item.values():
            _common(operation, route, secured)
    if secured:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document


def _components(components: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Add the gateway's own body types to ``components``; their refs by name."""
    types = [
        introspect.AgentView, introspect.TreeView, Health, Readiness, ProblemType, ChildCreated,
        ChildRequest,
    ]  # fmt: skip
    refs, found = msgspec.json.schema_components(types, ref_template=_REF)
    for name, component in found.items():
        components.setdefault(name, component)
    return {t.__name__: ref for t, ref in zip(types, refs, strict=True)}


def _common(operation: dict[str, Any], route: str, secured: bool) -> None:
    """What every route can answer: the admission refusal, and 401 under /v1 with tokens."""
    responses = operation["responses"]
    responses.setdefault("503", _problem("Too busy, or the agent is unavailable", retry=True))
    if route.startswith("/v1/"):
        if secured:
            responses["401"] = _problem("Missing or wrong bearer token")
        else:
            responses.pop("401", None)
    else:
        operation["security"] = []  # probes and metrics never ask for a token
    operation["responses"] = dict(sorted(responses.items()))


def _views(refs: dict[str, dict[str, str]]) -> dict[str, Any]:
    agent_detail = {
        "allOf": [
            refs["AgentView"],
            {
                "type": "object",
                "properties": {
                    "schemas": {
                        "type": "object",
                        "description": "The JSON Schema of each message type, by tag",
                        "additionalProperties": {"type": "object"},
                    }
                },
                "required": ["schemas"],
            },
        ]
    }
    viewed = {
        "400": _problem("Malformed X-Timeout-Ms"),
        "403": _problem("Denied by policy"),
        "429": _problem("Quota exceeded", retry=True),
        "504": _problem("Deadline exceeded"),
    }
    return {
        "/v1/agents": _get(
            "agents.list",
            "Every agent (workers and pools) with its status and figures",
            {"type": "array", "items": refs["AgentView"]},
            viewed,
            timed=True,
        ),
        "/v1/agents/{name}": _get(
            "agents.describe",
            "One agent, with the JSON Schema of each message type it accepts",
            agent_detail,
            {**viewed, "404": _problem("No agent of that name")},
            parameters=[_path("name", _NAME)],
            timed=True,
        ),
        "/v1/tree": _get("tree", "The supervision tree", refs["TreeView"], viewed, timed=True),
        "/v1/openapi.json": _get("openapi", "This document", {"type": "object"}, {}),
    }


def _children(
    system: ActorSystem, components: dict[str, Any], refs: dict[str, dict[str, str]]
) -> dict[str, Any]:
    """``POST /v1/supervisors/<name>/children`` for each dynamic supervisor: the body is one
    of its templates (``template`` its class name, ``config`` what its Config takes)."""
    paths: dict[str, Any] = {}
    for node in system.walk():
        if node.kind != "supervisor" or not node.dynamic:
            continue
        templates = system.dynamic_templates(node.name)
        bodies = [_child_body(name, agent, components) for name, agent in sorted(templates.items())]
        created = {
            "description": "Started; Location is the child's /v1/agents/{name}",
            "headers": {"Location": {"schema": {"type": "string"}}},
            "content": {"application/json": {"schema": refs["ChildCreated"]}},
        }
        responses = {
            "201": created,
            "400": _problem("Malformed JSON or X-Timeout-Ms"),
            "403": _problem("Denied by policy (StartChild to this supervisor)"),
            "404": _problem("No such supervisor, or it is not dynamic"),
            "409": _problem("An agent of that name exists"),
            "413": _problem("Body too large"),
            "415": _problem("Not JSON"),
            "422": _problem("Invalid body or config (errors names the field), unknown template"),
            "429": _problem("max_children reached, or quota exceeded", retry=True),
            "503": _problem(
                "The child failed to start, or the supervisor is unavailable", retry=True
            ),
            "504": _problem("Deadline exceeded"),
        }
        operation = {
            "operationId": f"{node.name}.start_child",
            "summary": f"Start a child of dynamic supervisor {node.name} from one of its templates",
            "parameters": [_TIMEOUT_HEADER],
            "requestBody": {
                "required": True,
                # No templates: any body is refused (422 unknown-template).
                "content": {
                    "application/json": {
                        "schema": {"oneOf": bodies} if bodies else refs["ChildRequest"]
                    }
                },
            },
            "responses": responses,
        }
        paths[f"/v1/supervisors/{node.name}/children"] = {"post": operation}
    return paths


def _child_body(template: str, agent: type, components: dict[str, Any]) -> dict[str, Any]:
    """The request body that starts a child of class ``agent`` (template ``template``)."""
    schema = getattr(agent, "Config", None)
    if schema is None:
        config: dict[str, Any] = {"type": "null"}
    else:
        (ref,), found = msgspec.json.schema_components([schema], ref_template=_REF)
        for component_name, component in found.items():
            components.setdefault(component_name, component)
        config = {"anyOf": [ref, {"type": "null"}]}
    child = {"type": "string", "pattern": NAME_PATTERN, "minLength": 1, "maxLength": 200}
    return {
        "type": "object",
        "properties": {"name": child, "template": {"const": template}, "config": config},
        "required": ["name", "template"],
        "additionalProperties": False,
    }


def _terminate_child() -> dict[str, Any]:
    return {
        "operationId": "agents.terminate",
        "summary": "Stop a dynamic child for good (never an agent declared in the wiring)",
        "parameters": [_path("name", _NAME), _TIMEOUT_HEADER],
        "responses": {
            "204": {"description": "Stopped; its name is free again"},
            "400": _problem("Malformed X-Timeout-Ms"),
            "403": _problem("Denied by policy (TerminateChild to its supervisor)"),
            "404": _problem("No agent of that name"),
            "409": _problem("Declared in the wiring: not a dynamic child"),
            "429": _problem("Quota exceeded", retry=True),
            "504": _problem("Deadline exceeded"),
        },
    }


#: One event of a topic stream (OpenAPI 3.1: the schema of an event-stream describes each
#: event; gateway._sse documents the data of each kind).
_SSE_EVENT = {
    "type": "object",
    "properties": {
        "event": {"enum": ["message", "dropped", "gap"]},
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
    "required": ["event", "id", "data"],
}


def _streams() -> dict[str, Any]:
    operation = {
        "operationId": "topics.events",
        "summary": "A live Server-Sent Events stream of a topic's events",
        "parameters": [
            _path("topic", {"type": "string", "pattern": f"^{TOPIC_PATTERN}$"}),
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "description": "Resume after this event: the events after it that the topic's "
                "history holds are sent first (an `event: gap` says what it no longer holds)",
                "schema": {"type": "string", "pattern": f"^{LAST_EVENT_ID_PATTERN}$"},
            },
        ],
        "responses": {
            "200": {
                "description": "`retry:` first; then one `event: message` per published event "
                "(`dropped` and `gap` events say what was missed), each with an `id`; comments "
                "keep it alive",
                "content": {"text/event-stream": {"schema": _SSE_EVENT}},
            },
            "400": _problem("Malformed Last-Event-ID"),
            "403": _problem("Denied by policy"),
            "422": _problem("Invalid topic name"),
            "429": _problem("Quota exceeded, or too many streams of this client", retry=True),
            "503": _problem("Too many streams, shutting down, or pubsub unavailable", retry=True),
        },
    }
    return {"/v1/topics/{topic}/events": {"get": operation}}


def _probes(refs: dict[str, dict[str, str]]) -> dict[str, Any]:
    readiness = {"application/json": {"schema": refs["Readiness"]}}
    return {
        "/healthz": _get("healthz", "Liveness: the process answers", refs["Health"], {}),
        "/livez": _get("livez", "Liveness (as /healthz): the process answers", refs["Health"], {}),
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness: every permanent agent serving",
                "responses": {
                    "200": {"description": "Ready", "content": readiness},
                    "503": {
                        "description": "Not ready: the agents that are not serving",
                        "content": readiness,
                    },
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (text exposition format 0.0.4)",
                "responses": {
                    "200": {
                        "description": "The metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }


def _chaos() -> dict[str, Any]:
    accepted = {
        "description": "The fault is injected",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"status": {"const": "accepted"}},
                    "required": ["status"],
                }
            }
        },
    }
    seconds = {
        "name": "seconds",
        "in": "query",
        "required": False,
        "description": "How long the agent hangs (default 1)",
        "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_HANG_SECONDS},
    }
    paths: dict[str, Any] = {}
    for kind in ("crash", "hang"):
        responses = {
            "202": accepted,
            "403": _problem("Denied by policy, or the agent is a supervisor"),
            "404": _problem("No agent of that name"),
            "429": _problem("Quota exceeded", retry=True),
        }
        parameters = [_path("name", _NAME)]
        if kind == "hang":
            responses["400"] = _problem("seconds is not a number in (0, max]")
            parameters.append(seconds)
        paths[f"/v1/chaos/{{name}}/{kind}"] = {
            "post": {
                "operationId": f"chaos.{kind}",
                "summary": f"Make a worker {kind} (fault injection; --chaos only)",
                "parameters": parameters,
                "responses": responses,
            }
        }
    return paths


def _get(
    operation_id: str,
    summary: str,
    body: dict[str, Any],
    errors: dict[str, Any],
    parameters: list[dict[str, Any]] | None = None,
    *,
    timed: bool = False,
) -> dict[str, Any]:
    """A GET answering ``body`` as JSON; ``timed``: it asks an agent (X-Timeout-Ms applies)."""
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": body}}},
            **errors,
        },
    }
    parameters = [*(parameters or ()), *([_TIMEOUT_HEADER] if timed else [])]
    if parameters:
        operation["parameters"] = parameters
    return {"get": operation}


def _path(name: str, schema_: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema_}


def _problem(description: str, *, retry: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {_PROBLEM_MEDIA: {"schema": {"$ref": _REF.format(name="Problem")}}},
    }
    if retry:
        response["headers"] = _RETRY_AFTER
    return response
