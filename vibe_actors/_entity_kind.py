"""An entity kind in the tree: its shards' supervisor, its router and its counters.

``WorkerSpec(name="carts", agent=Cart, entity=EntitySpec(shards=8))`` becomes a
one_for_one supervisor called ``carts`` over the shard agents ``carts.1`` ..
``carts.8`` (:func:`entity_supervisor`), and the route ``carts/`` (a name no
agent can have) to an :class:`EntityRouter`. A ref to ``carts/42`` is routed
straight to the shard the id hashes to (:func:`shard_route`, a second route to
the shard's cell), so a send costs what a send to an agent does; before the
kind's shards exist, or after it restarted with another shard count, the ref
asks the router, which picks the shard and delivers in the sender's thread (no
hop, as pools do). The hash is stable (CRC-32 of the id), so an id always
reaches the same shard while the kind's shard count is unchanged.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from vibe_actors._deadletters import DeadLetterReason
from vibe_actors._messages import Unavailable
from vibe_actors._spec import (
    BackoffSpec,
    EntitySpec,
    EntityState,
    Strategy,
    SupervisorSpec,
    WorkerSpec,
)
from vibe_actors._stats import DURATION_BUCKETS

if TYPE_CHECKING:
    from vibe_actors._cell import Cell
    from vibe_actors._entity import Entity
    from vibe_actors._entity_writer import KindWriter
    from vibe_actors._envelope import Envelope

__all__ = [
    "EntityKindInfo",
    "EntityRouter",
    "KindStats",
    "PassivationReason",
    "ShardSettings",
    "entity_supervisor",
    "shard_agent",
    "shard_of",
    "shard_route",
]


def shard_of(entity_id: str, shards: int) -> int:
    """The index (0-based) of the shard serving ``entity_id``: stable across processes."""
    return zlib.crc32(entity_id.encode()) % shards


def shard_route(kind: str, shards: int, index: int) -> str:
    """The route of shard ``index`` (0-based) of ``kind`` with ``shards`` shards.

    A second route to the shard's cell, beside its agent name: a ref to an
    entity sends there directly (no router in between). It names the shard
    count, so that a ref made before the kind restarted with another count
    finds no route and asks the kind's router again (see ``Ref._no_route``);
    like ``kind/``, it is a name no agent can have.
    """
    return f"{kind}/{shards}/{index}"


class PassivationReason:
    """Why an entity was passivated (the ``reason`` label of the metric)."""

    IDLE = "idle"  #: no message for passivate_after
    MAX_ACTIVE = "max_active"  #: the least recently used, over the kind's max_active
    REQUESTED = "requested"  #: the entity called passivate()
    SHUTDOWN = "shutdown"  #: its shard stopped (shutdown, reload, restart by a sibling)
    SAVE_FAILED = "save_failed"  #: its durable state could not be saved: reloaded on next use
    #: another replica saved a newer state of it (shared store): reloaded on next use
    CONFLICT = "conflict"
    ALL = (IDLE, MAX_ACTIVE, REQUESTED, SHUTDOWN, SAVE_FAILED, CONFLICT)


@dataclass(eq=False)
class KindStats:
    """One kind's counters, kept across shard restarts; read at scrape time.

    Written by the kind's shard threads (one per shard, each its own counters
    where it matters: the lists are indexed by shard), by a durable kind's
    writer (``commits``, ``committed_writes``, ``conflicts``) and, for a kind placed on Ray,
    by its proxy shards from the Ray side's reports (under their lock).
    """

    shards: int
    activations: list[int] = field(default_factory=list)
    crashes: list[int] = field(default_factory=list)
    #: reason -> count, per shard.
    passivations: list[dict[str, int]] = field(default_factory=list)
    #: Activation duration histogram (DURATION_BUCKETS + Inf), per shard, and the sums.
    activation_buckets: list[list[int]] = field(default_factory=list)
    activation_seconds: list[float] = field(default_factory=list)
    #: The live shard behaviours' active counts (set by each shard incarnation).
    active: list[Any] = field(default_factory=list)
    #: Durable kinds: transactions committed by the kind's writer, and the states they wrote.
    commits: int = 0
    committed_writes: int = 0
    #: Durable kinds on a shared store: writes refused because another replica wrote first.
    conflicts: int = 0

    def __post_init__(self) -> None:
        n = self.shards
        self.activations = [0] * n
        self.crashes = [0] * n
        self.passivations = [{} for _ in range(n)]
        self.activation_buckets = [[0] * (len(DURATION_BUCKETS) + 1) for _ in range(n)]
        self.activation_seconds = [0.0] * n
        self.active = [None] * n

    def total_active(self) -> int:
        """Entities active now, over every shard (a snapshot)."""
        return sum(len(table) for table in list(self.active) if table is not None)

    def passivation_counts(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for per_shard in self.passivations:
            for reason, count in list(per_shard.items()):
                totals[reason] = totals.get(reason, 0) + count
        return totals


@dataclass(frozen=True, eq=False)
class ShardSettings:
    """What one shard agent serves (its ``config``)."""

    kind: str
    index: int  #: 0-based
    entity_class: type[Entity[Any]]
    spec: EntitySpec
    #: The kind's config, coerced to the entity class's ``Config`` (None without one).
    entity_config: Any
    stats: KindStats
    #: A durable kind's writer, shared by its shards (None for a memory kind).
    writer: KindWriter | None = None

    @property
    def route(self) -> str:
        """This shard's direct route (:func:`shard_route`)."""
        return shard_route(self.kind, self.spec.shards, self.index)


