"""The Ray side of an entity kind placed on Ray: one shard's entities (never imports Ray).

:class:`EntityHost` is a plain synchronous class (Ray makes it an actor in
:mod:`vibe_actors.ray._entity_proxy`), one per shard. The local proxy shard
sends it calls ``(entity id, time, msgpack message)``, one at a time or in
batches, in its mailbox's order; the host runs them one at a time (a Ray
actor with one thread), so one message at a time per entity and each
sender's order hold as for a local shard. Per call the host:

1. finds the entity in its active table (LRU order) or activates it: a new
   instance from ``State()``, then ``on_activate``; a failure is the asker's
   :class:`AgentCrashed` (``activation failed``) and the next message tries again;
2. runs the entity's handler; an exception crashes that entity only (it is
   dropped, its asker gets :class:`AgentCrashed`, the others keep running);
3. passivates what the entity asked for (``passivate()``) and what is over the
   shard's share of ``max_active``, least recently used first, ``on_passivate``
   running here.

Idle passivation runs on :meth:`EntityHost.sweep`, which the proxy calls on a
timer with its system's clock; the time of each call is the proxy's clock too,
so ``passivate_after`` is measured by the local system's clock (a ManualClock
in tests) and not by the Ray worker's.

Counters (activations, crashes, passivations by reason, the activation
histogram, the active count) are kept here and reported back to the proxy with
every reply that follows a change (:class:`ShardReport`, numbered so that a late
report never overwrites a newer one).

What an entity on Ray cannot use raises :class:`RemoteFeatureUnavailable`:
``self.system`` beyond ``clock`` (so ``ref``, ``system.entity``), entity timers,
``envelope`` and ``caller``. A reminder set by a local agent for ``kind/id``
works (it is a message, and a message activates the entity).
"""

from __future__ import annotations

import time
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import msgspec
import structlog

from vibe_actors._codec import CodecError, decode_msgpack, encode_msgpack
from vibe_actors._entity import Entity, EntitySnapshot, InspectEntity, entity_address
from vibe_actors._entity_kind import PassivationReason
from vibe_actors._entity_table import activation_bucket, idle_ids, over_limit, short_error
from vibe_actors._imports import resolve_import
from vibe_actors._messages import AgentCrashed, ErrorReply, UnknownMessage
from vibe_actors._stats import DURATION_BUCKETS
from vibe_actors.ray._host import RemoteFeatureUnavailable, message_union

if TYPE_CHECKING:
    from vibe_actors._entity_shard import Shard

__all__ = [
    "DurableOnRay",
    "EntityCall",
    "EntityHost",
    "EntityHostSettings",
    "ShardReport",
    "import_entity",
    "is_error",
]

_log = structlog.get_logger("vibe_actors.entity")
_perf = time.perf_counter

#: One call: (entity id, the proxy's clock when it forwarded the message, msgpack message).
EntityCall = tuple[str, float, bytes]
#: One result: the handler's reply (msgpack), or a 1-tuple holding an ErrorReply (msgpack).
Result = bytes | tuple[bytes]


class DurableOnRay(RemoteFeatureUnavailable):
    """A ``state: durable`` entity kind cannot be placed on Ray: its shards refuse to
    start (a start failure); Phoenix refuses such a wiring (see docs/scaling.md)."""


class EntityHostSettings(msgspec.Struct, frozen=True):
    """What one shard's host serves (sent by the proxy, msgpack)."""

    kind: str
    index: int
    #: Seconds without a message before an entity passivates (0: never).
    passivate_after: float
    #: This shard's share of the kind's max_active.
    max_active: int
    #: The kind's config, msgpack (decoded with the entity class's ``Config``).
    config: bytes


class ShardReport(msgspec.Struct, frozen=True):
    """A shard host's counters since it started (totals, not deltas)."""

    seq: int
    active: int
    activations: int
    crashes: int
    passivations: dict[str, int]
    #: The activation duration histogram: DURATION_BUCKETS then +Inf.
    buckets: list[int]
    seconds: float


def is_error(result: Any) -> bool:
    """Whether a host result holds an ErrorReply (a 1-tuple) rather than a handler's reply."""
    return isinstance(result, tuple)


