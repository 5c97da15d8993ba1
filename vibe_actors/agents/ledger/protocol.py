"""The ledger's protocol and settings (re-exported by :mod:`vibe_actors.agents.ledger`).

Every integer of a request that reaches SQLite is bounded by a msgspec
constraint, so a decoded request (the gateway, a serialized ask) is refused
with a 422 naming the field before the ledger sees it, and the bounds show
in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec

from vibe_actors import ErrorReply, Message
from vibe_actors._messages import namespaced
from vibe_actors.agents.ledger._chain import (
    MAX_SEQ,
    MAX_STREAM_LENGTH,
    STREAM_PATTERN,
    check_data,
    check_stream,
)

__all__ = [
    "MAX_LIMIT",
    "Append",
    "Appended",
    "InvalidInput",
    "LedgerConfig",
    "LedgerUnavailable",
    "Read",
    "Record",
    "Records",
    "StreamHeld",
    "StreamInfo",
    "StreamList",
    "StreamName",
    "Streams",
    "Tail",
    "TooManyStreams",
    "Verified",
    "Verify",
    "after_problem",
    "data_problem",
    "limit_problem",
    "stream_problem",
]


_tag = namespaced("ledger")


class _Message(Message, tag=_tag):
    """Base of the ledger agent's messages: tagged ``ledger.<ClassName>`` on the wire,
    named by the class name over HTTP."""


class _ErrorReply(ErrorReply, tag=_tag):
    """Base of the ledger agent's error replies, tagged like its messages."""


#: The most records one Read or Tail returns.
MAX_LIMIT = 1000

StreamName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=MAX_STREAM_LENGTH, pattern=STREAM_PATTERN)
]
Limit = Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT)]
#: A sequence number as a request may give it: SQLite's INTEGER range, from 0.
Seq = Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]


class LedgerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of :class:`~vibe_actors.agents.ledger.Ledger`."""

    #: The most appends one transaction holds.
    max_batch: Annotated[int, msgspec.Meta(ge=1)] = 256
    #: Batch concurrent appends into one transaction (False: one transaction each).
    group_commit: bool = True
    #: The largest ``data`` accepted, as canonical msgpack.
    max_record_bytes: Annotated[int, msgspec.Meta(ge=1)] = 1 << 20
    #: The file holding the chain's secret key, relative to the data directory unless
    #: absolute (default ``keys/<ledger name>.key``); made, owner-only, if absent on the
    #: first start. Back it up: without it the records cannot be verified.
    key_file: str | None = None
    #: The signed checkpoint file, relative to the data directory unless absolute
    #: (default ``<ledger name>.checkpoints``). Back it up with the database.
    checkpoint_file: str | None = None
    #: Streams held at most: the first ``Append`` of a new stream past it is
    #: ``TooManyStreams`` (429); existing streams take appends as before. Keep it below
    #: what the checkpoint file can name: it is refused unread past 256 MiB, about 1.1
    #: million streams of 128-character names.
    max_streams: Annotated[int, msgspec.Meta(ge=1)] = 1_000_000

    def __post_init__(self) -> None:
        if self.max_streams < 1:
            raise ValueError(f"max_streams must be >= 1, got {self.max_streams}")


# -- messages ---------------------------------------------------------------------------


class Append(_Message):
    """Append ``data`` (any JSON value) to ``stream``."""

    stream: StreamName
    data: Any


class Appended(_Message):
    """Durably stored as record ``seq`` of ``stream``, chained as ``hash``."""

    stream: str
    seq: int
    hash: str


class Read(_Message):
    """Up to ``limit`` records of ``stream`` after seq ``after``, oldest first."""

    stream: StreamName
    after: Seq = 0
    limit: Limit = 100


class Tail(_Message):
    """The last ``limit`` records of ``stream``, oldest first."""

    stream: StreamName
    limit: Limit = 100


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """One stored record; ``ts`` is when the ledger appended it (wall clock, seconds)."""

    seq: int
    data: Any
    hash: str
    ts: float


class Records(_Message):
    """Records of ``stream`` in seq order (empty for an unknown stream)."""

    stream: str
    records: list[Record]


class Verify(_Message):
    """Recompute the chain of ``stream`` with the key, and check it against the
    signed checkpoint."""

    stream: StreamName


class Verified(_Message):
    """``ok``: the chain holds; else ``broken_at`` is the first seq that does not
    (None when no record is to blame, e.g. the checkpoint file is missing) and
    ``reason`` says what is wrong.

    ``count`` and ``head`` describe the intact part of the chain.
    """

    stream: str
    ok: bool
    count: int
    head: str | None
    broken_at: int | None = None
    reason: str | None = None


class Streams(_Message):
    """List every stream."""


class StreamInfo(msgspec.Struct, frozen=True, kw_only=True):
    stream: str
    count: int
    head: str


class StreamList(_Message):
    streams: list[StreamInfo]


class InvalidInput(_ErrorReply):
    """A field of the request is not acceptable; ``field`` names it (e.g. ``data.items[2]``)."""

    field: str
    http_status: ClassVar[int] = 422


class LedgerUnavailable(_ErrorReply):
    """The store failed: the append was not stored (or the read could not be served)."""

    http_status: ClassVar[int] = 503


class TooManyStreams(_ErrorReply):
    """Not stored: the append would start a new stream while ``limit`` streams are held
    (a stream is never removed, so no new one fits until ``max_streams`` is raised)."""

    limit: int
    http_status: ClassVar[int] = 429


class StreamHeld(_ErrorReply):
    """Not stored: the stream's records no longer reach its signed checkpoint (removed or
    replaced), and an append would paper over it. ``Verify`` says where."""

    http_status: ClassVar[int] = 409


# -- checks of a request that reached the handler undecoded (an in-process ask) -----------


def stream_problem(stream: Any) -> InvalidInput | None:
    why = check_stream(stream)
    return None if why is None else InvalidInput(field="stream", detail=f"stream {why}")


def data_problem(data: Any) -> InvalidInput | None:
    problem = check_data(data)
    if problem is None:
        return None
    field, why = problem
    return InvalidInput(field=field, detail=f"{field}: {why}")


def after_problem(after: Any) -> InvalidInput | None:
    if isinstance(after, int) and not isinstance(after, bool) and 0 <= after <= MAX_SEQ:
        return None
    return InvalidInput(field="after", detail=f"after must be an integer from 0 to {MAX_SEQ}")


def limit_problem(limit: Any) -> InvalidInput | None:
    if isinstance(limit, int) and not isinstance(limit, bool) and 1 <= limit <= MAX_LIMIT:
        return None
    return InvalidInput(field="limit", detail=f"limit must be an integer from 1 to {MAX_LIMIT}")