def entity_supervisor(
    spec: WorkerSpec, parent_spec: SupervisorSpec | None
) -> tuple[SupervisorSpec, KindStats]:
    """The one_for_one supervisor of ``spec``'s shards, and the kind's counters."""
    from vibe_actors._entity_writer import KindWriter  # on vibe_actors.store: built on the core
    from vibe_actors._handlers import coerce_config

    entity = spec.entity
    assert entity is not None
    stats = KindStats(entity.shards)
    writer = KindWriter(spec.name, stats) if entity.state is EntityState.DURABLE else None
    config = coerce_config(spec.agent, spec.config)
    shards = tuple(
        WorkerSpec(
            name=f"{spec.name}.{index + 1}",
            agent=shard_agent(spec.agent),
            config=ShardSettings(spec.name, index, spec.agent, entity, config, stats, writer),
            restart=spec.restart,
            shutdown=spec.shutdown,
            mailbox=spec.mailbox,
        )
        for index in range(entity.shards)
    )
    supervisor = SupervisorSpec(
        name=spec.name,
        children=shards,
        strategy=Strategy.ONE_FOR_ONE,
        intensity=max(1, entity.shards),
        period=parent_spec.period if parent_spec else 5.0,
        backoff=parent_spec.backoff if parent_spec else BackoffSpec(),
        restart=spec.restart,
        depends_on=spec.depends_on,
    )
    return supervisor, stats


def shard_agent(entity_class: type) -> type:
    """The agent class of a kind's shards: :class:`~vibe_actors._entity_shard.Shard`, or
    for a kind placed on Ray the proxy shard its class names (``vibe_actors.ray.placed``
    returns an Entity subclass whose ``shard_agent`` is a ``RayShard``)."""
    from vibe_actors._entity_shard import Shard  # the shard is an agent: built on this module

    placed: type | None = getattr(entity_class, "shard_agent", None)
    return Shard if placed is None else placed


class EntityKindInfo(msgspec.Struct, frozen=True):
    """A snapshot of one entity kind (``ActorSystem.entity_info``, ``GET /v1/entities/{kind}``)."""

    kind: str
    #: The Entity class, ``module:Class``.
    entity: str
    shards: int
    active: int
    activations: int
    #: reason -> count (idle, max_active, requested, shutdown, save_failed, conflict).
    passivations: dict[str, int]
    crashes: int
    #: ``memory`` or ``durable``.
    state: str
    passivate_after: float
    max_active: int


class EntityRouter:
    """Delivers an entity's envelope to the shard its id hashes to (see the module docstring).

    An envelope with no entity id (a plain send to ``kind/``) is answered
    :class:`Unavailable` and dead-lettered (``unknown_agent``).
    """

    #: Entities are never answered in the asker's thread (see Cell.ask_inline).
    ask_inline = None

    def __init__(self, name: str, spec: WorkerSpec, kind_cell: Cell, stats: KindStats) -> None:
        assert spec.entity is not None
        self.name = name
        self.spec = spec
        self.stats = stats
        self._kind_cell = kind_cell
        self._count = spec.entity.shards
        self._shards: list[Cell] = []

    @property
    def entity_class(self) -> type[Entity[Any]]:
        return self.spec.agent  # type: ignore[no-any-return]

    @property
    def shards(self) -> list[Cell]:
        """The shard cells, in shard order (complete once the kind has started)."""
        if len(self._shards) != self._count:
            self._shards = list(self._kind_cell.children.values())
        return self._shards

    def info(self) -> EntityKindInfo:
        stats, spec = self.stats, self.spec.entity
        assert spec is not None
        cls = self.entity_class
        return EntityKindInfo(
            kind=self.name,
            entity=f"{cls.__module__}:{cls.__qualname__}",
            shards=spec.shards,
            active=stats.total_active(),
            activations=sum(stats.activations),
            passivations={r: stats.passivation_counts().get(r, 0) for r in PassivationReason.ALL},
            crashes=sum(stats.crashes),
            state=spec.state.value,
            passivate_after=spec.passivate_after,
            max_active=spec.max_active,
        )

    def route_of(self, entity_id: str) -> str:
        """The direct route of the shard serving ``entity_id`` (:func:`shard_route`)."""
        return shard_route(self.name, self._count, shard_of(entity_id, self._count))

    def shard_for(self, entity_id: str) -> Cell:
        """The shard cell serving ``entity_id`` (the kind must have started)."""
        return self.shards[shard_of(entity_id, self._count)]

    def deliver(self, envelope: Envelope) -> None:
        entity_id = envelope.entity
        shards = self._shards
        if entity_id is None or len(shards) != self._count:
            self._deliver_slow(envelope)
            return
        shards[zlib.crc32(entity_id.encode()) % self._count].deliver(envelope)

    def _deliver_slow(self, envelope: Envelope) -> None:
        if envelope.entity is None:
            system = self._kind_cell.system
            if envelope.reply is not None:
                envelope.reply.resolve(
                    Unavailable(agent=self.name, reason="an entity kind: send to kind/id")
                )
            system.dead_letters.publish(self.name, envelope, DeadLetterReason.UNKNOWN_AGENT)
            return
        shards = self.shards
        if len(shards) != self._count:  # not started yet: the kind's supervisor has no shards
            system = self._kind_cell.system
            system.routes.undeliverable(f"{self.name}/{envelope.entity}", envelope)
            return
        shards[shard_of(envelope.entity, self._count)].deliver(envelope)
