"""The ledger's chain: the canonical form of a record, its hash, and the checks of input.

Pure helpers (no actor, no database), so the chain rules are tested on their own:

* a record is ``(stream, seq, ts, data)``; ``data`` is kept as its canonical
  msgpack (maps with sorted keys), so the exact bytes that were hashed are
  the bytes on disk;
* ``hash = HMAC-SHA256(chain key, previous hash bytes + canonical msgpack of
  the record map {data, seq, stream, ts} with sorted keys)``, hex (the chain
  key is derived from the ledger's secret, see
  :mod:`vibe_actors.agents.ledger._keys`); the first record of a stream
  chains to 32 zero bytes;
* records written before the chain was keyed keep the old rule,
  ``sha256(previous hash bytes + the same canonical record)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from hashlib import sha256
from typing import Any, NamedTuple

import msgspec

from vibe_actors import VibeError
from vibe_actors.agents.ledger._keys import LedgerKey

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
