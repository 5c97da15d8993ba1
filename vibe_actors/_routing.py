"""What a send needs of the running system, as protocols: the seam under :class:`Ref`.

A :class:`~vibe_actors._ref.Ref` resolves its name at every send through the
system's route table and hands the envelope to what it finds. It is written
against these protocols, not against :class:`~vibe_actors.ActorSystem`,
:class:`~vibe_actors._cell.Cell` or the routers: the send path sits below the
engine that runs agents and the system that builds it (no import cycle), and
:class:`~vibe_actors._route_table.RouteTable`, the cells and routers, and
:class:`~vibe_actors.ActorSystem` fit them as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from vibe_actors._envelope import Envelope
    from vibe_actors._system_config import SystemConfig

__all__ = ["KindRoute", "Routes", "SendContext", "Target"]


class Target(Protocol):
    """Where a route leads: an agent's cell, a pool's router, an entity kind's router."""

    @property
    def ask_inline(self) -> Callable[[Envelope], bool] | None:
        """Answers a blocking ask in the asker's thread (True once resolved), else None."""
        ...

    def deliver(self, envelope: Envelope) -> None: ...


class KindRoute(Protocol):
    """An entity kind's router, as a ref to one of its entities uses it."""

    def route_of(self, entity_id: str) -> str:
        """The route of the shard serving ``entity_id``."""
        ...

    def deliver(self, envelope: Envelope) -> None: ...


class Routes(Protocol):
    """The route table, as a send reads it."""

    def get(self, name: str, /) -> Target | None: ...

    def undeliverable(self, name: str, envelope: Envelope) -> None:
        """Answer and dead-letter ``envelope`` as sent to an unknown name."""
        ...

    def entity_kind(self, name: str) -> KindRoute | None: ...


class SendContext(Protocol):
    """The running system, as a send uses it (:class:`~vibe_actors.ActorSystem` is one)."""

    @property
    def started(self) -> bool:
        """Whether the system was started (a send before it is a mistake)."""
        ...

    @property
    def serializes(self) -> bool:
        """Whether every message and reply is round-tripped through msgpack."""
        ...

    @property
    def config(self) -> SystemConfig: ...

    @property
    def routes(self) -> Routes: ...

    def forbids(self, name: str, envelope: Envelope) -> bool:
        """Whether ``envelope`` may not go to ``name`` (answered and dead-lettered if so)."""
        ...
