"""The ask route: an HTTP request becomes an ask of an agent (or an entity).

``POST /v1/agents/{name}/{type}`` and ``POST /v1/entities/{kind}/{id}/{type}``
(:meth:`AskRoute.ask`): the body decoded as that type (422 when it is not one),
policy and quota checked, 503 + Retry-After while the agent is not running or
its circuit breaker refuses that type, and the reply returned as JSON (204 for
none); an agent's error reply stays data until it becomes a problem+json answer.
This is every ask's way through the gateway: it is written for the hot path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from gateway._body import (
    check_declared_length,
    check_json_nesting,
    invalid_body,
    read_rest,
    require_json,
)
from gateway._http import respond
from gateway._problems import RETRY_AFTER, Reject, make_problem, problem_for_reply
from vibe_actors import (
    MAX_NESTING,
    ActorSystem,
    AgentCrashed,
    AgentStatus,
    ErrorReply,
    UnknownAgent,
)
from vibe_actors.agents import schema

if TYPE_CHECKING:
    from gateway._breaker import CrashBreaker
    from gateway._catalog import Catalog, HasStatus, HotEntry
    from gateway._guards import Guards
    from gateway._request import Request
    from vibe_actors import Caller

__all__ = ["AskRoute"]

_JSON = (b"content-type", b"application/json")


class AskRoute:
    """The ask endpoint of :class:`gateway._app.Gateway` (see the module docstring)."""

    system: ActorSystem
    catalog: Catalog
    guards: Guards | None
    breaker: CrashBreaker
    _callers: dict[str, Caller]
    _default_timeout: float
    _limit_digits: int
    _max_body: int

    if TYPE_CHECKING:  # provided by Gateway and its EntityRoutes

        def entity_entry(
            self, kind: str, entity_id: str, tag: str, request_id: str
        ) -> HotEntry: ...

        def _guard_local(self, request: Request, agent: str, message: str) -> None: ...

        async def _guard_shared(self, request: Request, agent: str) -> None: ...

        def _request_timeout(self, request: Request) -> float: ...

    # One method, longer than most, on purpose: it is every ask's way through the gateway
    # (the hot path), and the body is decoded here, not in a helper, because every frame
    # on the stack is a level of nesting the decoder cannot use (see below).
    async def ask(self, request: Request) -> int:
        """``POST /v1/agents/{name}/{type}`` and ``POST /v1/entities/{kind}/{id}/{type}``:
        the body decoded as that type, asked of the agent (or entity).

        Policy and quota are checked for the type sent to the agent (the entity's
        kind); the agent (the entity's shard) must be running.
        """
        params = request.params
        if len(params) == 2:
            name, tag = params
            found = self.catalog.lookup(name, tag) or self._message_type(
                name, tag, request.request_id
            )
        else:
            name, entity_id, tag = params
            found = self.entity_entry(name, entity_id, tag, request.request_id)
        message_type, decoder, ref, cell = found
        request_id = request.request_id
        guards = self.guards
        if guards is not None:  # policy or quota in the wiring
            self._guard_local(request, name, tag)
            if guards.quota_agent is not None:  # a shared store's quota: an ask
                await self._guard_shared(request, name)
        if request.content_type != b"application/json":  # else: nothing to check
            require_json(request.content_type, request_id)
        timeout = (
            self._default_timeout if request.timeout is None else self._request_timeout(request)
        )
        declared = request.content_length
        if declared is not None and len(declared) >= self._limit_digits:
            # Before the first receive(): a client declaring too much may send nothing more.
            check_declared_length(declared, self._max_body, request_id)
        first = await request.receive()  # almost always the whole body, in one message
        body: bytes = first.get("body", b"")
        if first.get("more_body") or len(body) > self._max_body:
            body = body + await read_rest(request.receive, len(body), self._max_body, request_id)
        # Decoded here, not in a helper: every frame on the stack is a level of nesting
        # the decoder cannot use (its limit is the interpreter's recursion limit).
        try:
            message = decoder.decode(body)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            # Besides DecodeError, msgspec refuses bad input with UnicodeDecodeError
            # (invalid UTF-8 in a string, before 0.23) and RecursionError (nesting
            # past ~1000 levels in free-form `Any` fields).
            message = self._decode_http_named(message_type, decoder, body, exc, request_id)
        if len(body) > MAX_NESTING:  # shorter bodies cannot nest that deep
            check_json_nesting(message, body, request_id)
        self._admit(name, tag, cell, request_id)
        breaker = self.breaker
        principal = request.principal
        reply = await ref.ask_async(
            message,
            timeout=timeout,
            request_id=request_id,
            raise_errors=False,
            caller=None if principal is None else self._callers[principal],
        )
        if reply.__class__ is AgentCrashed:
            breaker.crashed(name, tag, request_id)
        elif breaker.tripped:
            breaker.answered(name, tag)
        if isinstance(reply, ErrorReply):
            problem = problem_for_reply(reply, request_id)
            raise Reject(problem, (RETRY_AFTER,) if problem.status in (429, 503) else ())
        if reply is None:
            await respond(request.send, 204, b"", extra=request.ok)
            return 204
        body = schema.http_json(reply)  # a namespaced tag shown as the type's HTTP name
        send = request.send  # the response in two sends here: this is every ask's way out
        headers_out = [_JSON, (b"content-length", b"%d" % len(body)), *request.ok]
        await send({"type": "http.response.start", "status": 200, "headers": headers_out})
        await send({"type": "http.response.body", "body": body})
        return 200

    @staticmethod
    def _decode_http_named(
        message_type: type,
        decoder: Any,
        body: bytes,
        error: msgspec.DecodeError | UnicodeDecodeError | RecursionError,
        request_id: str,
    ) -> Any:
        """A body whose ``type`` is the HTTP name of a namespaced message type, decoded;
        raises Reject (422) with ``error``, or with the retagged body's own, otherwise."""
        retagged = schema.retagged(message_type, body)
        if retagged is None:
            raise invalid_body(message_type, error, request_id) from None
        try:
            return decoder.decode(retagged)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as again:
            raise invalid_body(message_type, again, request_id) from None

    def _admit(self, name: str, tag: str, cell: HasStatus | None, request_id: str) -> None:
        """503 while ``tag`` requests to ``name`` are refused by the circuit breaker, or while
        the agent is not running (restarting, stopped); raises Reject with Retry-After."""
        breaker = self.breaker
        if breaker.tripped and (wait := breaker.refuse(name, tag)) is not None:
            detail = (
                f"{tag} requests to {name!r} are refused for now: they kept crashing its"
                " handler (a circuit breaker); retry later"
            )
            problem = make_problem(503, "circuit-open", detail, request_id)
            raise Reject(problem, ((b"retry-after", str(wait).encode()),))
        status = cell.status if cell is not None else self.system.status(name)
        if status is not AgentStatus.RUNNING:
            detail = f"agent {name!r} is {status.value}"
            problem = make_problem(503, "agent-unavailable", detail, request_id)
            raise Reject(problem, (RETRY_AFTER,))

    def _message_type(self, name: str, tag: str, request_id: str) -> HotEntry:
        """The entry the catalogue's lookup did not have, or a 404 naming what is unknown."""
        if name in self.system.entity_kinds():
            detail = f"{name!r} is an entity kind: POST /v1/entities/{name}/{{id}}/{tag}"
            raise Reject(make_problem(404, "unknown-agent", detail, request_id))
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