def import_entity(path: str) -> type[Entity[Any]]:
    """The Entity subclass named ``module:Qualified.Name`` (TypeError if it names another)."""
    value = resolve_import(path)
    if not (isinstance(value, type) and issubclass(value, Entity)):
        raise TypeError(f"{path!r} is not a vibe_actors.Entity subclass")
    return value


def _unavailable(kind: str, feature: str) -> NoReturn:
    raise RemoteFeatureUnavailable(
        f"the entities of {kind} run on Ray, where they cannot use {feature} (of the "
        "runtime they have self.system.clock only: not ref, timers, envelope, caller or "
        "the rest of self.system)"
    )


class RemoteSystem:
    """``self.system`` of an entity on Ray: only ``clock`` (the Ray worker's monotonic clock)."""

    clock = staticmethod(time.monotonic)

    def __init__(self, kind: str) -> None:
        self._kind = kind

    def __getattr__(self, attribute: str) -> NoReturn:
        _unavailable(self._kind, f"self.system.{attribute}")


class RemoteShard:
    """What an entity on Ray reaches through its ``_shard`` (the handler API of Entity)."""

    def __init__(self, kind: str, entity_config: Any) -> None:
        self.kind = kind
        self.entity_config = entity_config
        self.system = RemoteSystem(kind)
        #: Ids to passivate once the current message is done (Entity.passivate).
        self.to_passivate: list[str] = []

    def current_envelope(self) -> NoReturn:
        _unavailable(self.kind, "the envelope (and so the caller)")

    def passivate_later(self, entity_id: str) -> None:
        self.to_passivate.append(entity_id)

    def start_entity_timer(self, *args: Any) -> NoReturn:
        _unavailable(self.kind, "entity timers")

    def cancel_entity_timer(self, *args: Any) -> NoReturn:
        _unavailable(self.kind, "entity timers")


