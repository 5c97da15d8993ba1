"""The OpenAPI paths of the console's routes (:mod:`gateway._console`): ``/v1/events``,
``/v1/dead-letters``, ``/v1/system``, and the console's files when it is served."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway._console import DeadLetterReport, SystemView
from gateway._sse_wire import LAST_EVENT_ID_PATTERN

__all__ = ["RUNTIME_EVENT_NAMES", "console_paths"]

_REF = "#/components/schemas/{name}"
#: The ``event:`` names of the runtime stream (each runtime event's type name).
RUNTIME_EVENT_NAMES = (
    "AgentCrashedEvent", "AgentRestarted", "SupervisorGaveUp", "AgentAbandoned",
    "CircuitOpened", "DeadLettered", "DynamicChildStarted", "DynamicChildTerminated",
    "TreeReloaded", "ReloadRejected", "AgentDeclaredHung", "PolicyDenied", "AuditChainBroken",
)  # fmt: skip
_RUNTIME_EVENT = {
    "type": "object",
    "properties": {
        "event": {
            "type": "string",
            "description": "The runtime event's type name ("
            + ", ".join(RUNTIME_EVENT_NAMES)
            + ", ...), or `dropped` / `gap`",
        },
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": "The event's fields, `type` its type name and `at` its time",
        },
    },
    "required": ["event", "data"],
}


def console_paths(components: dict[str, Any], problem: Any, *, console: bool) -> dict[str, Any]:
    """The paths; ``problem(description, retry=)`` builds a problem response,
    ``console``: the console's files are served."""
    refs, found = msgspec.json.schema_components([DeadLetterReport, SystemView], ref_template=_REF)
    for name, component in found.items():
        components.setdefault(name, component)
    viewed = {"403": problem("Denied by policy"), "429": problem("Quota exceeded", retry=True)}
    paths: dict[str, Any] = {
        "/v1/events": {"get": _events(problem)},
        "/v1/dead-letters": _json_get(
            "deadLetters.list", "Dead letters: counts by reason, and the newest", refs[0], viewed
        ),
        "/v1/system": _json_get(
            "system.describe",
            "Uptime, store, reloads and escalations of the running system",
            refs[1],
            viewed,
        ),
    }
    if console:
        paths.update(_console(problem))
    return paths


def _events(problem: Any) -> dict[str, Any]:
    return {
        "operationId": "runtime.events",
        "summary": "Runtime events (crashes, restarts, escalations, dead letters, reloads) "
        "as a live Server-Sent Events stream",
        "parameters": [
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "description": "Resume after this event: the kept events after it are sent "
                "first (an `event: gap` says what is no longer kept)",
                "schema": {"type": "string", "pattern": f"^{LAST_EVENT_ID_PATTERN}$"},
            }
        ],
        "responses": {
            "200": {
                "description": "`retry:` first; then one event per runtime event, named by its "
                "type, each with an `id`; comments keep it alive",
                "content": {"text/event-stream": {"schema": _RUNTIME_EVENT}},
            },
            "400": problem("Malformed Last-Event-ID"),
            "403": problem("Denied by policy"),
            "429": problem("Quota exceeded, or too many streams of this client", retry=True),
            "503": problem("Too many streams, or shutting down", retry=True),
        },
    }


def _json_get(
    operation_id: str, summary: str, body: dict[str, Any], errors: dict[str, Any]
) -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": body}}},
                **errors,
            },
        }
    }


def _console(problem: Any) -> dict[str, Any]:
    page = {"text/html": {"schema": {"type": "string"}}}
    files = {
        media: {"schema": {"type": "string"}}
        for media in ("text/html", "text/javascript", "text/css", "image/svg+xml")
    }
    redirect = {
        "description": "To /ui/ (the page's links are relative to it)",
        "headers": {"Location": {"schema": {"type": "string"}}},
    }
    return {
        "/ui": {
            "get": {
                "operationId": "console.index",
                "summary": "The web console (/ui redirects to /ui/)",
                "responses": {
                    "200": {"description": "The console's page", "content": page},
                    "308": redirect,
                },
            }
        },
        "/ui/{file}": {
            "get": {
                "operationId": "console.file",
                "summary": "A file of the web console",
                "parameters": [
                    {
                        "name": "file",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]+$"},
                    }
                ],
                "responses": {
                    "200": {"description": "The file", "content": files},
                    "404": problem("The console has no such file"),
                },
            }
        },
    }
