"""Durable entity state: saved before the reply leaves, committed by the kind's writer.

One store per entity kind (``<data_dir>/entities.<kind>.db``), one row per
id: the state encoded with msgpack. Each shard reads it on its own connection
(activation); every write goes through the kind's one
:class:`~vibe_actors._entity_writer.KindWriter`, which commits the writes of all
its shards in groups on its own thread:

* After a message, the entity's state is encoded and compared with its
  encoding before the message. A changed state is handed to the writer with
  the message's reply, and the shard goes on with its next message: the
  writer answers the reply once the state is on disk.
* A reply from an entity that still has a write in flight is handed over too
  (answered after that write commits), so no reply ever shows a state that is
  not on disk.
* A reload (activation) reads the newest state handed over and not yet
  committed before the store, so passivating an entity never waits for its write.
* A commit that fails answers its replies :class:`Unavailable` (``state not
  saved``) and sends the shard :class:`~vibe_actors._entity_writer.SaveFailed`:
  the shard drops those entities (their next message reloads the last saved
  state) and is impaired until a commit succeeds again.

"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from vibe_actors.store import Schema, SqliteDatabase, Store, StoreError, database_path

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from vibe_actors._entity import Entity
    from vibe_actors._entity_kind import ShardSettings
    from vibe_actors._entity_shard import Shard
    from vibe_actors._entity_writer import KindWriter
    from vibe_actors._envelope import Envelope

__all__ = ["DurableStates", "EntityStateStore", "open_writer_store", "store_path"]

_encode = msgspec.msgpack.Encoder().encode

SCHEMA = Schema(
    tables="""
CREATE TABLE IF NOT EXISTS entity_state (
    id TEXT PRIMARY KEY,
    state BLOB NOT NULL
) WITHOUT ROWID;
"""
)

_UPSERT = (
    "INSERT INTO entity_state (id, state) VALUES (?, ?) "
    "ON CONFLICT (id) DO UPDATE SET state = excluded.state"
)


class EntityStateStore(Store):
    """An entity kind's states: one row per id (msgpack bytes)."""

    schema = SCHEMA

    def get(self, entity_id: str) -> bytes | None:
        """The saved state of ``entity_id``, None if it has none; raises StoreError."""
        row = self._db.execute(
            "SELECT state FROM entity_state WHERE id = ?", (entity_id,)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def put_many(self, states: dict[str, bytes]) -> None:
        """Save ``states`` (id -> bytes) in one transaction; raises StoreError (nothing saved)."""
        with self._db.transaction() as connection:
            connection.executemany(_UPSERT, list(states.items()))

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM entity_state").fetchone()[0])


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
        path = store_path(shard, settings.kind)
        store = EntityStateStore(SqliteDatabase(path, SCHEMA))
        try:
            settings.writer.join(
                settings.index, shard, shard.incarnation, lambda: open_writer_store(path)
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

    def load(self, entity_id: str) -> Any:
        """The state of ``entity_id`` (a new one if none); raises StoreError."""
        saved = self._saved_bytes(entity_id)
        if saved is None or self._decode is None:
            return self._shard.new_state()
        return self._decode(saved)

    def load_saved(self, entity_id: str) -> Any:
        """The state of ``entity_id``, None if it has none; raises StoreError."""
        saved = self._saved_bytes(entity_id)
        if saved is None or self._decode is None:
            return None
        return self._decode(saved)

    def _saved_bytes(self, entity_id: str) -> bytes | None:
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
        state = after if after != before else None
        writer.hand_over(self._index, self._incarnation, entity.id, state, reply, result)
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
            self._writer.hand_over(self._index, self._incarnation, entity.id, after, None, None)

    @staticmethod
    def encode(state: Any) -> bytes:
        return _encode(state)


def store_path(shard: Shard, kind: str) -> Path:
    """The file of ``kind``'s entity states in ``shard``'s system."""
    return database_path(shard.system.config.data_dir, f"entities.{kind}")


def open_writer_store(path: Path) -> EntityStateStore:
    """A kind writer's connection (opened in its thread); raises StoreError."""
    return EntityStateStore(SqliteDatabase(path, SCHEMA))