class EntityHost:
    """One shard's entities on Ray; see the module docstring."""

    def __init__(self, entity_path: str, name: str, settings: bytes, incarnation: int) -> None:
        cls = import_entity(entity_path)
        self._settings = decode_msgpack(settings, EntityHostSettings)
        schema = getattr(cls, "Config", None)
        config = decode_msgpack(self._settings.config, schema if schema is not None else Any)
        self._name = name
        self._incarnation = incarnation
        self._cls = cls
        self._kind = self._settings.kind
        self._handlers: dict[type, Callable[..., Any]] = cls.handler_table()
        self._union = message_union((*cls.handler_table(), InspectEntity))
        self._context = RemoteShard(self._kind, config)
        #: id -> instance, least recently used first.
        self.active: dict[str, Entity[Any]] = {}
        self._activations = 0
        self._crashes = 0
        self._passivations: dict[str, int] = {}
        self._buckets = [0] * (len(DURATION_BUCKETS) + 1)
        self._seconds = 0.0
        self._seq = 0
        self._changed = False

    def ping(self) -> int:
        """Liveness: the host answers while its process lives."""
        return self._incarnation

    # -- calls -----------------------------------------------------------------------

    def handle(self, call: EntityCall) -> tuple[list[Result], ShardReport | None]:
        """One call's result, and the counters if they changed."""
        return [self._one(call)], self._report()

    def handle_batch(self, calls: list[EntityCall]) -> tuple[list[Result], ShardReport | None]:
        """Each call's result in order, and the counters if they changed (one Ray call)."""
        return [self._one(call) for call in calls], self._report()

    def sweep(self, now: float) -> ShardReport | None:
        """Passivate the entities idle since ``now - passivate_after`` (the proxy's clock)."""
        for entity_id in idle_ids(self.active, now - self._settings.passivate_after):
            self.passivate(entity_id, PassivationReason.IDLE)
        return self._report()

    def stop(self) -> ShardReport:
        """Graceful stop: every entity passivates (``on_passivate`` runs); the final counters."""
        for entity_id in list(self.active):
            self.passivate(entity_id, PassivationReason.SHUTDOWN)
        self._changed = True
        report = self._report()
        assert report is not None
        return report

    def _one(self, call: EntityCall) -> Result:
        entity_id, at, data = call
        try:
            message = decode_msgpack(data, self._union)
        except CodecError as exc:  # the proxy sends only these types: a version skew
            _log.error(
                "entity_message_undecodable", agent=self._kind, entity=entity_id, error=str(exc)
            )
            address = entity_address(self._kind, entity_id)
            return _error(UnknownMessage(agent=address, message_type=f"undecodable: {exc}"))
        if type(message) is InspectEntity:
            return encode_msgpack(self._snapshot(entity_id))
        fn = self._handlers[type(message)]
        entity = self.active.pop(entity_id, None)
        if entity is None:
            activated = self._activate(entity_id, message)
            if isinstance(activated, ErrorReply):
                return _error(activated)
            entity = activated
        self.active[entity_id] = entity  # most recently used last
        entity._last_used = at  # noqa: SLF001 - the shard keeps its entities' clocks
        try:
            reply = encode_msgpack(fn(entity, message))
        except Exception as exc:  # noqa: BLE001 - one entity's crash: it alone is dropped
            return _error(self._crashed(entity, message, exc))
        self._after_message()
        return reply

    def _snapshot(self, entity_id: str) -> EntitySnapshot:
        entity = self.active.get(entity_id)
        if entity is None:  # a memory kind keeps nothing for an entity not active
            return EntitySnapshot(id=entity_id, active=False)
        return EntitySnapshot(id=entity_id, active=True, state=msgspec.to_builtins(entity.state))

    def _after_message(self) -> None:
        context = self._context
        if context.to_passivate:
            ids, context.to_passivate = context.to_passivate, []
            for entity_id in ids:
                self.passivate(entity_id, PassivationReason.REQUESTED)
        while (lru := over_limit(self.active, self._settings.max_active)) is not None:
            self.passivate(lru, PassivationReason.MAX_ACTIVE)

    # -- activation, crash and passivation ------------------------------------------

    def _activate(self, entity_id: str, message: Any) -> Entity[Any] | ErrorReply:
        started = _perf()
        try:
            shard = typing.cast("Shard", self._context)  # the part of Shard an entity uses
            entity = self._cls.hosted_by(shard, entity_id, self._cls.new_state())
            entity.on_activate()
        except Exception as exc:  # noqa: BLE001 - reported to the asker; the next message retries
            _log.error(
                "entity_activation_failed",
                agent=self._kind,
                entity=entity_id,
                placement="ray",
                message_type=type(message).__name__,
                exc_info=exc,
            )
            address = entity_address(self._kind, entity_id)
            return AgentCrashed(agent=address, error=f"activation failed: {short_error(exc)}")
        elapsed = _perf() - started
        self._activations += 1
        self._buckets[activation_bucket(elapsed)] += 1
        self._seconds += elapsed
        self._changed = True
        return entity

    def _crashed(self, entity: Entity[Any], message: Any, exc: Exception) -> AgentCrashed:
        self.active.pop(entity.id, None)
        self._crashes += 1
        self._changed = True
        _log.error(
            "entity_crashed",
            agent=self._kind,
            entity=entity.id,
            shard=self._name,
            placement="ray",
            message_type=type(message).__name__,
            exc_info=exc,
        )
        return AgentCrashed(agent=entity_address(self._kind, entity.id), error=short_error(exc))

    def passivate(self, entity_id: str, reason: str) -> None:
        """Drop the active instance of ``entity_id`` after its ``on_passivate`` hook."""
        entity = self.active.pop(entity_id, None)
        if entity is None:
            return
        try:
            entity.on_passivate()
        except Exception:  # noqa: BLE001 - logged; the passivation completes (as locally)
            _log.exception(
                "entity_hook_failed",
                agent=self._kind,
                entity=entity_id,
                placement="ray",
                hook="on_passivate",
            )
        self._passivations[reason] = self._passivations.get(reason, 0) + 1
        self._changed = True

    def _report(self) -> ShardReport | None:
        if not self._changed:
            return None
        self._changed = False
        self._seq += 1
        return ShardReport(
            seq=self._seq,
            active=len(self.active),
            activations=self._activations,
            crashes=self._crashes,
            passivations=dict(self._passivations),
            buckets=list(self._buckets),
            seconds=self._seconds,
        )


def _error(reply: ErrorReply) -> tuple[bytes]:
    return (encode_msgpack(reply),)
