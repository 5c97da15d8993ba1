"""An entity kind's saved states: one row per id, on SQLite or on PostgreSQL.

**SQLite** (the default): the file ``<data_dir>/entities.<kind>.db``, rows
``(id, state)``. One process writes it, and in that process one shard
serves an id, so there is one activation per id: a write is an upsert.

**PostgreSQL** (the system's ``store`` URL): the namespace
``entities.<kind>``, shared by every replica, rows ``(id, state, version)``.
Each replica routes an id to its own shard, so two replicas may hold an
activation of the same id at once. Writes are therefore fenced by the
version: an activation remembers the version it read, and a write of an id
is made only if the row still has the version the writing activation built
on (``expected``; 0: no row). A write whose row moved is not made: it is a
*conflict*, returned to the caller (the kind's writer answers
:class:`~vibe_actors.EntityConflict` and the stale activation is dropped).

One transaction carries many ids (group commit); a conflicting id does not
fail the others. The rows of the transaction are locked in id order
(``SELECT ... ORDER BY id FOR UPDATE``) and the new ones inserted in id
order, so that two replicas committing overlapping ids wait for each other
instead of deadlocking; the versions are then compared under those locks.
A lock held longer than :data:`LOCK_TIMEOUT_MS` (another replica stalled in
the middle of its commit) fails the transaction as any storage failure does
(:class:`~vibe_actors.store.StoreError`: its replies are 503, and the next
commit tries again), so one stalled replica never stalls the others' writers.
"""

from __future__ import annotations

from collections.abc import Collection

from vibe_actors.store import Connection, Schema, Store

__all__ = ["LOCK_TIMEOUT_MS", "SCHEMA", "EntityStateStore", "Saved", "Write"]

#: SQLite, version 1 (unchanged since entities began: no version column, one writer).
_SQLITE = """
CREATE TABLE IF NOT EXISTS entity_state (
    id TEXT PRIMARY KEY,
    state BLOB NOT NULL
) WITHOUT ROWID;
"""

#: PostgreSQL, migration 1. ``version`` counts the writes of an id (1: its first).
_POSTGRES_V1 = """
CREATE TABLE entity_state (
    id TEXT COLLATE "C" PRIMARY KEY,
    state BYTEA NOT NULL,
    version BIGINT NOT NULL CHECK (version >= 1)
);
"""

SCHEMA = Schema(tables=_SQLITE, postgres=(_POSTGRES_V1,))

#: A saved state and its version (always 0 on SQLite, which keeps none).
Saved = tuple[bytes, int]
#: What a commit writes for one id: (state, expected version, new version).
Write = tuple[bytes, int, int]

_UPSERT = (
    "INSERT INTO entity_state (id, state) VALUES (?, ?) "
    "ON CONFLICT (id) DO UPDATE SET state = excluded.state"
)
_GET = "SELECT state FROM entity_state WHERE id = ?"
_GET_VERSIONED = "SELECT state, version FROM entity_state WHERE id = ?"
_LOCK = "SELECT id, version FROM entity_state WHERE id = ANY(?) ORDER BY id FOR UPDATE"
_INSERT = (
    "INSERT INTO entity_state (id, state, version)"
    " SELECT b.id, b.state, b.version"
    " FROM unnest(?::text[], ?::bytea[], ?::bigint[]) AS b (id, state, version)"
    ' ORDER BY b.id COLLATE "C"'
    " ON CONFLICT (id) DO NOTHING RETURNING id"
)
_UPDATE = (
    "UPDATE entity_state AS s SET state = b.state, version = b.version"
    " FROM unnest(?::text[], ?::bytea[], ?::bigint[], ?::bigint[])"
    " AS b (id, state, version, expected)"
    " WHERE s.id = b.id AND s.version = b.expected RETURNING s.id"
)
_NO_CONFLICTS: frozenset[str] = frozenset()
#: How long a commit waits for another replica's lock on one of its rows (milliseconds).
LOCK_TIMEOUT_MS = 5000


class EntityStateStore(Store):
    """An entity kind's states (see the module docstring); one thread per instance."""

    schema = SCHEMA

    def get(self, entity_id: str) -> Saved | None:
        """The saved state of ``entity_id`` and its version, None if it has none;
        raises StoreError."""
        if self._db.shared:
            row = self._db.execute(_GET_VERSIONED, (entity_id,)).fetchone()
            return None if row is None else (bytes(row[0]), int(row[1]))
        row = self._db.execute(_GET, (entity_id,)).fetchone()
        return None if row is None else (bytes(row[0]), 0)

    def put_many(self, writes: dict[str, Write]) -> Collection[str]:
        """Save ``writes`` (id -> state, expected version, new version) in one transaction.

        Returns the ids not written because another writer moved their row past
        the expected version (PostgreSQL only; SQLite has one writer and returns
        none). Raises StoreError (nothing saved) or StoreRejected.
        """
        if not self._db.shared:
            with self._db.transaction() as connection:
                connection.executemany(_UPSERT, [(key, w[0]) for key, w in writes.items()])
            return _NO_CONFLICTS
        with self._db.transaction() as connection:
            return _fenced(connection, writes)

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM entity_state").fetchone()[0])


def _fenced(connection: Connection, writes: dict[str, Write]) -> set[str]:
    """Write each id of ``writes`` whose row is at its expected version; the others' ids."""
    ids = sorted(writes)
    connection.execute("SELECT set_config('lock_timeout', ?, true)", (f"{LOCK_TIMEOUT_MS}ms",))
    current = {row[0]: int(row[1]) for row in connection.execute(_LOCK, (ids,))}
    new: list[str] = []
    changed: list[str] = []
    conflicts: set[str] = set()
    for entity_id in ids:
        expected = writes[entity_id][1]
        found = current.get(entity_id)
        if found is None and expected == 0:
            new.append(entity_id)
        elif found == expected:
            changed.append(entity_id)
        else:  # written by another replica since it was read (or removed behind our back)
            conflicts.add(entity_id)
    if new:
        states = [writes[i][0] for i in new]
        versions = [writes[i][2] for i in new]
        inserted = {row[0] for row in connection.execute(_INSERT, (new, states, versions))}
        conflicts.update(i for i in new if i not in inserted)  # created meanwhile elsewhere
    if changed:
        states = [writes[i][0] for i in changed]
        versions = [writes[i][2] for i in changed]
        expected_versions = [writes[i][1] for i in changed]
        arrays = (changed, states, versions, expected_versions)
        updated = {row[0] for row in connection.execute(_UPDATE, arrays)}
        conflicts.update(i for i in changed if i not in updated)  # locked: never, but checked
    return conflicts
