"""The entity routes: asks to entities by kind and id, and what a kind holds.

* ``POST /v1/entities/{kind}/{id}/{type}`` (served by ``Gateway.ask``, with
  :meth:`EntityRoutes.entity_entry`): the body decoded as that type and
  asked of the entity, with the agents' error contract (404 unknown kind or
  type, 422 bad body or id, 503 + Retry-After while the id's shard restarts,
  429 when its mailbox is full); policy applies to ``type`` sent to ``kind``.
* ``GET /v1/entities``: every kind's snapshot; ``GET /v1/entities/{kind}``: one
  (shards, active, activations, passivations, state mode); authorised as the
  introspect agent's ``Describe``, as the agent views are.
* ``GET /v1/entities/{kind}/{id}``: ``{"id", "active", "state"}`` without
  activating the entity; authorised as ``InspectEntity`` sent to ``kind``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway._problems import RETRY_AFTER, Reject, make_problem, problem_for_reply
from vibe_actors import ActorSystem, ErrorReply, InspectEntity, Ref, UnknownAgent

if TYPE_CHECKING:
    from gateway._app_settings import AppSettings
    from gateway._catalog import Catalog, HotEntry
    from gateway._request import Request
    from vibe_actors import Caller

__all__ = ["EntityRoutes"]


class EntityRoutes:
    """The entity endpoints of :class:`gateway._app.Gateway` (see the module docstring)."""

    system: ActorSystem
    settings: AppSettings
    catalog: Catalog
    _callers: dict[str, Caller]

    if TYPE_CHECKING:  # provided by Gateway

        async def _guard(self, request: Request, agent: str, message: str) -> None: ...

        def _request_timeout(self, request: Request) -> float: ...

        async def _json(self, request: Request, value: Any) -> int: ...

    async def entity_kinds(self, request: Request) -> int:
        await self._guard(request, self.settings.introspect, "Describe")
        system = self.system
        return await self._json(request, [system.entity_info(k) for k in system.entity_kinds()])

    async def entity_kind(self, request: Request) -> int:
        await self._guard(request, self.settings.introspect, "Describe")
        (kind,) = request.params
        try:
            info = self.system.entity_info(kind)
        except UnknownAgent:
            raise _unknown_kind(kind, request.request_id) from None
        return await self._json(request, info)

    async def entity(self, request: Request) -> int:
        kind, entity_id = request.params
        await self._guard(request, kind, "InspectEntity")
        ref = self._entity_ref(kind, entity_id, request.request_id)
        principal = request.principal
        reply = await ref.ask_async(
            InspectEntity(),
            timeout=self._request_timeout(request),
            request_id=request.request_id,
            raise_errors=False,
            caller=None if principal is None else self._callers[principal],
        )
        if isinstance(reply, ErrorReply):
            problem = problem_for_reply(reply, request.request_id)
            raise Reject(problem, (RETRY_AFTER,) if problem.status in (429, 503) else ())
        return await self._json(request, reply)

    def entity_entry(self, kind: str, entity_id: str, tag: str, request_id: str) -> HotEntry:
        """What ``ask`` needs for an entity: its message type, decoder, ref, and shard's cell;
        raises Reject (404 unknown kind or type, 422 invalid id)."""
        ref = self._entity_ref(kind, entity_id, request_id)
        message_type = self._entity_message_type(kind, tag, request_id)
        shard = self.system.cell(self.system.entity_shard(kind, entity_id))
        return message_type, self.catalog.decoder(message_type), ref, shard

    def _entity_ref(self, kind: str, entity_id: str, request_id: str) -> Ref:
        try:
            return self.system.entity(kind, entity_id)
        except UnknownAgent:
            raise _unknown_kind(kind, request_id) from None
        except ValueError as exc:
            raise Reject(make_problem(422, "invalid-entity-id", str(exc), request_id)) from None

    def _entity_message_type(self, kind: str, tag: str, request_id: str) -> type:
        types = self.catalog.types(kind)
        message_type = types.get(tag)
        if message_type is None:
            known = ", ".join(sorted(types))
            detail = f"entity kind {kind!r} has no message type {tag!r} (it accepts: {known})"
            raise Reject(make_problem(404, "unknown-message-type", detail, request_id))
        return message_type


def _unknown_kind(kind: str, request_id: str) -> Reject:
    return Reject(make_problem(404, "unknown-entity-kind", f"no entity kind {kind!r}", request_id))
