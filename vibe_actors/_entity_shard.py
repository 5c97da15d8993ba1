"""Shard: the agent that hosts many entities of one kind in its one thread.

A shard is an ordinary supervised agent (its own mailbox, thread, restart,
watchdog), so everything an agent gets a shard gets. Its messages are the
kind's entities' messages; each envelope names its entity (``entity``), and
the shard's fallback handler (:meth:`Shard.on_unhandled`) dispatches it:

1. find the entity in the active table, or activate it (build the instance,
   load its state, run ``on_activate``);
2. run the entity's handler; an exception crashes that entity only (it is
   dropped and its asker gets :class:`AgentCrashed`);
3. for a durable kind, save the state if the message changed it, before the
   reply leaves (:mod:`vibe_actors._entity_durable`);
4. passivate what is over ``max_active`` (least recently used first).

The active table is a dict kept in least-recently-used order (an entity is
moved to the end when a message comes for it and it is not already the last), so that passivation, by idle time on a
periodic sweep or by count, reads it from the front and stops at the first
entity that stays. One message at a time per shard means one at a time per
entity, and the shard's FIFO mailbox keeps each sender's order.

A shard that crashes or is replaced as hung loses its active entities
without ``on_passivate`` (a memory kind's state with them; a durable kind
reloads from the store); the messages queued for it stay in its mailbox
for the next incarnation.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from msgspec import to_builtins

from vibe_actors._agent import Agent, Deferred
from vibe_actors._deadletters import DeadLetterReason
from vibe_actors._entity import EntitySnapshot, InspectEntity, entity_address
from vibe_actors._entity_durable import DurableStates
from vibe_actors._entity_kind import PassivationReason, ShardSettings
from vibe_actors._entity_table import activation_bucket, idle_ids, over_limit, short_error
from vibe_actors._entity_writer import SaveFailed
from vibe_actors._envelope import Envelope
from vibe_actors._handlers import handler
from vibe_actors._messages import AgentCrashed, ErrorReply, Unavailable, UnknownMessage
from vibe_actors._spec import EntityState
from vibe_actors.store import StoreError

if TYPE_CHECKING:
    from collections.abc import Callable

    from vibe_actors._cell import Cell
    from vibe_actors._entity import Entity
    from vibe_actors._timers import TimerHandle

__all__ = ["Shard"]

_log = structlog.get_logger("vibe_actors.entity")
#: How long a stopping shard waits for its kind's writer to write what it handed over.
_FLUSH_ON_STOP = 60.0
_perf = time.perf_counter


class _Sweep(msgspec.Struct, frozen=True):
    """Timer tick: passivate the entities idle for longer than passivate_after."""


class Shard(Agent):
    """Hosts the entities of one kind whose ids hash to it (see the module docstring)."""

    config: ShardSettings

    def __init__(self) -> None:
        super().__init__()
        settings: ShardSettings = self.config
        self.kind = settings.kind
        self.entity_config = settings.entity_config
        self._settings = settings
        self._index = settings.index
        self._entity_class = settings.entity_class
        self._entity_handlers = settings.entity_class.handler_table()
        self._fallback = settings.entity_class.unhandled_hook()
        self._stats = settings.stats
        self._clock = self.system.clock
        spec = settings.spec
        self._idle_after = spec.passivate_after
        self._max_active = -(-spec.max_active // spec.shards)  # ceil: per shard
        #: id -> instance, least recently used first.
        self.active: dict[str, Entity[Any]] = {}
        #: The most recently used entity (last in ``active``), if it is still active.
        self._last: Entity[Any] | None = None
        #: id -> (timer key -> handle), for the entities that have timers.
        self._timers: dict[str, dict[Any, TimerHandle]] = {}
        #: Ids to passivate once the current message is done (Entity.passivate).
        self._to_passivate: list[str] = []
        self._durable: DurableStates | None = None

    # -- lifecycle -------------------------------------------------------------

    def on_start(self) -> None:
        if self._settings.spec.state is EntityState.DURABLE:
            try:
                self._durable = DurableStates.open(self, self._settings)
            except StoreError as exc:
                self.log.error("store_unavailable", path=exc.path, error=exc.reason)
                self.degrade(str(exc))  # answers Unavailable; the next incarnation retries
                return
        self._stats.active[self._index] = self.active
        table = self._host.handlers  # this incarnation's: each entity message type dispatched
        for message_type, fn in self._entity_handlers.items():
            table.setdefault(message_type, self._dispatcher(fn))
        if self._idle_after > 0:
            self.start_timer("sweep", _Sweep(), self._idle_after / 2, repeat=True)

    def on_stop(self) -> None:
        self._passivate_all(PassivationReason.SHUTDOWN)
        self._stats.active[self._index] = None
        durable = self._durable
        if durable is not None:
            if not durable.flush(_FLUSH_ON_STOP):
                self.log.error("entity_states_not_flushed", seconds=_FLUSH_ON_STOP)
            durable.close()

    def on_failure(self, error: BaseException) -> None:
        lost = len(self.active)
        self._cancel_all_timers()
        self.active = {}
        self._stats.active[self._index] = None
        if self._durable is not None:  # what it handed over is still written
            self._durable.close(stopping=False)
        self.log.error("entity_shard_crashed", lost_entities=lost, error=str(error))

    # -- the dispatch ----------------------------------------------------------

    def on_unhandled(self, message: Any) -> Any:
        """A message no entity handler declares: the entity's ``on_unhandled``, if any."""
        env: Envelope = self._host.current  # type: ignore[assignment] # always set in a handler
        if env.entity is None or self._fallback is None:  # or a message of the shard's own
            return self._refuse(env, message)
        return self._dispatcher(self._fallback)(self, message)

    def _dispatcher(self, fn: Callable[..., Any]) -> Callable[[Shard, Any], Any]:
        """The handler-table entry that runs entity handler ``fn`` on a message's entity
        (activated if it is not active).

        One per message type the entity class declares, in this incarnation's
        handler table, so the receive loop calls it directly (with the agent,
        this shard): the hot path of every entity message, kept to locals and
        the handler's call.
        """
        clock, durable = self._clock, self._durable

        def dispatch(self: Shard, message: Any) -> Any:
            env: Envelope = self._host.current  # type: ignore[assignment] # set in a handler
            entity_id = env.entity
            if entity_id is None:  # sent to the shard itself, not to one of its entities
                return self._refuse(env, message)
            active = self.active
            entity = active.get(entity_id)
            if entity is None:
                activated = self._activate(entity_id, env)
                if isinstance(activated, ErrorReply):
                    return activated
                entity = activated
            elif entity is not self._last:  # most recently used last (a burst moves it once)
                del active[entity_id]
                active[entity_id] = entity
                self._last = entity
            entity._last_used = clock()  # noqa: SLF001 - the shard keeps its entities' clocks
            if durable is not None:
                return durable.handle(entity, fn, message, env)
            try:
                result = fn(entity, message)
            except Exception as exc:  # noqa: BLE001 - one entity's crash: it alone is dropped
                return self.entity_crashed(entity, env, exc)
            if self._to_passivate:
                self.after_message()
            return result

        return dispatch

    def after_message(self) -> None:
        """Passivate what was asked for during the message (Entity.passivate).

        (``max_active`` is held at activation, the only time the table grows.)
        """
        if self._to_passivate:
            ids, self._to_passivate = self._to_passivate, []
            for entity_id in ids:
                self.passivate(entity_id, PassivationReason.REQUESTED)

    def current_envelope(self) -> Envelope | None:
        return self._host.current

    def new_state(self) -> Any:
        return self._entity_class.new_state()

    # -- durable state (see vibe_actors._entity_durable) -------------------------

    @property
    def shard_cell(self) -> Cell:
        """This shard's cell (the kind's writer sends it SaveFailed)."""
        return self._cell

    def hand_off_reply(self) -> Deferred | None:
        """Take the current message's reply (None for a tell) for the kind's writer to answer.

        Unlike :meth:`defer`, the handle is not this incarnation's: a write handed
        over is committed whatever becomes of the shard, and its reply says so.
        """
        env = self._host.current
        assert env is not None  # called in a handler
        reply, env.reply = env.reply, None  # the loop will not reply for this message
        return None if reply is None else Deferred(reply)

    @handler
    def _save_failed(self, lost: SaveFailed) -> None:
        reason = PassivationReason.CONFLICT if lost.conflict else PassivationReason.SAVE_FAILED
        for entity_id in lost.ids:
            self.passivate(entity_id, reason, save=False)
        if self._durable is not None:
            self._durable.forgive(lost.ids)

    @property
    def durable_commits(self) -> int:
        """Transactions the kind's writer committed (0 for a memory kind)."""
        return self._stats.commits

    def entity_crashed(self, entity: Entity[Any], env: Envelope, exc: Exception) -> AgentCrashed:
        """Drop ``entity`` after its handler raised ``exc``; the reply for its asker."""
        self.active.pop(entity.id, None)
        if entity is self._last:
            self._last = None
        self._cancel_timers(entity.id)
        self._stats.crashes[self._index] += 1
        address = entity_address(self.kind, entity.id)
        _log.error(
            "entity_crashed",
            agent=self.kind,
            entity=entity.id,
            shard=self.name,
            message_type=type(env.message).__name__,
            request_id=env.request_id,
            exc_info=exc,
        )
        return AgentCrashed(agent=address, error=short_error(exc))

    def _refuse(self, env: Envelope, message: Any) -> UnknownMessage:
        address = self.name if env.entity is None else entity_address(self.kind, env.entity)
        self.system.dead_letters.publish(address, env, DeadLetterReason.UNHANDLED)
        return UnknownMessage(agent=address, message_type=type(message).__name__)

    # -- activation and passivation ---------------------------------------------

    def _activate(self, entity_id: str, env: Envelope) -> Entity[Any] | ErrorReply:
        """A new active instance of ``entity_id``, or the reply saying why not (logged)."""
        started = _perf()
        try:
            if self._durable is not None:
                state, version = self._durable.load(entity_id)
                entity = self._entity_class.hosted_by(self, entity_id, state)
                entity._version = version  # noqa: SLF001 - the shard keeps its entities' versions
            else:
                state = self._entity_class.new_state()
                entity = self._entity_class.hosted_by(self, entity_id, state)
            entity.on_activate()
        except Exception as exc:  # noqa: BLE001 - reported to the asker; the next message retries
            self._cancel_timers(entity_id)
            _log.error(
                "entity_activation_failed",
                agent=self.kind,
                entity=entity_id,
                message_type=type(env.message).__name__,
                request_id=env.request_id,
                exc_info=exc,
            )
            address = entity_address(self.kind, entity_id)
            if isinstance(exc, StoreError):
                return Unavailable(agent=address, reason=f"state not loaded ({exc.reason})")
            return AgentCrashed(agent=address, error=f"activation failed: {short_error(exc)}")
        active = self.active
        active[entity_id] = entity
        self._last = entity
        while (oldest := over_limit(active, self._max_active)) is not None:
            self.passivate(oldest, PassivationReason.MAX_ACTIVE)  # the new one is the most recent
        elapsed = _perf() - started
        stats, index = self._stats, self._index
        stats.activations[index] += 1
        stats.activation_buckets[index][activation_bucket(elapsed)] += 1
        stats.activation_seconds[index] += elapsed
        return entity

    def passivate(self, entity_id: str, reason: str, *, save: bool = True) -> None:
        """Drop the active instance of ``entity_id`` after its ``on_passivate`` hook.

        For a durable kind, a pending write of it commits first, and a state the
        hook changes is saved (unless ``save`` is false: its last save failed).
        """
        entity = self.active.pop(entity_id, None)
        if entity is None:
            return
        if entity is self._last:
            self._last = None
        self._cancel_timers(entity_id)
        durable = self._durable if save else None
        before = durable.encode(entity.state) if durable is not None else b""
        try:
            entity.on_passivate()
        except Exception:  # noqa: BLE001 - logged; the passivation completes (as on_stop)
            _log.exception(
                "entity_hook_failed", agent=self.kind, entity=entity_id, hook="on_passivate"
            )
        if durable is not None:
            durable.save_now(entity, before)
        counts = self._stats.passivations[self._index]
        counts[reason] = counts.get(reason, 0) + 1

    def passivate_later(self, entity_id: str) -> None:
        self._to_passivate.append(entity_id)

    @handler
    def _inspect(self, msg: InspectEntity) -> EntitySnapshot | UnknownMessage:
        env = self._host.current
        entity_id = env.entity if env is not None else None
        if entity_id is None:  # sent to the shard itself: it is an entity's message
            return UnknownMessage(agent=self.name, message_type="InspectEntity")
        entity = self.active.get(entity_id)
        if entity is not None:
            return EntitySnapshot(id=entity_id, active=True, state=to_builtins(entity.state))
        if self._durable is None:
            return EntitySnapshot(id=entity_id, active=False)
        saved = to_builtins(self._durable.load_saved(entity_id))
        return EntitySnapshot(id=entity_id, active=False, state=saved)

    @handler
    def _sweep(self, tick: _Sweep) -> None:
        for entity_id in idle_ids(self.active, self._clock() - self._idle_after):
            self.passivate(entity_id, PassivationReason.IDLE)

    def _passivate_all(self, reason: str) -> None:
        for entity_id in list(self.active):
            self.passivate(entity_id, reason)

    # -- entity timers ---------------------------------------------------------------

    def start_entity_timer(
        self, entity_id: str, key: Any, message: Any, delay: float, repeat: bool
    ) -> None:
        self.cancel_entity_timer(entity_id, key)
        ref = self.system.entity(self.kind, entity_id)
        timers = self.system.timers
        if repeat:
            handle = timers.call_every(delay, ref.tell, message)
        else:
            handle = timers.call_later(delay, ref.tell, message)
        self._timers.setdefault(entity_id, {})[key] = handle

    def cancel_entity_timer(self, entity_id: str, key: Any) -> bool:
        own = self._timers.get(entity_id)
        if own is None or key not in own:
            return False
        own.pop(key).cancel()
        if not own:
            del self._timers[entity_id]
        return True

    def _cancel_timers(self, entity_id: str) -> None:
        for handle in self._timers.pop(entity_id, {}).values():
            handle.cancel()

    def _cancel_all_timers(self) -> None:
        for entity_id in list(self._timers):
            self._cancel_timers(entity_id)
