"""The ASGI application: HTTP requests become asks to agents.

``create_app(system)`` returns a plain ASGI callable with no global state; it
can be served by uvicorn (see :mod:`gateway._server`) or mounted inside
another ASGI app. It never starts or stops the system: whoever created the
system owns it.

Every route is a row of one table (:data:`gateway._routes.ROUTES`: method,
template, endpoint); the endpoint is the method of :class:`Gateway` of that
name, given a :class:`~gateway._request.Request`. Under a mount the route is
matched on the path below ``root_path``. The actor hop never blocks the event
loop: replies come back through ``call_soon_threadsafe``; an agent's error
reply stays data until it becomes a problem+json answer.
"""

from __future__ import annotations

import hmac
import time
from time import perf_counter as _perf_counter
from typing import Any

import msgspec
import structlog

from gateway._access import AccessLog
from gateway._app_settings import AppSettings
from gateway._ask_route import AskRoute
from gateway._body import (
    parse_timeout,
)
from gateway._breaker import CrashBreaker
from gateway._catalog import Catalog
from gateway._children_routes import ChildrenRoutes
from gateway._console import ConsoleFiles, ConsoleRoutes
from gateway._cors import Cors
from gateway._entity_routes import EntityRoutes
from gateway._guards import Guards, Verdict
from gateway._http import (
    ClientDisconnected,
    Receive,
    Scope,
    Send,
    header,
    respond,
)
from gateway._http_metrics import HttpMetrics
from gateway._ops import inject_chaos, probe
from gateway._problem_types import PROBLEM_TYPES, reply_type
from gateway._problems import (
    RETRY_AFTER,
    Problem,
    Reject,
    make_problem,
    problem_for_reply,
)
from gateway._request import Request, lifespan
from gateway._routes import ROUTES, UNMATCHED, MethodNotAllowed, NotFound, Route, Router
from gateway._runtime_events import RuntimeEvents
from gateway._sse import TopicStreams
from gateway._sse_wire import StreamRefused
from gateway._tracing import traced
from gateway._views import Views
from vibe_actors import (
    ActorSystem,
    Caller,
    ErrorReply,
    tracing,
)
from vibe_actors.agents import schema

__all__ = ["AppSettings", "Gateway", "create_app"]

_log = structlog.get_logger("gateway")
_encode = msgspec.json.Encoder().encode
_PROBLEM = b"application/problem+json"
#: The message names policy rules use for chaos (the views use the introspect agent's).
_CHAOS = {"crash": "Crash", "hang": "Hang"}


