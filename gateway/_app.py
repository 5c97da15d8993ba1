"""The ASGI application: HTTP requests become asks to agents.

``create_app(system)`` returns a plain ASGI callable with no global state; it
can be served by uvicorn (see :mod:`gateway._server`) or mounted inside
another ASGI app. It never starts or stops the system: whoever created the
system owns it.

Routing is a split of the path, not a framework router (Starlette's routing
cost about 30% of raw ASGI throughput here). The actor hop never blocks the
event loop: replies come back through ``call_soon_threadsafe``.
"""

from __future__ import annotations

import hmac
from time import perf_counter as _perf_counter
from typing import Any

import msgspec
import structlog

from gateway._breaker import BreakerSettings, CrashBreaker
from gateway._catalog import Catalog, HotEntry
from gateway._guards import Guards
from gateway._http import (
    BodyTooLarge,
    ClientDisconnected,
    Receive,
    Scope,
    Send,
    read_body,
    respond,
)
from gateway._metrics import HttpMetrics
from gateway._ops import inject_chaos, probe
from gateway._problems import (
    RETRY_AFTER,
    FieldError,
    Problem,
    Reject,
    make_problem,
    problem_for_reply,
)
from gateway._request import ASK_ROUTE, MAX_TIMEOUT_DIGITS, Headers, lifespan, route_of
from gateway._sse import StreamRefused, TopicStreams
from gateway._views import Views
from vibe_actors import (
    MAX_NESTING,
    ActorSystem,
    AgentCrashed,
    AgentStatus,
    AskError,
    Caller,
    CodecError,
    ErrorReply,
    UnknownAgent,
    check_nesting,
    decode_error,
    json_brackets,
)

__all__ = ["AppSettings", "Gateway", "create_app"]

_log = structlog.get_logger("gateway")
_encode = msgspec.json.Encoder().encode
_PROBLEM = b"application/problem+json"
_JSON = (b"content-type", b"application/json")
#: Constants for the hot path: reading an enum member through its class costs ~100 ns,
#: and formatting a Content-Length four times what a tuple lookup does.
_RUNNING = AgentStatus.RUNNING
_LENGTHS = tuple(b"%d" % n for n in range(4096))
#: Content-Length past 18 digits is no size anyone can send (checked before int() is called).
_MAX_LENGTH_DIGITS = 18
#: The message names policy rules use for the views (the introspect agent's) and for chaos.
_VIEWS = {1: "Agents", 2: "Describe"}
_CHAOS = {"crash": "Crash", "hang": "Hang"}


class AppSettings(msgspec.Struct, frozen=True):
    """What the ASGI app needs (a subset of the process's GatewaySettings)."""

    max_body_bytes: int = 1_048_576
    default_timeout_ms: int = 5_000
    max_timeout_ms: int = 60_000
    chaos: bool = False
    tokens: dict[str, str] = {}
    #: The introspect agent behind /v1/agents and /v1/tree (described in-process if absent).
    introspect: str = "introspect"
    #: The pubsub agent behind /v1/topics/{topic}/events, and the SSE limits.
    pubsub: str = "pubsub"
    max_streams: int = 256
    stream_buffer: int = 256
    keepalive_seconds: float = 15.0

    #: The circuit breaker per (agent, message type) against poison requests.
    breaker: BreakerSettings = BreakerSettings()

    def __repr__(self) -> str:
        return f"AppSettings(chaos={self.chaos}, tokens={len(self.tokens)} principals)"


