"""Durable entity state: saved before the reply leaves, committed by the kind's writer.

One store per entity kind (:mod:`vibe_actors._entity_store`: the SQLite file
``<data_dir>/entities.<kind>.db``, or the namespace ``entities.<kind>`` of the
system's PostgreSQL store), one row per id: the state encoded with msgpack,
and on PostgreSQL its version. Each shard reads it on its own connection
(activation); every write goes through the kind's one
:class:`~vibe_actors._entity_writer.KindWriter`, which commits the writes of all
its shards in groups on its own thread:

* After a message, the entity's state is encoded and compared with its
  encoding before the message. A changed state is handed to the writer with
  the message's reply and its new version (the activation's version + 1), and
  the shard goes on with its next message: the writer answers the reply once
  the state is on disk.
* A reply from an entity that still has a write in flight is handed over too
  (answered after that write commits), so no reply ever shows a state that is
  not on disk.
* A reload (activation) reads the newest state handed over and not yet
  committed before the store, so passivating an entity never waits for its write.
* A commit that fails answers its replies :class:`Unavailable` (``state not
  saved``) and sends the shard :class:`~vibe_actors._entity_writer.SaveFailed`:
  the shard drops those entities (their next message reloads the last saved
  state) and is impaired until a commit succeeds again.
* On PostgreSQL, a write whose row another replica moved since this
  activation read it is a conflict: its reply is :class:`EntityConflict` (409)
  and the shard drops the entity (``SaveFailed`` with ``conflict``), so its next
  message reloads the newer state. The shard is not impaired: the store works.

"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from vibe_actors._entity_store import EntityStateStore
from vibe_actors.store import StoreError, open_store

if TYPE_CHECKING:
    from collections.abc import Callable

    from vibe_actors._entity import Entity
    from vibe_actors._entity_kind import ShardSettings
    from vibe_actors._entity_shard import Shard
    from vibe_actors._entity_writer import KindWriter
    from vibe_actors._envelope import Envelope

__all__ = ["DurableStates", "namespace"]

_encode = msgspec.msgpack.Encoder().encode


class DurableStates:
    """One shard's side of its kind's durable states: loads, and hand-overs to the writer."""

    def __init__(
        self,
        shard: Shard,
        store: EntityStateStore,
        writer: KindWriter,
        state_type: type | None,
    ) -> None:
        self._shard = shard
        self._store = store
        self._writer = writer
        self._index = shard.config.index
        self._incarnation = shard.incarnation
        self._decode: Callable[[bytes], Any] | None = (
            None if state_type is None else msgspec.msgpack.Decoder(state_type).decode
        )

    @classmethod
    def open(cls, shard: Shard, settings: ShardSettings) -> DurableStates:
        """The shard's reads and its kind's writer, joined; raises :class:`StoreError` if the
        store cannot be used."""
        assert settings.writer is not None  # a durable kind has one
        name = namespace(settings.kind)
        store = open_store(EntityStateStore, shard, namespace=name)
        try:
            settings.writer.join(
                settings.index,
                shard,
                shard.incarnation,
                lambda: open_store(EntityStateStore, shard, namespace=name),
            )
        except StoreError:
            store.close()
            raise
        return cls(shard, store, settings.writer, settings.entity_class.State)

    @property
    def path(self) -> str:
        return self._store.path

    def close(self, *, stopping: bool = True) -> None:
        """Leave the writer (it goes on writing what was handed over) and close the reads;
        ``stopping`` False: the shard crashed (the writer keeps running for its next one)."""
        self._writer.leave(self._index, self._incarnation, stopping=stopping)
        self._store.close()

    def flush(self, timeout: float) -> bool:
        """Wait until every write handed over so far is on disk; False on timeout."""
        return self._writer.flush(timeout)

    # -- loading -----------------------------------------------------------------

    def load(self, entity_id: str) -> tuple[Any, int]:
        """The state of ``entity_id`` (a new one if none) and its version; raises StoreError."""
        saved = self._saved(entity_id)
        if saved is None:
            return self._shard.new_state(), 0
        if self._decode is None:
            return self._shard.new_state(), saved[1]
        return self._decode(saved[0]), saved[1]

    def load_saved(self, entity_id: str) -> Any:
        """The state of ``entity_id``, None if it has none; raises StoreError."""
        saved = self._saved(entity_id)
        if saved is None or self._decode is None:
            return None
        return self._decode(saved[0])

    def _saved(self, entity_id: str) -> tuple[bytes, int] | None:
        unsaved = self._writer.unsaved(entity_id)  # handed over, not committed yet: newer
        return unsaved if unsaved is not None else self._store.get(entity_id)

    # -- one message -------------------------------------------------------------

    def handle(
        self, entity: Entity[Any], fn: Callable[..., Any], message: Any, env: Envelope
    ) -> Any:
        """Run ``fn`` on ``entity``; a changed state (and the reply) goes to the writer."""
        shard = self._shard
        before = _encode(entity.state)
        try:
            result = fn(entity, message)
        except Exception as exc:  # noqa: BLE001 - one entity's crash: it alone is dropped
            return shard.entity_crashed(entity, env, exc)
        after = _encode(entity.state)
        writer = self._writer
        if after == before and not writer.pending(entity.id):
            shard.after_message()
            return result  # nothing to wait for
        reply = shard.hand_off_reply()
        if after != before:
            entity._version = version = entity._version + 1  # noqa: SLF001 - the shard's entity
            writer.hand_over(
                self._index, self._incarnation, entity.id, after, version, reply, result
            )
        else:
            writer.hand_over(self._index, self._incarnation, entity.id, None, 0, reply, result)
        shard.after_message()
        return None  # the writer answers (the loop sends nothing: the reply was taken)

    def pending(self, entity_id: str) -> bool:
        return self._writer.pending(entity_id)

    def forgive(self, ids: tuple[str, ...]) -> None:
        """The shard dropped ``ids`` after a SaveFailed: their hand-overs count again."""
        self._writer.forgive(ids)

    def save_now(self, entity: Entity[Any], before: bytes) -> None:
        """Hand ``entity``'s state over if it differs from ``before`` (a hook changed it)."""
        after = _encode(entity.state)
        if after != before:
            entity._version = version = entity._version + 1  # noqa: SLF001 - the shard's entity
            self._writer.hand_over(
                self._index, self._incarnation, entity.id, after, version, None, None
            )

    @staticmethod
    def encode(state: Any) -> bytes:
        return _encode(state)


def namespace(kind: str) -> str:
    """Where ``kind``'s states are: the SQLite file ``<data_dir>/<namespace>.db``, or the
    PostgreSQL namespace."""
    return f"entities.{kind}"
