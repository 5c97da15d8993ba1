"""Tracing an HTTP request: one server span per request, W3C trace context in and out.

Only when tracing is on (``--otel``, or the embedding program's
:func:`vibe_actors.tracing.enable`): the app checks one flag per request and
otherwise never comes here. The span follows OpenTelemetry's HTTP server
semantic conventions (``{method} {route}``, ``http.request.method``,
``http.route``, ``http.response.status_code``, ``url.path``...); it continues
the trace of an incoming ``traceparent`` (and ``tracestate``), and the answer
carries the span's own ``traceparent`` beside its ``x-request-id``, so a
client can find its request in the trace backend. The asks the request makes
run with the span current, so they carry it to the agents.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from gateway._http import Receive, Scope, Send
from gateway._routes import MethodNotAllowed, NotFound, Router
from vibe_actors.tracing import TracingNotInstalled, configure, tracer

__all__ = ["TracingNotInstalled", "configure", "traced"]


class ASGIApp(Protocol):
    """The gateway, as this module sees it: an ASGI app with a router."""

    router: Router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...


#: The request headers a trace context is read from (lower case, as ASGI gives them).
_CONTEXT_HEADERS = (b"traceparent", b"tracestate")


async def traced(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve the request with ``app`` (the gateway, which serves a scope marked
    ``vibe.traced`` itself) inside its server span (see the module docstring)."""
    carrier: dict[str, str] = {}
    user_agent = None
    for key, value in scope["headers"]:
        if key in _CONTEXT_HEADERS:
            carrier.setdefault(key.decode(), value.decode("latin-1"))
        elif key == b"user-agent" and user_agent is None:
            user_agent = value.decode("latin-1")
    # Imported here, as in vibe_actors._tracing: it loads entry points, only tracing needs it.
    from opentelemetry import propagate

    parent = propagate.extract(carrier) if carrier else None
    method: str = scope["method"]
    span = tracer().start_span(
        method, parent, SpanKind.SERVER, _attributes(scope, method, user_agent)
    )
    token = otel_context.attach(trace.set_span_in_context(span))
    context = span.get_span_context()
    traceparent = (
        f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
    ).encode()

    async def send_traced(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", ()), (b"traceparent", traceparent)]
            for key, value in headers:
                if key == b"x-request-id":
                    span.set_attribute("vibe.request_id", value.decode("latin-1"))
            status = message["status"]
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            message = {**message, "headers": headers}
        await send(message)

    try:
        await app({**scope, "vibe.traced": True}, receive, send_traced)
    except BaseException as exc:  # a bug or a cancellation: on the span, then on its way
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        otel_context.detach(token)
        route = _route_of(app, scope, method)
        if route is not None:
            span.set_attribute("http.route", route)
            span.update_name(f"{method} {route}")
        span.end()


def _route_of(app: ASGIApp, scope: Scope, method: str) -> str | None:
    """The route template the request matched (of another method for a 405), if any: the
    same label as the request's metrics, from the router's cache."""
    path: str = scope["path"]
    root = scope.get("root_path")
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    try:
        route, _ = app.router.match(method, path)
    except NotFound:
        return None
    except MethodNotAllowed as exc:
        return exc.route.template
    return route.template


def _attributes(scope: Scope, method: str, user_agent: str | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.path": scope["path"],
        "url.scheme": scope.get("scheme", "http"),
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    query = scope.get("query_string")
    if query:
        attributes["url.query"] = query.decode("latin-1")
    server = scope.get("server")
    if server and server[1] is not None:
        attributes["server.address"], attributes["server.port"] = server[0], server[1]
    client = scope.get("client")
    if client:
        attributes["client.address"], attributes["client.port"] = client[0], client[1]
    if user_agent is not None:
        attributes["user_agent.original"] = user_agent
    return attributes
