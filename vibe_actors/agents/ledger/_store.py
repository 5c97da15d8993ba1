"""The ledger's store and chain: its tables, canonical encoding, hashing, checks.

Pure helpers (no actor here), so the chain rules are tested on their own:

* a record is ``(stream, seq, ts, data)``; ``data`` is kept as its canonical
  msgpack (maps with sorted keys), so the exact bytes that were hashed are
  the bytes on disk;
* ``hash = HMAC-SHA256(chain key, previous hash bytes + canonical msgpack of
  the record map {data, seq, stream, ts} with sorted keys)``, hex (the chain
  key is derived from the ledger's secret, see
  :mod:`vibe_actors.agents.ledger._keys`); the first record of a stream
  chains to 32 zero bytes;
* records written before the chain was keyed (the ``unkeyed_prefix`` table
  names, per stream, the last of them) keep the old rule, ``sha256(previous
  hash bytes + the same canonical record)``;
* ``streams`` holds each stream's count and head hash, written in the same
  transaction as the rows, so heads load in O(streams) at start;
* ``chain_meta`` marks a database whose chain is keyed (the rule and the
  key's public ``key_id``): a database without it predates keyed chains.

Integers reaching the database are bounded (:data:`MAX_SEQ`): the store
refuses an out-of-range one with :class:`LedgerRangeError` rather than let the
driver raise (SQLite's: ``OverflowError``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from hashlib import sha256
from typing import Any, NamedTuple

import msgspec

from vibe_actors import VibeError
from vibe_actors.agents.ledger._keys import LedgerKey
from vibe_actors.store import Schema, Store, StoreError, StoreRejected

__all__ = [
    "CHAIN_RULE",
    "GENESIS",
    "MAX_SEQ",
    "MAX_STREAM_LENGTH",
    "STREAM_PATTERN",
    "ChainCheck",
    "ChainMarker",
    "Head",
    "LedgerRangeError",
    "LedgerStore",
    "Row",
    "check_data",
    "check_range",
    "check_stream",
    "encode_data",
    "record_hash",
    "verify_rows",
]

#: What the first record of a stream chains to.
GENESIS = bytes(32)
#: The largest integer the database stores (SQLite's INTEGER, PostgreSQL's bigint): the bound of every seq, count and limit.
MAX_SEQ = 2**63 - 1
#: The chain rule of records written by this version (kept in ``chain_meta``).
CHAIN_RULE = "hmac-sha256/1"
MAX_STREAM_LENGTH = 128
STREAM_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"
_STREAM_RE = re.compile(STREAM_PATTERN)
#: Nesting deeper than this is refused (a bound on work, and no RecursionError).
_MAX_DEPTH = 64
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what msgpack can carry

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


class LedgerRangeError(VibeError):
    """An integer handed to the store is outside what it accepts (``field`` names it).

    Raised before any SQL runs, so nothing is read or written.
    """

    def __init__(self, field: str, low: int, high: int) -> None:
        super().__init__(f"{field} must be an integer from {low} to {high}")
        self.field = field


def check_range(field: str, value: Any, low: int, high: int) -> None:
    """Raise :class:`LedgerRangeError` unless ``value`` is an int (not a bool) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise LedgerRangeError(field, low, high)


class Head(NamedTuple):
    """A stream's last sequence number (= its record count) and hash."""

    seq: int
    hash: str


class Row(NamedTuple):
    """One stored record; ``data`` is canonical msgpack."""

    stream: str
    seq: int
    ts: float
    data: bytes
    hash: str


#: What a shared store's commit asks the ledger, under the streams' locks: given the heads
#: stored now, the rows and heads to write (re-numbered and re-chained if another replica
#: appended since the batch was made).
Rechain = Callable[[dict[str, Head]], tuple[list[Row], dict[str, Head]]]


class ChainCheck(NamedTuple):
    """What :func:`verify_rows` found: ``broken_at`` is the first bad seq, else None;
    ``reason`` says what is wrong (None when ``ok``)."""

    ok: bool
    # Shadows tuple.count, which a NamedTuple field may do at runtime; mypy cannot tell a
    # field from the method it hides. The name is kept: replies and callers use it.
    count: int  # type: ignore[assignment]
    head: str | None
    broken_at: int | None
    reason: str | None = None


class ChainMarker(NamedTuple):
    """A keyed database's ``chain_meta``: its chain rule and the key's public id."""

    rule: str
    key_id: str


# -- the canonical form -------------------------------------------------------------


class _Canonical(msgspec.Struct):
    """The hashed record map; fields in sorted order, so it encodes like ``order="sorted"``."""

    data: msgspec.Raw
    seq: int
    stream: str
    ts: float


