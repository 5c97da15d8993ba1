"""The route table: where a send to a name goes.

One entry per agent name: the agent's :class:`~vibe_actors._cell.Cell`, or
for a pool its :class:`~vibe_actors._router.Router` (which picks a worker);
and one per entity kind, under ``kind/`` (a name no agent can have), its
:class:`~vibe_actors._entity_kind.EntityRouter` (which picks the shard), and
one per shard of a kind (its cell again, under :func:`~vibe_actors._entity_kind.shard_route`:
where a ref to an entity sends).
Every send (:class:`~vibe_actors.Ref`) looks its target up here and hands the
envelope to its ``deliver``; a name with no entry is *undeliverable*: the
asker gets
:class:`~vibe_actors.Unavailable` and the message is a dead letter
(``unknown_agent``), through the callback the system installs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from vibe_actors._entity_kind import EntityRouter
from vibe_actors._router import Router

if TYPE_CHECKING:
    from vibe_actors._cell import Cell
    from vibe_actors._envelope import Envelope

__all__ = ["RouteTable"]


class RouteTable:
    """Name -> cell or pool router; see the module docstring. Thread-safe for sends
    (a dict read); entries change only under the system's lock."""

    __slots__ = ("_targets", "_undeliverable", "get")

    def __init__(self, undeliverable: Callable[[str, Envelope], None]) -> None:
        self._targets: dict[str, Cell | Router | EntityRouter] = {}
        self._undeliverable = undeliverable
        #: ``get(name)``: the cell or router of ``name``, else None. The dict's own method
        #: (no Python frame): a send's lookup costs what a dict read does.
        self.get: Callable[[str], Cell | Router | EntityRouter | None] = self._targets.get

    def undeliverable(self, name: str, envelope: Envelope) -> None:
        """Answer and dead-letter ``envelope`` as sent to an unknown name."""
        self._undeliverable(name, envelope)

    def add(self, name: str, target: Cell | Router | EntityRouter) -> None:
        self._targets[name] = target

    def remove(self, name: str, target: object = None) -> None:
        """Remove ``name``'s entry (only if it is ``target``, when given)."""
        if target is None or self._targets.get(name) is target:
            self._targets.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def is_pool(self, name: str) -> bool:
        """Whether ``name`` is a pool (its sends go through a router)."""
        return isinstance(self._targets.get(name), Router)

    def entity_kind(self, name: str) -> EntityRouter | None:
        """The router of entity kind ``name``, else None."""
        target = self._targets.get(name + "/")
        return target if isinstance(target, EntityRouter) else None

    def entity_kinds(self) -> list[EntityRouter]:
        """Every entity kind's router."""
        return [t for t in list(self._targets.values()) if isinstance(t, EntityRouter)]
