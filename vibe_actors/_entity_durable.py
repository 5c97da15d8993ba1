"""Durable entity state: saved before the reply leaves, committed in groups.

One store per entity kind (``<data_dir>/entities.<kind>.db``), one row per
id: the state encoded with msgpack. Each shard has its own connection and
commits its own groups:

* After a message, the entity's state is encoded and compared with its
  encoding before the message. A changed state is added to the shard's
  pending group, and the reply is held (``defer``) until the group commits.
  A reply from an entity that still has a write pending is held too, so no
  reply ever shows a state that is not on disk.
* The group commits in one transaction when the shard's mailbox is empty
  (at once, for a lone writer), or when the ``_Flush`` the shard posted to
  itself behind the messages that were queued comes up: every write queued
  meanwhile shares that one commit (group commit).
* A commit that fails (a full disk, a read-only file) answers every held reply
  :class:`Unavailable` (``state not saved``), drops the entities of the group
  (their next message reloads the last saved state) and marks the shard
  impaired until a commit succeeds again.

Before an entity with a pending write is dropped (passivation, crash), the
group commits, so that a reload never reads an older state than a reply
showed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from vibe_actors._agent import Deferred
from vibe_actors._entity import entity_address
from vibe_actors._entity_kind import PassivationReason
from vibe_actors._messages import Unavailable
from vibe_actors.store import Schema, SqliteDatabase, Store, StoreError, database_path

if TYPE_CHECKING:
    from collections.abc import Callable

    from vibe_actors._entity import Entity
    from vibe_actors._entity_kind import ShardSettings
    from vibe_actors._entity_shard import Shard
    from vibe_actors._envelope import Envelope

__all__ = ["DurableStates", "EntityStateStore", "Flush"]

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


class Flush(msgspec.Struct, frozen=True):
    """Posted by a shard to itself: commit the pending group."""


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
    """One shard's view of its kind's store: loads, and the pending commit group."""

    def __init__(self, shard: Shard, store: EntityStateStore, state_type: type | None) -> None:
        self._shard = shard
        self._store = store
        self._decode: Callable[[bytes], Any] | None = (
            None if state_type is None else msgspec.msgpack.Decoder(state_type).decode
        )
        #: id -> encoded state, written by the next commit.
        self._group: dict[str, bytes] = {}
        #: Held replies: (handle, reply, entity id).
        self._held: list[tuple[Deferred, Any, str]] = []
        self._flush_posted = False
        self.commits = 0

    @classmethod
    def open(cls, shard: Shard, settings: ShardSettings) -> DurableStates:
        """The shard's store, opened; raises :class:`StoreError` if it cannot be used."""
        path = database_path(shard.system.config.data_dir, f"entities.{settings.kind}")
        store = EntityStateStore(SqliteDatabase(path, SCHEMA))
        return cls(shard, store, settings.entity_class.State)

    @property
    def path(self) -> str:
        return self._store.path

    def close(self) -> None:
        self._store.close()

    # -- loading -----------------------------------------------------------------

    def load(self, entity_id: str) -> Any:
        """The saved state of ``entity_id`` (a new one if none); raises StoreError."""
        saved = self._store.get(entity_id)
        if saved is None or self._decode is None:
            return self._shard.new_state()
        return self._decode(saved)

    def load_saved(self, entity_id: str) -> Any:
        """The saved state of ``entity_id``, None if it has none; raises StoreError."""
        saved = self._store.get(entity_id)
        if saved is None or self._decode is None:
            return None
        return self._decode(saved)

    # -- one message -------------------------------------------------------------

    def handle(
        self, entity: Entity[Any], fn: Callable[..., Any], message: Any, env: Envelope
    ) -> Any:
        """Run ``fn`` on ``entity`` and make its reply wait for its state to be on disk."""
        shard = self._shard
        before = _encode(entity.state)
        try:
            result = fn(entity, message)
        except Exception as exc:  # noqa: BLE001 - one entity's crash: it alone is dropped
            if entity.id in self._group:
                self.commit()  # what earlier replies showed stays what a reload reads
            return shard.entity_crashed(entity, env, exc)
        after = _encode(entity.state)
        group = self._group
        if after != before:
            group[entity.id] = after
        elif entity.id not in group:
            shard.after_message()
            return result  # nothing to wait for
        if shard.mailbox_size == 0 and not self._held:
            error = self.commit()
            shard.after_message()
            return result if error is None else self._not_saved(entity.id, error)
        self._held.append((shard.defer(), result, entity.id))
        if not self._flush_posted:
            self._flush_posted = True
            shard.post_flush()
        shard.after_message()
        return None  # the reply is held (defer): the loop sends none

    def flushed(self) -> None:
        """The shard's ``Flush`` came up: commit the group."""
        self._flush_posted = False
        self.commit()

    def pending(self, entity_id: str) -> bool:
        return entity_id in self._group

    # -- commits ---------------------------------------------------------------------

    def commit(self) -> StoreError | None:
        """Write the pending group, then release the held replies; the error if it failed."""
        group, held = self._group, self._held
        self._group, self._held = {}, []
        error: StoreError | None = None
        if group:
            try:
                self._store.put_many(group)
            except StoreError as exc:
                error = exc
        shard = self._shard
        if error is None:
            self.commits += bool(group)
            shard.storage_ok()
            for deferred, result, _ in held:
                deferred.resolve(result)
            return None
        shard.storage_failed(error)
        for deferred, _, entity_id in held:
            deferred.resolve(self._not_saved(entity_id, error))
        for entity_id in group:
            shard.passivate(entity_id, PassivationReason.SAVE_FAILED, save=False)
        return error

    def _not_saved(self, entity_id: str, error: StoreError) -> Unavailable:
        return Unavailable(
            agent=entity_address(self._shard.kind, entity_id),
            reason=f"state not saved ({error.reason})",
        )

    def save_now(self, entity: Entity[Any], before: bytes) -> None:
        """Save ``entity`` at once if its state differs from ``before`` (a hook changed it)."""
        after = _encode(entity.state)
        if after != before:
            self._group[entity.id] = after
            self.commit()

    @staticmethod
    def encode(state: Any) -> bytes:
        return _encode(state)
