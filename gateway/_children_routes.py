"""The dynamic-children routes of the gateway (the rules are :mod:`gateway._children`'s).

* ``POST /v1/supervisors/{name}/children``: start a child from one of the
  supervisor's templates (201 + ``Location``);
* ``DELETE /v1/agents/{name}``: stop a dynamic child for good (204).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from gateway import _children as children
from gateway._body import check_declared_length, check_json_nesting, read_rest, require_json
from gateway._http import respond
from vibe_actors import MAX_NESTING, ActorSystem

if TYPE_CHECKING:
    from gateway._request import Request

__all__ = ["ChildrenRoutes"]

_encode = msgspec.json.Encoder().encode


class ChildrenRoutes:
    """The dynamic-children endpoints of :class:`gateway._app.Gateway`."""

    system: ActorSystem
    _limit_digits: int
    _max_body: int

    if TYPE_CHECKING:  # provided by Gateway

        async def _guard(self, request: Request, agent: str, message: str) -> None: ...

        def _request_timeout(self, request: Request) -> float: ...

    async def start_child(self, request: Request) -> int:
        """``POST /v1/supervisors/{name}/children``: start a child from one of its templates."""
        (supervisor,) = request.params
        request_id = request.request_id
        templates = children.templates_of(self.system, supervisor, request_id)  # 404 first
        await self._guard(request, supervisor, children.START_CHILD)
        body = await self._body(request)
        child = children.decode_request(body, request_id)
        if len(body) > MAX_NESTING:  # shorter bodies cannot nest that deep
            check_json_nesting(child, body, request_id)
        timeout = None if request.timeout is None else self._request_timeout(request)
        created = await children.start(
            self.system, supervisor, templates, child, request_id, timeout
        )
        root = request.scope.get("root_path") or ""
        location = (b"location", f"{root}/v1/agents/{created.name}".encode())
        await respond(request.send, 201, _encode(created), extra=(*request.ok, location))
        return 201

    async def terminate_child(self, request: Request) -> int:
        """``DELETE /v1/agents/{name}``: stop a dynamic child for good (409 for a static one)."""
        (name,) = request.params
        request_id = request.request_id
        supervisor = children.dynamic_supervisor_of(self.system, name, request_id)
        await self._guard(request, supervisor, children.TERMINATE_CHILD)
        timeout = None if request.timeout is None else self._request_timeout(request)
        await children.terminate(self.system, name, request_id, timeout)
        await respond(request.send, 204, b"", extra=request.ok)
        return 204

    async def _body(self, request: Request) -> bytes:
        """The whole JSON body, within the size limit; raises Reject (413, 415)."""
        request_id = request.request_id
        if request.content_type != b"application/json":
            require_json(request.content_type, request_id)
        declared = request.content_length
        if declared is not None and len(declared) >= self._limit_digits:
            check_declared_length(declared, self._max_body, request_id)
        first = await request.receive()
        body: bytes = first.get("body", b"")
        if first.get("more_body") or len(body) > self._max_body:
            body = body + await read_rest(request.receive, len(body), self._max_body, request_id)
        return body
