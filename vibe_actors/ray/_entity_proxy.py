"""An entity kind placed on Ray: each shard a local proxy whose Ray actor hosts its entities.

``placed(Cart, settings)`` (:func:`placed_entity`) returns a subclass of the
Entity class that names its shard agent class, a :class:`RayShard`; the
kind's supervisor (:func:`vibe_actors._entity_kind.entity_supervisor`) then
builds its shards ``carts.1`` .. ``carts.N`` from that class instead of the
local :class:`~vibe_actors._entity_shard.Shard`. The kind's router, its CRC-32
hashing of ids to shards and its one_for_one supervisor stay local and
unchanged.

A :class:`RayShard` is a :class:`~vibe_actors.ray._proxy.RayProxy` (the same
batching, in-flight bound, reply lane, watchdog pings and failure handling)
whose Ray actor is an :class:`~vibe_actors.ray._entity_host.EntityHost`. What
differs:

* The entity id crosses with each message: a call is ``(id, clock, message)``,
  the clock being the local system's (idle passivation is measured by it).
* An entity's crash is that entity's: the host answers :class:`AgentCrashed`
  for it and this shard keeps running. Only a lost Ray actor (its process
  died, it was killed) crashes the shard: its supervisor restarts it with a
  fresh actor, the entities it held are gone (a memory kind's state with them,
  as when a local shard crashes), and the next message activates them again.
* Messages the entity class does not handle are refused here (dead letter
  ``unhandled``), without a Ray call; ``on_unhandled`` does not run on Ray.
* Idle passivation: a timer of this shard (every ``passivate_after / 2`` of
  the system's clock) asks the host to sweep.
* Counters: the host reports its totals with the replies that follow a change
  (and with the sweeps); this shard folds them into the kind's
  :class:`~vibe_actors._entity_kind.KindStats`, so ``GET /v1/entities/{kind}``
  and the metrics read them as for a local kind (reported, not asked for at
  read time: as fresh as the last reply).

Durable state is not offered on Ray (a shard refuses to start; Phoenix refuses
the wiring): see docs/scaling.md.
"""

from __future__ import annotations

import threading
import typing
from typing import Any, ClassVar

import msgspec
import ray

from vibe_actors._codec import decode_msgpack, encode_msgpack
from vibe_actors._deadletters import DeadLetterReason
from vibe_actors._entity import Entity, EntitySnapshot, InspectEntity, entity_address
from vibe_actors._entity_kind import ShardSettings
from vibe_actors._envelope import Envelope
from vibe_actors._handlers import handler
from vibe_actors._messages import AgentCrashed, Unavailable, UnknownMessage
from vibe_actors._spec import EntityState
from vibe_actors.ray._entity_host import (
    DurableOnRay,
    EntityHost,
    EntityHostSettings,
    ShardReport,
    is_error,
)
from vibe_actors.ray._host import message_union, reply_targets
from vibe_actors.ray._proxy import RayProxy
from vibe_actors.ray._settings import RaySettings

__all__ = ["RayShard", "placed_entity"]

_lock = threading.Lock()
_placed: dict[tuple[type, bytes], type[Entity[Any]]] = {}
_RemoteEntityHost: Any = None
#: What an error result of the host decodes as.
_ERRORS = message_union((AgentCrashed, Unavailable, UnknownMessage))
_INSPECT = message_union((EntitySnapshot, AgentCrashed, Unavailable, UnknownMessage))


class _SweepTick(msgspec.Struct, frozen=True):
    """Timer tick: ask the host to passivate what has been idle for passivate_after."""


