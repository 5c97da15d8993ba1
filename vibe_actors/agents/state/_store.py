"""The state agent's table: versioned entries with an optional expiry.

One row per live key. ``expires_at`` is wall-clock seconds (``time.time()``),
so an expiry survives a restart; a row past it is treated as absent by every
read and removed by :meth:`StateStore.sweep` or the next write of its key.
Values are stored as msgpack (bytes stay bytes, ints stay ints). Every write
runs in its own transaction and is durable when the method returns (see
:mod:`vibe_actors.store._database`).
"""

from __future__ import annotations

from dataclasses import dataclass

from vibe_actors.store import Connection, Schema, Store, StoreError

__all__ = ["Created", "Deletion", "Mismatch", "Row", "StateStore", "prefix_bound"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 1),
    expires_at REAL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_by_expiry ON entries (expires_at)
    WHERE expires_at IS NOT NULL;
"""

#: The same table on PostgreSQL (migration 1). ``COLLATE "C"`` orders keys by code point,
#: as SQLite does: :func:`prefix_bound` depends on it.
POSTGRES_V1 = """
CREATE TABLE entries (
    key TEXT COLLATE "C" PRIMARY KEY,
    value BYTEA NOT NULL,
    version BIGINT NOT NULL CHECK (version >= 1),
    expires_at DOUBLE PRECISION
);
CREATE INDEX entries_by_expiry ON entries (expires_at) WHERE expires_at IS NOT NULL;
"""

_LIVE = "(expires_at IS NULL OR expires_at > ?)"
_CURRENT = "SELECT version, expires_at FROM entries WHERE key = ?"
#: The write of a put: it takes effect only if the row is still the one read (``version``
#: as read; 0 when there was none), so a replica that wrote meanwhile is never overwritten.
_UPSERT = (
    "INSERT INTO entries (key, value, version, expires_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version,"
    " expires_at = excluded.expires_at WHERE entries.version = ?"
)
#: A put retries when another writer's row appeared between its read and its write: that
#: row is locked by then, so the second attempt succeeds unless the database misbehaves.
_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Row:
    value: bytes
    version: int
    expires_at: float | None

    def live(self, now: float) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass(frozen=True, slots=True)
class Created:
    """A put took effect: ``version`` is the key's new version; ``added``: a new row."""

    version: int
    added: bool


@dataclass(frozen=True, slots=True)
class Deletion:
    """``found``: the key was live (and is now gone); ``removed``: rows deleted (0 or 1)."""

    found: bool
    removed: int


@dataclass(frozen=True, slots=True)
class Mismatch:
    """``expected_version`` did not hold; ``actual`` is the current version (0: absent)."""

    actual: int


def prefix_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (None: no bound).

    SQLite compares TEXT as UTF-8 bytes, which orders like code points, so
    bumping the last code point gives the exclusive upper bound of the range.
    """
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            bumped = last + 1
            if 0xD800 <= bumped <= 0xDFFF:  # surrogates cannot be encoded; skip them
                bumped = 0xE000
            return prefix[:-1] + chr(bumped)
        prefix = prefix[:-1]
    return None


class StateStore(Store):
    """The table of one state agent; used from the agent's thread only.

    On a shared database (PostgreSQL, several replicas) a write locks the
    key's row (``SELECT ... FOR UPDATE``) before it decides, and writes only
    if the row is still the one it read: ``expected_version`` holds across
    replicas. SQLite needs no lock (``BEGIN IMMEDIATE`` serializes writers).
    """

    schema = Schema(SCHEMA, postgres=(POSTGRES_V1,))

    def count(self) -> int:
        """Rows held, expired ones not yet purged included."""
        return int(self._db.execute("SELECT count(*) FROM entries").fetchone()[0])

    def get(self, key: str) -> Row | None:
        """The row of ``key``, expired or not (see :meth:`Row.live`)."""
        found = self._db.execute(
            "SELECT value, version, expires_at FROM entries WHERE key = ?", (key,)
        ).fetchone()
        return None if found is None else Row(found[0], found[1], found[2])

    def _current(self, db: Connection, key: str, now: float) -> tuple[int, int | None]:
        """The live version of ``key`` (0: absent or expired) and its row's stored version
        (None: no row); the row is locked until the transaction ends on a shared database."""
        statement = _CURRENT + " FOR UPDATE" if self._db.shared else _CURRENT
        found = db.execute(statement, (key,)).fetchone()
        if found is None:
            return 0, None
        live = found[1] is None or found[1] > now
        return (int(found[0]) if live else 0), int(found[0])

    def put(
        self, key: str, value: bytes, expected: int | None, expires_at: float | None, now: float
    ) -> Created | Mismatch:
        """Write ``key`` if its current version (0: absent or expired) is ``expected``."""
        with self._db.transaction() as db:
            for _ in range(_ATTEMPTS):
                current, stored = self._current(db, key, now)
                if expected is not None and expected != current:
                    return Mismatch(current)
                written = db.execute(
                    _UPSERT, (key, value, current + 1, expires_at, stored or 0)
                ).rowcount
                if written == 1:
                    return Created(current + 1, added=stored is None)
        raise StoreError(self.path, f"write failed: {key!r} kept changing during the write")

    def delete(self, key: str, expected: int | None, now: float) -> Deletion | Mismatch:
        """Remove ``key`` if live (and at ``expected``); an expired row is purged either way."""
        with self._db.transaction() as db:
            current, stored = self._current(db, key, now)
            if current and expected is not None and expected != current:
                return Mismatch(current)
            removed = 0
            if stored is not None:
                removed = db.execute("DELETE FROM entries WHERE key = ?", (key,)).rowcount
        return Deletion(found=current > 0 and removed > 0, removed=removed)

    def purge(self, key: str, now: float) -> int:
        """Remove ``key`` if it has expired; returns the rows removed (0 or 1)."""
        with self._db.transaction() as db:
            cursor = db.execute("DELETE FROM entries WHERE key = ? AND expires_at <= ?", (key, now))
        return cursor.rowcount

    def sweep(self, now: float) -> int:
        """Remove every expired row; returns how many."""
        with self._db.transaction() as db:
            cursor = db.execute("DELETE FROM entries WHERE expires_at <= ?", (now,))
        return cursor.rowcount

    def keys(self, prefix: str, limit: int, now: float) -> tuple[list[str], bool]:
        """Live keys starting with ``prefix`` in key order, at most ``limit``; and whether
        more exist."""
        upper = prefix_bound(prefix)
        # _LIVE is a constant; every value is a bound parameter.
        sql = f"SELECT key FROM entries WHERE key >= ? AND {_LIVE}"  # nosec B608
        params: tuple[object, ...] = (prefix, now)
        if upper is not None:
            sql += " AND key < ?"
            params += (upper,)
        rows = self._db.execute(sql + " ORDER BY key LIMIT ?", (*params, limit + 1)).fetchall()
        return [r[0] for r in rows[:limit]], len(rows) > limit
