"""The ledger's store: its tables (SQLite, or PostgreSQL shared by replicas) and queries.

* ``records`` holds each record, ``data`` as its canonical msgpack (see
  :mod:`vibe_actors.agents.ledger._chain`), so the exact bytes that were
  hashed are the bytes on disk;
* ``streams`` holds each stream's count and head hash, written in the same
  transaction as the rows, so heads load in O(streams) at start;
* ``unkeyed_prefix`` names, per stream, the last record written before the
  chain was keyed (those keep the unkeyed rule);
* ``chain_meta`` marks a database whose chain is keyed (the rule and the
  key's public ``key_id``): a database without it predates keyed chains.

Integers reaching the database are bounded (:data:`~vibe_actors.agents.ledger._chain.MAX_SEQ`):
the store refuses an out-of-range one with
:class:`~vibe_actors.agents.ledger._chain.LedgerRangeError` rather than let the
driver raise (SQLite's: ``OverflowError``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from vibe_actors.agents.ledger._chain import (
    CHAIN_RULE,
    MAX_SEQ,
    ChainMarker,
    Head,
    Row,
    check_range,
)
from vibe_actors.store import Schema, Store, StoreError, StoreRejected

__all__ = ["LedgerStore", "Rechain"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    data BLOB NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (stream, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS streams (
    stream TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    head TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chain_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS unkeyed_prefix (
    stream TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
) WITHOUT ROWID;
"""


#: The same tables on PostgreSQL (migration 1); ``COLLATE "C"`` lists streams in code-point
#: order, as SQLite does.
POSTGRES_V1 = """
CREATE TABLE records (
    stream TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    data BYTEA NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (stream, seq)
);
CREATE TABLE streams (
    stream TEXT COLLATE "C" PRIMARY KEY,
    count BIGINT NOT NULL,
    head TEXT NOT NULL
);
CREATE TABLE chain_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE unkeyed_prefix (
    stream TEXT COLLATE "C" PRIMARY KEY,
    seq BIGINT NOT NULL
);
"""

#: Takes the batch's streams' locks (one advisory lock per stream, in stream order, so two
#: replicas locking the same streams cannot deadlock), held until the transaction ends.
_LOCK_STREAMS = (
    "SELECT pg_advisory_xact_lock(hashtextextended(name, 0))"
    " FROM (SELECT ? || ':' || s AS name FROM unnest(?::text[]) AS s ORDER BY s) AS locked"
)
#: The locks' names: ``vibe-ledger:<stream>`` (two ledger agents with a stream of the same
#: name share its lock: they take turns, which is all it costs).
_LOCK_PREFIX = "vibe-ledger"
_STORED_HEADS = "SELECT stream, count, head FROM streams WHERE stream = ANY(?)"


#: What a shared store's commit asks the ledger, under the streams' locks: given the heads
#: stored now, the rows and heads to write (re-numbered and re-chained if another replica
#: appended since the batch was made).
Rechain = Callable[[dict[str, Head]], tuple[list[Row], dict[str, Head]]]


# -- the store ------------------------------------------------------------------------