class RemoteActive:
    """A shard's active count as its host last reported it (KindStats reads ``len``)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __len__(self) -> int:
        return self.count


class _Base(msgspec.Struct, frozen=True):
    """A shard's counters when this incarnation started (earlier incarnations' totals)."""

    activations: int
    crashes: int
    passivations: dict[str, int]
    buckets: list[int]
    seconds: float


def _entity_host_class() -> Any:
    global _RemoteEntityHost
    with _lock:
        if _RemoteEntityHost is None:
            _RemoteEntityHost = ray.remote(EntityHost)
        return _RemoteEntityHost


class RayShard(RayProxy):
    """Base of the generated proxy shards; see the module docstring."""

    config: ShardSettings
    #: Entities are reached through their kind's router, never asked in the asker's thread.
    _answers_inline: ClassVar[bool] = False

    def on_start(self) -> None:
        settings = self.config
        if settings.spec.state is EntityState.DURABLE:
            raise DurableOnRay(
                f"{settings.kind}: state: durable is not available with placement: ray "
                "(use state: memory, or place the kind locally)"
            )
        self.kind = settings.kind
        stats, index = settings.stats, settings.index
        self._base = _Base(
            activations=stats.activations[index],
            crashes=stats.crashes[index],
            passivations=dict(stats.passivations[index]),
            buckets=list(stats.activation_buckets[index]),
            seconds=stats.activation_seconds[index],
        )
        self._seq = 0
        self._report_lock = threading.Lock()
        self._active = RemoteActive()
        super().on_start()
        stats.active[index] = self._active
        idle_after = settings.spec.passivate_after
        if idle_after > 0:
            self.start_timer("sweep", _SweepTick(), idle_after / 2, repeat=True)

    def on_stop(self) -> None:
        super().on_stop()  # the host passivates every entity and reports
        self.config.stats.active[self.config.index] = None

    def on_failure(self, error: BaseException) -> None:
        active: RemoteActive | None = getattr(self, "_active", None)
        super().on_failure(error)
        self.config.stats.active[self.config.index] = None
        lost = 0 if active is None else active.count
        self.log.error("entity_shard_crashed", lost_entities=lost, error=str(error))

    # -- forwarding -------------------------------------------------------------------

    def on_unhandled(self, message: Any) -> Any:
        env = self.envelope
        assert env is not None
        if env.entity is None or type(message) not in self._replies:
            return self._refuse(env, message)
        self._forward(message)
        return None  # the reply was deferred

    def _refuse(self, env: Envelope, message: Any) -> UnknownMessage:
        address = self.name if env.entity is None else entity_address(self.kind, env.entity)
        self.system.dead_letters.publish(address, env, DeadLetterReason.UNHANDLED)
        return UnknownMessage(agent=address, message_type=type(message).__name__)

    @handler
    def _sweep(self, tick: _SweepTick) -> None:
        self._send_batch()  # what was batched before the tick runs first
        ref = self._actor.sweep.remote(self.system.clock())
        self._submit(ref, self._swept)

    def _swept(self, result: Any) -> None:
        if not isinstance(result, BaseException):
            self._apply(result)

    # -- RayProxy's hooks ---------------------------------------------------------------

    def _remote_class(self) -> Any:
        return _entity_host_class()

    def _host_args(self) -> tuple[Any, ...]:
        settings = self.config
        spec = settings.spec
        host = EntityHostSettings(
            kind=settings.kind,
            index=settings.index,
            passivate_after=spec.passivate_after,
            max_active=-(-spec.max_active // spec.shards),  # ceil: per shard, as locally
            config=encode_msgpack(settings.entity_config),
        )
        hosted = self.hosted
        path = f"{hosted.__module__}:{hosted.__qualname__}"
        return path, self.name, encode_msgpack(host), self.incarnation

    def _payload(self, message: Any) -> Any:
        env = self.envelope
        assert env is not None and env.entity is not None
        return env.entity, self.system.clock(), encode_msgpack(message)

    def _decode_reply(self, data: Any, target: Any) -> Any:
        if is_error(data):
            return decode_msgpack(data[0], _ERRORS)
        return decode_msgpack(data, target)

    def _answer_one(self, batch: list[tuple[Any, Any, Any, Any]], reply: Any) -> None:
        self._answer_batch(batch, reply)  # the host's handle answers as handle_batch does

    def _answer_batch(self, batch: list[tuple[Any, Any, Any, Any]], replies: Any) -> None:
        if not isinstance(replies, BaseException):
            replies, report = replies
            self._apply(report)
        super()._answer_batch(batch, replies)

    def _stopped(self, result: Any) -> None:
        self._apply(result)

    def _apply(self, report: ShardReport | None) -> None:
        """Fold the host's totals into the kind's counters (a late report is ignored)."""
        if report is None:
            return
        settings = self.config
        stats, index, base = settings.stats, settings.index, self._base
        with self._report_lock:
            if report.seq <= self._seq:
                return
            self._seq = report.seq
            stats.activations[index] = base.activations + report.activations
            stats.crashes[index] = base.crashes + report.crashes
            merged = dict(base.passivations)
            for reason, count in report.passivations.items():
                merged[reason] = merged.get(reason, 0) + count
            stats.passivations[index] = merged
            stats.activation_buckets[index] = [
                mine + theirs for mine, theirs in zip(base.buckets, report.buckets, strict=True)
            ]
            stats.activation_seconds[index] = base.seconds + report.seconds
            self._active.count = report.active


def placed_entity(entity: type[Entity[Any]], settings: RaySettings) -> type[Entity[Any]]:
    """The Entity class whose kind's shards run on Ray (one class per entity class and settings).

    A subclass of ``entity`` with the same name, handlers and state, naming its
    shard agent class (``shard_agent``). Raises ``TypeError`` if a handler's
    declared replies cannot be decoded as one msgpack union.
    """
    if getattr(entity, "shard_agent", None) is not None:
        raise TypeError(f"{entity.__qualname__} is already placed on Ray")
    key = (entity, encode_msgpack(settings))
    with _lock:
        if key not in _placed:
            shard = type(
                "RayShard",
                (RayShard,),
                {
                    "hosted": entity,
                    "settings": settings,
                    "_replies": {**reply_targets(entity), InspectEntity: _INSPECT},  # type: ignore[arg-type]
                    "__module__": RayShard.__module__,
                },
            )
            namespace = {
                "shard_agent": shard,
                "__module__": entity.__module__,
                "__qualname__": entity.__qualname__,
                "__doc__": entity.__doc__,
            }
            _placed[key] = typing.cast(
                "type[Entity[Any]]", type(entity.__name__, (entity,), namespace)
            )
        return _placed[key]