_data_encoder = msgspec.msgpack.Encoder(order="sorted")
_record_encoder = msgspec.msgpack.Encoder()


def encode_data(data: Any) -> bytes:
    """The canonical msgpack of a JSON-like value (check it with :func:`check_data` first)."""
    return _data_encoder.encode(data)


def record_hash(
    previous: str | None, stream: str, seq: int, ts: float, data: bytes, key: LedgerKey | None
) -> str:
    """The hex hash chaining a record (``data`` canonical msgpack) to ``previous``:
    HMAC-SHA256 with ``key``'s chain key, or (``key`` None) the unkeyed sha256 of
    records written before the chain was keyed."""
    record = _record_encoder.encode(_Canonical(msgspec.Raw(data), seq, stream, ts))
    chained = (GENESIS if previous is None else bytes.fromhex(previous)) + record
    if key is None:
        return sha256(chained).hexdigest()
    return key.chain_mac(chained)


def check_stream(stream: Any) -> str | None:
    """Why ``stream`` is not a valid stream name, or None."""
    if not isinstance(stream, str) or not stream:
        return "must be a non-empty string"
    if len(stream) > MAX_STREAM_LENGTH:
        return f"must be at most {MAX_STREAM_LENGTH} characters"
    if not _STREAM_RE.match(stream):
        return "may hold letters, digits and . _ : / - only, starting with a letter or digit"
    return None


def check_data(value: Any, path: str = "data", depth: int = 0) -> tuple[str, str] | None:
    """``(field path, why)`` for the first part of ``value`` that is not JSON-like, or None.

    JSON-like: None, bool, int (64-bit), finite float, str, list/tuple of
    JSON-like, dict with str keys and JSON-like values. Anything else would
    not survive msgpack and JSON alike (bytes, NaN, int keys, sets...).
    """
    if depth > _MAX_DEPTH:
        return path, f"nests deeper than {_MAX_DEPTH} levels"
    if value is None or isinstance(value, (bool, str)):
        return None
    if isinstance(value, int):
        return None if _INT_MIN <= value <= _INT_MAX else (path, "integer out of 64-bit range")
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, "must be a finite number")
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            problem = check_data(item, f"{path}[{index}]", depth + 1)
            if problem is not None:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return path, f"object keys must be strings, got {type(key).__name__}"
            problem = check_data(item, f"{path}.{key}", depth + 1)
            if problem is not None:
                return problem
        return None
    return path, f"{type(value).__name__} is not a JSON value"


def verify_rows(
    rows: Iterator[Row],
    key: LedgerKey,
    *,
    expected: Head | None = None,
    anchor: Head | None = None,
    unkeyed_until: int = 0,
) -> ChainCheck:
    """Recompute a stream's chain from its rows (in seq order).

    Records up to ``unkeyed_until`` are checked with the unkeyed rule, later
    ones with ``key``. Broken when a seq is missing or out of order, when a
    stored hash is not the recomputed one, when the chain does not reach
    ``anchor`` (the signed checkpoint: records were removed from the end,
    even with the stored head rewritten) or holds another record at its
    seq, or when it ends elsewhere than ``expected`` (the head this
    incarnation of the ledger committed).
    """
    previous: str | None = None
    count = 0
    for row in rows:
        if row.seq != count + 1:
            return ChainCheck(False, count, previous, count + 1, f"record {count + 1} is missing")
        rule = None if row.seq <= unkeyed_until else key
        if record_hash(previous, row.stream, row.seq, row.ts, row.data, rule) != row.hash:
            return ChainCheck(
                False, count, previous, row.seq, f"record {row.seq} does not match its hash"
            )
        if anchor is not None and row.seq == anchor.seq and row.hash != anchor.hash:
            return ChainCheck(
                False, count, previous, row.seq,
                f"record {row.seq} is not the one the signed checkpoint holds",
            )  # fmt: skip
        previous, count = row.hash, row.seq
    if anchor is not None and count < anchor.seq:
        return ChainCheck(
            False, count, previous, count + 1,
            f"the stream ends at record {count}; the signed checkpoint holds {anchor.seq}",
        )  # fmt: skip
    if expected is not None and (count, previous) != (expected.seq, expected.hash):
        broken_at = count + 1 if count < expected.seq else expected.seq
        return ChainCheck(
            False, count, previous, broken_at,
            f"the stream ends at record {count}; the ledger committed {expected.seq}",
        )  # fmt: skip
    return ChainCheck(True, count, previous, None)


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