class LedgerStore(Store):
    """The ledger's tables. Use from one thread (the agent's)."""

    schema = Schema(SCHEMA, postgres=(POSTGRES_V1,))

    def heads(self) -> dict[str, Head]:
        """Every stream's head, as last committed. Raises StoreError."""
        rows = self._db.execute("SELECT stream, count, head FROM streams").fetchall()
        return {stream: Head(count, head) for stream, count, head in rows}

    def commit(
        self, rows: list[Row], heads: dict[str, Head], rechain: Rechain | None = None
    ) -> dict[str, Head]:
        """Insert ``rows`` and move ``heads`` in one durable transaction; returns the heads
        committed.

        On a shared database (several replicas append) the batch's streams are
        locked first and ``rechain`` is given their stored heads: what it
        returns is written, so seqs stay gapless and the chain unbroken
        whichever replica committed last. Returns only after the commit;
        raises :class:`StoreError` (nothing of the batch is kept) if any part fails.
        """
        try:
            with self._db.transaction() as db:
                if self._db.shared and rechain is not None:
                    streams = sorted(heads)
                    db.execute(_LOCK_STREAMS, (_LOCK_PREFIX, streams))
                    stored = db.execute(_STORED_HEADS, (streams,)).fetchall()
                    rows, heads = rechain({name: Head(n, head) for name, n, head in stored})
                db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?)", rows)
                db.executemany(
                    "INSERT INTO streams VALUES (?, ?, ?) ON CONFLICT (stream) "
                    "DO UPDATE SET count = excluded.count, head = excluded.head",
                    [(stream, head.seq, head.hash) for stream, head in heads.items()],
                )
        except StoreRejected as exc:  # a record that is there already: rolled back
            raise StoreError(self.path, f"write failed: {exc.reason}") from exc
        return heads

    def read(self, stream: str, after: int, limit: int) -> list[Row]:
        """Up to ``limit`` records of ``stream`` with seq > ``after``, in order.

        Raises :class:`LedgerRangeError` if ``after`` or ``limit`` is out of range.
        """
        check_range("after", after, 0, MAX_SEQ)
        check_range("limit", limit, 1, MAX_SEQ)
        cursor = self._db.execute(
            "SELECT stream, seq, ts, data, hash FROM records WHERE stream = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (stream, after, limit),
        )
        return [Row(*row) for row in cursor]

    def tail(self, stream: str, limit: int) -> list[Row]:
        """The last ``limit`` records of ``stream``, in order (LedgerRangeError: bad limit)."""
        check_range("limit", limit, 1, MAX_SEQ)
        cursor = self._db.execute(
            "SELECT stream, seq, ts, data, hash FROM records WHERE stream = ? "
            "ORDER BY seq DESC LIMIT ?",
            (stream, limit),
        )
        return [Row(*row) for row in reversed(cursor.fetchall())]

    def chain(self, stream: str) -> Iterator[Row]:
        """Every record of ``stream`` in seq order (streamed, not loaded at once)."""
        cursor = self._db.execute(
            "SELECT stream, seq, ts, data, hash FROM records WHERE stream = ? ORDER BY seq",
            (stream,),
        )
        for row in cursor:
            yield Row(*row)

    def hash_at(self, stream: str, seq: int) -> str | None:
        """The stored hash of record ``seq`` of ``stream``, None if there is none.

        Raises :class:`LedgerRangeError` (bad seq) or :class:`StoreError`.
        """
        check_range("seq", seq, 1, MAX_SEQ)
        found = self._db.execute(
            "SELECT hash FROM records WHERE stream = ? AND seq = ?", (stream, seq)
        ).fetchone()
        return None if found is None else str(found[0])

    # -- the keyed chain's marker and the records from before it ------------------------

    def marker(self) -> ChainMarker | None:
        """The keyed chain's marker, None for a database written before chains were keyed.

        Raises :class:`StoreError` if it cannot be read or is incomplete.
        """
        meta = dict(self._db.execute("SELECT name, value FROM chain_meta").fetchall())
        if not meta:
            return None
        if "rule" not in meta or "key_id" not in meta:
            raise StoreError(self.path, "the chain marker (table chain_meta) is incomplete")
        return ChainMarker(meta["rule"], meta["key_id"])

    def chain_ends(self) -> dict[str, Head]:
        """Each stream's last stored record (highest seq), read from the records themselves."""
        if self._db.dialect == "postgresql":
            rows = self._db.execute(
                "SELECT DISTINCT ON (stream) stream, seq, hash FROM records"
                " ORDER BY stream, seq DESC"
            )
            return {stream: Head(seq, digest) for stream, seq, digest in rows}
        # SQLite takes the bare column `hash` from the row holding MAX(seq).
        rows = self._db.execute("SELECT stream, MAX(seq), hash FROM records GROUP BY stream")
        return {stream: Head(seq, digest) for stream, seq, digest in rows}

    def unkeyed_prefixes(self) -> dict[str, int]:
        """Per stream, the last record written before the chain was keyed."""
        return dict(self._db.execute("SELECT stream, seq FROM unkeyed_prefix").fetchall())

    def mark_keyed(self, key_id: str, unkeyed: dict[str, int]) -> None:
        """Mark the database as keyed by ``key_id``, with the records before it (per stream,
        up to ``unkeyed[stream]``) under the unkeyed rule; one durable transaction.

        Raises :class:`StoreError` (nothing is kept) if it fails.
        """
        try:
            with self._db.transaction() as db:
                # Another replica of a shared database may have marked it first: its marker
                # stays (the caller reads it back and compares the key).
                db.executemany(
                    "INSERT INTO unkeyed_prefix VALUES (?, ?) ON CONFLICT (stream) DO NOTHING",
                    unkeyed.items(),
                )
                db.executemany(
                    "INSERT INTO chain_meta VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                    [("rule", CHAIN_RULE), ("key_id", key_id)],
                )
        except StoreRejected as exc:
            raise StoreError(self.path, f"cannot mark the chain as keyed: {exc.reason}") from exc