class Gateway:
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
        )
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
        self.guards = guards if (guards.quota is not None or guards.policy_agent) else None

    def close_streams(self) -> None:
        """End every open event stream (call on the event loop when the drain begins)."""
        self.streams.close_all()

    def _stream_figures(self) -> tuple[int, int, int]:
        streams = self.streams
        return streams.open_streams, streams.events_sent, streams.dropped

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The request is handled here rather than in a coroutine of its own: the
        # actor hop's await passes through each frame of the chain, twice a request.
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await lifespan(receive, send)
            return
        started = _perf_counter()
        headers = Headers(scope)
        request_id = headers.request_id
        method, path = scope["method"], scope["path"]
        route, status = ASK_ROUTE, 500
        try:
            parts = path.split("/")
            if method == "POST" and len(parts) == 5 and parts[2] == "agents" and parts[1] == "v1":
                # The hot path, first: POST /v1/agents/{name}/{type}.
                principal = self._authenticate(headers, request_id) if self._tokens else None
                status = await self._ask(parts[3], parts[4], headers, receive, send, principal)
            else:
                route = route_of(path)
                status = await self._dispatch(scope, headers, receive, send)
        except Reject as reject:
            status = reject.problem.status
            await self._problem(send, reject.problem, reject.headers)
        except ClientDisconnected:
            status = 499
        except Exception:  # noqa: BLE001 - a genuine bug: logged in full, answered without details
            _log.exception("request_failed", request_id=request_id, path=path)
            status = 500
            problem = make_problem(
                500, "internal", "internal error; see the server log", request_id
            )
            await self._problem(send, problem, ())
        self.metrics.observe(route, method, status, _perf_counter() - started)

    async def _problem(
        self, send: Send, problem: Problem, headers: tuple[tuple[bytes, bytes], ...]
    ) -> None:
        extra = ((b"x-request-id", problem.request_id.encode()), *headers)
        await respond(send, problem.status, _encode(problem), _PROBLEM, extra)

    async def _dispatch(self, scope: Scope, headers: Headers, receive: Receive, send: Send) -> int:
        request_id = headers.request_id
        parts = scope["path"].strip("/").split("/")
        method = scope["method"]
        ok = ((b"x-request-id", request_id.encode()),)
        if parts[0] in ("healthz", "readyz", "metrics") and len(parts) == 1:
            _allow(method, "GET", request_id)
            status, body, kind = probe(parts[0], self.system, self.metrics.registry)
            await respond(send, status, body, kind, ok)
            return status
        if parts[0] != "v1" or len(parts) < 2:
            raise Reject(make_problem(404, "not-found", f"no route {scope['path']}", request_id))
        principal = self._authenticate(headers, request_id)
        return await self._v1(parts[1:], scope, headers, receive, send, principal)

    async def _v1(
        self,
        parts: list[str],
        scope: Scope,
        headers: Headers,
        receive: Receive,
        send: Send,
        principal: str | None,
    ) -> int:
        method, head, request_id = scope["method"], parts[0], headers.request_id
        ok = ((b"x-request-id", request_id.encode()),)
        if head == "agents" and len(parts) == 3:
            _allow(method, "POST", request_id)
            return await self._ask(parts[1], parts[2], headers, receive, send, principal)
        if head == "agents" and len(parts) in (1, 2):
            _allow(method, "GET", request_id)
            # The views expose failure texts: authorised as the introspect agent's asks.
            self._guard(principal, self.settings.introspect, _VIEWS[len(parts)], request_id)
            timeout = self._request_timeout(headers)
            if len(parts) == 1:
                body = _encode(_viewed(await self.views.agents(request_id, timeout), request_id))
            else:
                body = _encode(await self._agent(parts[1], request_id, timeout))
            await respond(send, 200, body, extra=ok)
            return 200
        if head in ("tree", "openapi.json") and len(parts) == 1:
            _allow(method, "GET", request_id)
            if head == "tree":
                self._guard(principal, self.settings.introspect, "Tree", request_id)
                tree = await self.views.tree(request_id, self._request_timeout(headers))
                body = _encode(_viewed(tree, request_id))
            else:
                settings = self.settings
                body = _encode(
                    self.catalog.openapi(secured=bool(self._tokens), chaos=settings.chaos)
                )
            await respond(send, 200, body, extra=ok)
            return 200
        if head == "topics" and len(parts) == 3 and parts[2] == "events":
            _allow(method, "GET", request_id)
            return await self._events(parts[1], headers, send, receive, principal)
        if (
            head == "chaos"
            and self.settings.chaos
            and len(parts) == 3
            and parts[2] in ("crash", "hang")
        ):
            _allow(method, "POST", request_id)
            # A fault is authorised like a message of that name to its target.
            self._guard(principal, parts[1], _CHAOS[parts[2]], request_id)
            inject_chaos(self.system, parts[1], parts[2], scope, request_id)
            await respond(send, 202, b'{"status":"accepted"}', extra=ok)
            return 202
        raise Reject(make_problem(404, "not-found", f"no route {scope['path']}", request_id))

    # -- asks ------------------------------------------------------------------

    async def _ask(
        self,
        name: str,
        tag: str,
        headers: Headers,
        receive: Receive,
        send: Send,
        principal: str | None,
    ) -> int:
        request_id = headers.request_id
        found = self.catalog.lookup(name, tag)
        if found is None:
            found = self._message_type(name, tag, request_id)
        message_type, decoder, ref, cell = found
        if self.guards is not None:
            self._guard(principal, name, tag, request_id)
        if headers.content_type != b"application/json":  # the common case costs one compare
            _require_json(headers.content_type, request_id)
        timeout = (
            self._request_timeout(headers) if headers.timeout is not None else self._default_timeout
        )
        declared = headers.content_length
        if declared is not None and len(declared) >= self._limit_digits:
            # Before the first receive(): a client declaring too much may send nothing more.
            self._check_declared(declared, request_id)
        first = await receive()  # almost always the whole body, in one message
        body = first.get("body", b"")
        if first.get("more_body") or len(body) > self._max_body:
            body = body + await self._body(receive, request_id, len(body))
        try:
            message = decoder.decode(body)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            # Besides DecodeError, msgspec refuses bad input with UnicodeDecodeError
            # (invalid UTF-8 in a string, before 0.23) and RecursionError (nesting
            # past ~1000 levels in free-form `Any` fields).
            raise self._invalid_body(message_type, exc, request_id) from None
        if len(body) > MAX_NESTING:  # shorter bodies cannot nest that deep
            self._check_nesting(message, body, request_id)
        breaker = self.breaker
        if breaker.tripped and (wait := breaker.refuse(name, tag)) is not None:
            detail = (
                f"{tag} requests to {name!r} are refused for now: they kept crashing its"
                " handler (a circuit breaker); retry later"
            )
            problem = make_problem(503, "circuit-open", detail, request_id)
            raise Reject(problem, ((b"retry-after", str(wait).encode()),))
        status = cell.status if cell is not None else self.system.status(name)
        if status is not _RUNNING:
            raise Reject(
                make_problem(
                    503, "agent-unavailable", f"agent {name!r} is {status.value}", request_id
                ),
                (RETRY_AFTER,),
            )
        try:
            # An error reply raised rather than returned: the runtime's test for one
            # is cheaper than isinstance here, and the success path pays nothing.
            reply = await ref.ask_async(
                message,
                timeout=timeout,
                request_id=request_id,
                caller=None if principal is None else self._callers[principal],
            )
        except AskError as error:
            if error.reply.__class__ is AgentCrashed:
                breaker.crashed(name, tag, request_id)
            elif breaker.tripped:
                breaker.answered(name, tag)
            problem = problem_for_reply(error.reply, request_id)
            retry = (RETRY_AFTER,) if problem.status in (429, 503) else ()
            raise Reject(problem, retry) from None
        if breaker.tripped:
            breaker.answered(name, tag)
        if reply is None:
            await respond(send, 204, b"", extra=((b"x-request-id", request_id.encode()),))
            return 204
        body = _encode(reply)
        size = len(body)
        headers_out = [
            _JSON,
            (b"content-length", _LENGTHS[size] if size < 4096 else b"%d" % size),
            (b"x-request-id", request_id.encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers_out})
        await send({"type": "http.response.body", "body": body})
        return 200

    async def _events(
        self, topic: str, headers: Headers, send: Send, receive: Receive, principal: str | None
    ) -> int:
        request_id = headers.request_id
        if self.guards is not None:
            verdict = self.guards.check(
                principal, self.settings.pubsub, "Subscribe", authenticated=bool(self._tokens)
            )
            if verdict is not None:
                raise Reject(make_problem(verdict.status, verdict.slug, verdict.detail, request_id))
        try:
            await self.streams.stream(topic, send, receive, request_id)
        except StreamRefused as exc:
            problem = make_problem(exc.status, exc.slug, exc.detail, request_id)
            raise Reject(problem, (RETRY_AFTER,) if exc.status == 503 else ()) from None
        return 200

    def _guard(self, principal: str | None, agent: str, message: str, request_id: str) -> None:
        """Policy (403) and quota (429) for sending ``message`` to ``agent``; raises Reject."""
        if self.guards is None:
            return
        verdict = self.guards.check(principal, agent, message, authenticated=bool(self._tokens))
        if verdict is not None:
            retry = (
                ()
                if verdict.retry_after is None
                else ((b"retry-after", str(verdict.retry_after).encode()),)
            )
            problem = make_problem(verdict.status, verdict.slug, verdict.detail, request_id)
            raise Reject(problem, retry)

    def _request_timeout(self, headers: Headers) -> float:
        """The deadline of this request's ask: X-Timeout-Ms, else the default."""
        if headers.timeout is None:
            return self._default_timeout
        return self._timeout(headers.timeout, headers.request_id)

    def _message_type(self, name: str, tag: str, request_id: str) -> HotEntry:
        """The entry the catalogue's lookup did not have, or a 404 naming what is unknown."""
        try:
            types = self.catalog.types(name)
        except UnknownAgent:
            raise Reject(
                make_problem(404, "unknown-agent", f"no agent named {name!r}", request_id)
            ) from None
        message_type = types.get(tag)
        if message_type is None:
            known = ", ".join(sorted(types))
            detail = f"agent {name!r} has no message type {tag!r} (it accepts: {known})"
            raise Reject(make_problem(404, "unknown-message-type", detail, request_id))
        return self.catalog.entry(name, message_type)

    def _timeout(self, raw: bytes | None, request_id: str) -> float:
        if raw is None:
            return self.settings.default_timeout_ms / 1000
        # The length first: int() of thousands of digits raises (Python's digit limit).
        if len(raw) > MAX_TIMEOUT_DIGITS or not raw.isdigit() or int(raw) == 0:
            detail = (
                "X-Timeout-Ms must be a positive integer of milliseconds,"
                f" at most {MAX_TIMEOUT_DIGITS} digits (it is capped at"
                f" {self.settings.max_timeout_ms})"
            )
            raise Reject(make_problem(400, "bad-timeout", detail, request_id))
        return min(int(raw), self.settings.max_timeout_ms) / 1000

    def _check_declared(self, declared: bytes, request_id: str) -> None:
        """413 at once when Content-Length alone is over the limit; 400 when it is no length.

        The parser lets any run of digits through; more than 18 of them is no
        size a client can send (and int() of thousands of digits raises).
        """
        if len(declared) > _MAX_LENGTH_DIGITS:
            detail = f"Content-Length must be a number of at most {_MAX_LENGTH_DIGITS} digits"
            raise Reject(make_problem(400, "bad-content-length", detail, request_id))
        if declared.isdigit() and int(declared) > self.settings.max_body_bytes:
            raise self._too_large(request_id)

    async def _body(self, receive: Receive, request_id: str, received: int = 0) -> bytes:
        """The rest of the body (``received`` bytes already in hand), within the limit."""
        limit = self.settings.max_body_bytes
        try:
            if received > limit:
                raise BodyTooLarge
            return await read_body(receive, limit - received)
        except BodyTooLarge:
            raise self._too_large(request_id) from None

    def _too_large(self, request_id: str) -> Reject:
        # No "connection: close": closing with body bytes unread makes the kernel send
        # a reset that can destroy the 413 before the client reads it. uvicorn discards
        # the rest of the body; the header timeout (gateway._protocol) bounds that.
        detail = f"the body is over {self.settings.max_body_bytes} bytes"
        return Reject(make_problem(413, "body-too-large", detail, request_id))

    @staticmethod
    def _check_nesting(message: Any, body: bytes, request_id: str) -> None:
        """422 for a body nested deeper than every encoder on the way out can take."""
        try:
            check_nesting(message, json_brackets(body))
        except CodecError as exc:
            raise Reject(make_problem(422, "nesting-too-deep", str(exc), request_id)) from None

    def _invalid_body(
        self,
        message_type: type,
        exc: msgspec.DecodeError | UnicodeDecodeError | RecursionError,
        request_id: str,
    ) -> Reject:
        """422 naming the field for a body of the wrong shape; 400 for malformed JSON."""
        error = decode_error(exc)
        if isinstance(exc, msgspec.ValidationError):
            field = FieldError(path=error.path, message=error.message)
            detail = f"the body is not a valid {message_type.__name__}: {exc}"
            return Reject(make_problem(422, "invalid-body", detail, request_id, [field]))
        return Reject(make_problem(400, "malformed-json", f"malformed JSON: {error}", request_id))

    # -- the rest ----------------------------------------------------------------

    def _authenticate(self, headers: Headers, request_id: str) -> str | None:
        if not self._tokens:
            return None
        raw = headers.authorization or b""
        scheme, _, presented = raw.partition(b" ")
        principal = None
        for candidate, token in self._tokens:  # no early exit: constant time in the token list
            if hmac.compare_digest(presented, token) and scheme.lower() == b"bearer":
                principal = candidate
        if principal is None:
            problem = make_problem(
                401, "unauthorized", "a valid bearer token is required", request_id
            )
            raise Reject(problem, ((b"www-authenticate", b'Bearer realm="vibe"'),))
        return principal

    async def _agent(self, name: str, request_id: str, timeout: float) -> dict[str, Any]:
        view = _viewed(await self.views.agent(name, request_id, timeout), request_id)
        info = msgspec.structs.asdict(view)
        info["schemas"] = self.catalog.schemas(name)
        return info


def create_app(system: ActorSystem, settings: AppSettings | None = None) -> Gateway:
    """The gateway ASGI app for a (started) ``system``."""
    return Gateway(system, settings)


def _viewed(view: Any, request_id: str) -> Any:
    """A view, or the introspect agent's error reply turned into a problem."""
    if isinstance(view, ErrorReply):
        problem = problem_for_reply(view, request_id)
        raise Reject(problem, (RETRY_AFTER,) if problem.status in (429, 503) else ())
    return view


def _allow(method: str, allowed: str, request_id: str) -> None:
    if method != allowed and not (allowed == "GET" and method == "HEAD"):
        problem = make_problem(405, "method-not-allowed", f"use {allowed}", request_id)
        raise Reject(problem, ((b"allow", allowed.encode()),))


def _require_json(raw: bytes | None, request_id: str) -> None:
    if raw == b"application/json":
        return
    content_type = (raw or b"").split(b";")[0].strip().lower()
    if content_type != b"application/json":
        detail = "the body must be application/json"
        raise Reject(make_problem(415, "unsupported-media-type", detail, request_id))