class Gateway(AskRoute, ChildrenRoutes, EntityRoutes, ConsoleRoutes):
    """The ASGI callable. See the module docstring."""

    def __init__(self, system: ActorSystem, settings: AppSettings | None = None) -> None:
        self.system = system
        self.settings = settings or AppSettings()
        self.catalog = Catalog(system)
        self.views = Views(system, self.settings.introspect)
        self.streams = TopicStreams(
            system,
            pubsub_agent=self.settings.pubsub,
            buffer=self.settings.stream_buffer,
            keepalive=self.settings.keepalive_seconds,
            max_streams=self.settings.max_streams,
            history=self.settings.stream_history,
            history_topics=self.settings.history_topics,
            retry_ms=self.settings.retry_ms,
        )
        #: The runtime events (GET /v1/events; reloads and escalations for GET /v1/system).
        self.runtime_events = RuntimeEvents.for_app(system, self.settings)
        self.started_at = time.time()
        #: The console's files (gateway._console), read once; None with the console off.
        self.console = ConsoleFiles() if self.settings.ui else None
        self.metrics = HttpMetrics(self._stream_figures)
        self.breaker = CrashBreaker(system, self.metrics.registry, self.settings.breaker)
        self._tokens = [(p, t.encode()) for p, t in self.settings.tokens.items()]
        #: Every ask of an authenticated request carries its Caller (made once per principal),
        #: so that what an agent later sends on the request's behalf is authorised as the
        #: principal's own request would be (vibe_actors._authz).
        self._callers = {p: Caller(p) for p in self.settings.tokens}
        self._default_timeout = self.settings.default_timeout_ms / 1000
        #: A Content-Length with fewer digits than the limit cannot be over it.
        self._limit_digits = len(str(self.settings.max_body_bytes))
        self._max_body = self.settings.max_body_bytes
        guards = Guards(system)
        self.guards = guards if (guards.limits or guards.policy_agent) else None
        self.router = Router(
            r
            for r in ROUTES
            if (self.settings.chaos or not r.chaos) and (self.settings.ui or not r.console)
        )
        self._cors = Cors(self.settings.cors_origins) if self.settings.cors_origins else None
        #: One line per request (gateway._access), as the process's logging is configured.
        self.access = AccessLog.for_process() if self.settings.access_log else None

    def close_streams(self) -> None:
        """End every open event stream (call on the event loop when the drain begins)."""
        self.streams.close_all()
        self.runtime_events.close_all()

    def _stream_figures(self) -> tuple[int, int, int]:
        streams, events = self.streams, self.runtime_events
        return (
            streams.open_streams + events.open_streams,
            streams.events_sent + events.events_sent,
            streams.dropped + events.dropped,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await lifespan(receive, send)
            return
        # Tracing off, this check is all it costs. On, traced() calls back in, marked: the
        # request is served here, not in a helper, as no frame may be added to the stack
        # a body is decoded on (see ask: each frame is a level of nesting less).
        if tracing.enabled() and "vibe.traced" not in scope:
            await traced(self, scope, receive, send)
            return
        started = _perf_counter()
        request = Request(scope, receive, send)
        label, status = UNMATCHED, 500
        try:
            if self._cors is not None and request.origin is not None:
                if request.method == "OPTIONS" and request.cors_method is not None:
                    status = await self._preflight(request, self._cors)
                    self._observe(request, label, status, _perf_counter() - started)
                    return
                if self._cors.allows(request.origin):
                    request.send = self._cors.wrap(send, request.origin)
            route, request.params = self._route(request)
            label = route.template
            status = await getattr(self, route.endpoint)(request)
        except Reject as reject:
            status = reject.problem.status
            if reject.route is not None:
                label = reject.route
            await self._problem(request.send, reject.problem, reject.headers)
        except ClientDisconnected:
            status = 499
        except Exception:  # noqa: BLE001 - a genuine bug: logged in full, answered without details
            _log.exception("request_failed", request_id=request.request_id, path=request.path)
            status = 500
            problem = make_problem(
                500, "internal", "internal error; see the server log", request.request_id
            )
            await self._problem(request.send, problem, ())
        duration = _perf_counter() - started
        self.metrics.observe(label, scope["method"], status, duration)
        if self.access is not None:
            self.access.record(
                scope["method"], label, status, duration, request.request_id,
                request.principal, scope.get("client"),
            )  # fmt: skip

    def _observe(self, request: Request, label: str, status: int, duration: float) -> None:
        """The metrics and the access line of a request answered before its route."""
        self.metrics.observe(label, request.method, status, duration)
        if self.access is not None:
            self.access.record(
                request.method, label, status, duration, request.request_id,
                request.principal, request.scope.get("client"),
            )  # fmt: skip

    def _route(self, request: Request) -> tuple[Route, tuple[str, ...]]:
        """The route of ``request``, its principal authenticated; raises Reject (401, 404, 405).

        Under ``/v1`` the token is checked before the route: a 401 tells nothing
        about which agents or routes exist.
        """
        method, path = request.method, request.path
        try:
            route, params = self.router.match(method, path)
        except NotFound:
            if self._tokens and path.startswith("/v1/"):
                self._authenticate(request)
            detail = f"no route {request.scope['path']}"
            raise Reject(make_problem(404, "not-found", detail, request.request_id)) from None
        except MethodNotAllowed as exc:
            if self._tokens and exc.route.secured:
                self._authenticate(request)
            allow = ", ".join(exc.allow)
            problem = make_problem(405, "method-not-allowed", f"use {allow}", request.request_id)
            raise Reject(problem, ((b"allow", allow.encode()),), route=exc.route.template) from None
        if self._tokens and route.secured:
            request.principal = self._authenticate(request)
        return route, params

    async def _preflight(self, request: Request, cors: Cors) -> int:
        """A CORS preflight: 204 with what the path allows, or 403 (gateway._cors)."""
        origin, method = request.origin or b"", (request.cors_method or b"").decode("latin-1")
        methods = self.router.methods_for(request.path)
        if cors.allows(origin) and method in methods:
            await respond(request.send, 204, b"", extra=cors.preflight_headers(origin, methods))
            return 204
        detail = f"a {method} to {request.path} is not allowed from this origin"
        problem = make_problem(403, "cors-refused", detail, request.request_id)
        await self._problem(request.send, problem, ())
        return 403

    async def _problem(
        self, send: Send, problem: Problem, headers: tuple[tuple[bytes, bytes], ...]
    ) -> None:
        extra = ((b"x-request-id", problem.request_id.encode()), *headers)
        body = schema.http_json(problem, problem.reply)  # its reply's type by HTTP name
        await respond(send, problem.status, body, _PROBLEM, extra)

    # -- the read-only routes ------------------------------------------------------

    async def probe(self, request: Request) -> int:
        """``/healthz``, ``/readyz`` and ``/metrics`` (gateway._ops)."""
        name = request.path.strip("/")
        status, body, kind = probe(name, self.system, self.metrics.registry)
        await respond(request.send, status, body, kind, request.ok)
        return status

    async def agents(self, request: Request) -> int:
        # The views expose failure texts: authorised as the introspect agent's asks.
        await self._guard(request, self.settings.introspect, "Agents")
        views = await self.views.agents(request.request_id, self._request_timeout(request))
        return await self._json(request, _viewed(views, request.request_id))

    async def agent(self, request: Request) -> int:
        await self._guard(request, self.settings.introspect, "Describe")
        (name,) = request.params
        view = await self.views.agent(name, request.request_id, self._request_timeout(request))
        info = msgspec.structs.asdict(_viewed(view, request.request_id))
        info["schemas"] = self.catalog.schemas(name)
        return await self._json(request, info)

    async def tree(self, request: Request) -> int:
        await self._guard(request, self.settings.introspect, "Tree")
        tree = await self.views.tree(request.request_id, self._request_timeout(request))
        return await self._json(request, _viewed(tree, request.request_id))

    async def openapi(self, request: Request) -> int:
        document = self.catalog.openapi(
            secured=bool(self._tokens), chaos=self.settings.chaos, console=self.settings.ui
        )
        root = request.scope.get("root_path")
        if root:  # mounted: the paths are below the mount's prefix
            document = {**document, "servers": [{"url": root}]}
        return await self._json(request, document)

    async def problem_type(self, request: Request) -> int:
        """``GET /problems/{slug}``: what a problem type means (gateway._problem_types)."""
        (slug,) = request.params
        known = PROBLEM_TYPES.get(slug)
        if known is None:
            replies = (reply_type(r) for r in schema.error_replies(self.system))
            known = next((r for r in replies if r.type == f"/problems/{slug}"), None)
        if known is None:
            detail = f"no problem type {slug!r}"
            raise Reject(make_problem(404, "not-found", detail, request.request_id))
        return await self._json(request, known)

    async def chaos(self, request: Request) -> int:
        name, kind = request.params[0], request.path.rstrip("/").rsplit("/", 1)[1]
        # A fault is authorised like a message of that name to its target.
        await self._guard(request, name, _CHAOS[kind])
        inject_chaos(self.system, name, kind, request.scope, request.request_id)
        await respond(request.send, 202, b'{"status":"accepted"}', extra=request.ok)
        return 202

    async def _json(self, request: Request, value: Any) -> int:
        await respond(request.send, 200, _encode(value), extra=request.ok)
        return 200

    async def events(self, request: Request) -> int:
        """``GET /v1/topics/{topic}/events``: a Server-Sent Events stream (gateway._sse)."""
        (topic,) = request.params
        await self._guard(request, self.settings.pubsub, "Subscribe")
        resume = header(request.scope, b"last-event-id")
        try:
            await self.streams.stream(
                topic, request.send, request.receive, request.request_id, resume
            )
        except StreamRefused as exc:
            problem = make_problem(exc.status, exc.slug, exc.detail, request.request_id)
            raise Reject(problem, (RETRY_AFTER,) if exc.status == 503 else ()) from None
        return 200

    async def _guard(self, request: Request, agent: str, message: str) -> None:
        """Policy (403) and quota (429) for sending ``message`` to ``agent``; raises Reject."""
        guards = self.guards
        if guards is None:
            return
        self._guard_local(request, agent, message)
        if guards.quota_agent is not None:
            await self._guard_shared(request, agent)

    def _guard_local(self, request: Request, agent: str, message: str) -> None:
        """The policy and the in-memory quota (no await: the ask's hot path); raises Reject."""
        assert self.guards is not None
        verdict = self.guards.check(request.principal, agent, message, bool(self._tokens))
        if verdict is not None:
            raise _rejection(verdict, request.request_id)

    async def _guard_shared(self, request: Request, agent: str) -> None:
        """A shared store's quota (an ask of the quota agent); raises Reject."""
        assert self.guards is not None
        verdict = await self.guards.check_shared(request.principal, agent, request.request_id)
        if verdict is not None:
            raise _rejection(verdict, request.request_id)

    def _request_timeout(self, request: Request) -> float:
        """The deadline of this request's ask: X-Timeout-Ms, else the default."""
        raw = request.timeout
        if raw is None:
            return self._default_timeout
        return parse_timeout(raw, self.settings.max_timeout_ms, request.request_id)

    # -- the rest ----------------------------------------------------------------

    def _authenticate(self, request: Request) -> str:
        """The principal of the request's bearer token; raises Reject (401) without one."""
        raw = request.authorization or b""
        scheme, _, presented = raw.partition(b" ")
        principal = None
        for candidate, token in self._tokens:  # no early exit: constant time in the token list
            if hmac.compare_digest(presented, token) and scheme.lower() == b"bearer":
                principal = candidate
        if principal is None:
            problem = make_problem(
                401, "unauthorized", "a valid bearer token is required", request.request_id
            )
            raise Reject(problem, ((b"www-authenticate", b'Bearer realm="vibe"'),))
        return principal


def create_app(system: ActorSystem, settings: AppSettings | None = None) -> Gateway:
    """The gateway ASGI app for a (started) ``system``."""
    return Gateway(system, settings)


def _viewed(view: Any, request_id: str) -> Any:
    """A view, or the introspect agent's error reply turned into a problem."""
    if isinstance(view, ErrorReply):
        problem = problem_for_reply(view, request_id)
        raise Reject(problem, (RETRY_AFTER,) if problem.status in (429, 503) else ())
    return view


def _rejection(verdict: Verdict, request_id: str) -> Reject:
    """The problem response of a guard's ``verdict``."""
    retry = (
        ()
        if verdict.retry_after is None
        else ((b"retry-after", str(verdict.retry_after).encode()),)
    )
    return Reject(make_problem(verdict.status, verdict.slug, verdict.detail, request_id), retry)
