"""The entity part of the embedding API (:class:`~vibe_actors.ActorSystem`): refs to entities
by kind and id, and what each kind holds. See :mod:`vibe_actors._entity`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from vibe_actors._entity import check_id
from vibe_actors._entity_kind import EntityKindInfo
from vibe_actors._errors import UnknownAgent
from vibe_actors._ref import Ref

if TYPE_CHECKING:
    from vibe_actors._route_table import RouteTable
    from vibe_actors._routing import SendContext

__all__ = ["EntityAccess"]


class EntityAccess:
    """Mixed into :class:`~vibe_actors.ActorSystem`."""

    routes: RouteTable
    _state: str

    def entity(self, kind: str, entity_id: str, sender: str | None = None) -> Ref[Any]:
        """A ref to the entity ``entity_id`` of the entity kind ``kind``.

        Usable everywhere a ref is (tell, ask, ask_async); the first message
        activates the entity. Raises ValueError for an invalid id (empty, or
        over 256 characters) and :class:`UnknownAgent` when the system runs and
        has no entity kind ``kind``.
        """
        check_id(entity_id)
        if self._state == "running" and self.routes.entity_kind(kind) is None:
            raise UnknownAgent(kind)
        return Ref(cast("SendContext", self), kind, sender, entity_id)

    def entity_kinds(self) -> list[str]:
        """The names of the entity kinds in the running tree."""
        return [router.name for router in self.routes.entity_kinds()]

    def entity_shard(self, kind: str, entity_id: str) -> str:
        """The name of the shard agent that serves ``entity_id`` of ``kind``.

        Raises :class:`UnknownAgent` if there is no such kind, ValueError for an invalid id.
        """
        check_id(entity_id)
        router = self.routes.entity_kind(kind)
        if router is None:
            raise UnknownAgent(kind)
        return router.shard_for(entity_id).name

    def entity_info(self, kind: str) -> EntityKindInfo:
        """A snapshot of entity kind ``kind``: shards, active entities, counters.

        Raises :class:`UnknownAgent` if there is no such kind.
        """
        router = self.routes.entity_kind(kind)
        if router is None:
            raise UnknownAgent(kind)
        return router.info()
