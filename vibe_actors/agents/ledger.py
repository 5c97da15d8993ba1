"""Ledger: append-only, hash-chained streams in one SQLite file.

Each stream is a sequence of records numbered 1, 2, 3... without gaps; each
record carries ``hash = sha256(previous hash + canonical msgpack of {stream,
seq, data, ts})`` (see :mod:`vibe_actors.agents._ledger_store`), so changing,
removing or reordering a stored record breaks the chain, and ``Verify``
finds where.

Durability: an :class:`Appended` reply is sent only after the transaction
holding the record committed (WAL, ``synchronous=FULL``). With group commit
(the default) appends that queue up while the ledger works are batched into
one transaction: each one is deferred, and the batch commits when the
mailbox holds no more messages, when it reaches ``max_batch``, or before any
other message is handled (a Read sees every append that came before it).
Nobody is acknowledged before the commit that holds their record. With
``group_commit=False`` each append is its own transaction.

Failure: if a commit fails, every append of the batch is answered with
:class:`LedgerUnavailable` (503; none of them was stored) and the in-memory
heads are reloaded from the file; if even that fails, the agent crashes on
purpose and the supervisor restarts it. An ask whose deadline passes while
its batch commits may still be stored (its asker cannot tell): re-reading
the stream settles it. A crash for another reason answers the batch not yet
committed with :class:`LedgerUnavailable` too.

Across its own restart nothing is lost: the records are in the file and a new
incarnation loads each stream's head (count and hash) from it, so sequence
numbers continue. A corrupt or truncated file degrades the agent (every
message but Ping gets ``Unavailable`` naming the file); the rest of the
system starts and serves.

Protocol: ``Append`` -> ``Appended``; ``Read`` / ``Tail`` -> ``Records``;
``Verify`` -> ``Verified``; ``Streams`` -> ``StreamList``; bad input ->
:class:`InvalidInput` (422) naming the field.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, ClassVar

import msgspec

from vibe_actors import Agent, Deferred, ErrorReply, Message, handler
from vibe_actors.agents._ledger_metrics import build_metrics
from vibe_actors.agents._ledger_store import (
    MAX_STREAM_LENGTH,
    STREAM_PATTERN,
    Head,
    LedgerStore,
    Row,
    check_data,
    check_stream,
    encode_data,
    record_hash,
    verify_rows,
)
from vibe_actors.agents._metrics import system_metrics
from vibe_actors.agents._sqlite import ClosesStore, StoreError, database_path, degrade_for

__all__ = [
    "MAX_LIMIT",
    "Append",
    "Appended",
    "InvalidInput",
    "Ledger",
    "LedgerConfig",
    "LedgerUnavailable",
    "Read",
    "Record",
    "Records",
    "StreamInfo",
    "StreamList",
    "StreamName",
    "Streams",
    "Tail",
    "Verified",
    "Verify",
]

#: The most records one Read or Tail returns.
MAX_LIMIT = 1000

StreamName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=MAX_STREAM_LENGTH, pattern=STREAM_PATTERN)
]
Limit = Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT)]


class LedgerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of :class:`Ledger`."""

    #: The most appends one transaction holds.
    max_batch: Annotated[int, msgspec.Meta(ge=1)] = 256
    #: Batch concurrent appends into one transaction (False: one transaction each).
    group_commit: bool = True
    #: The largest ``data`` accepted, as canonical msgpack.
    max_record_bytes: Annotated[int, msgspec.Meta(ge=1)] = 1 << 20


# -- messages ---------------------------------------------------------------------------


class Append(Message):
    """Append ``data`` (any JSON value) to ``stream``."""

    stream: StreamName
    data: Any


class Appended(Message):
    """Durably stored as record ``seq`` of ``stream``, chained as ``hash``."""

    stream: str
    seq: int
    hash: str


class Read(Message):
    """Up to ``limit`` records of ``stream`` after seq ``after``, oldest first."""

    stream: StreamName
    after: Annotated[int, msgspec.Meta(ge=0)] = 0
    limit: Limit = 100


class Tail(Message):
    """The last ``limit`` records of ``stream``, oldest first."""

    stream: StreamName
    limit: Limit = 100


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """One stored record; ``ts`` is when the ledger appended it (wall clock, seconds)."""

    seq: int
    data: Any
    hash: str
    ts: float


class Records(Message):
    """Records of ``stream`` in seq order (empty for an unknown stream)."""

    stream: str
    records: list[Record]


class Verify(Message):
    """Recompute the chain of ``stream``."""

    stream: StreamName


class Verified(Message):
    """``ok``: the chain holds; else ``broken_at`` is the first seq that does not.

    ``count`` and ``head`` describe the intact part of the chain.
    """

    stream: str
    ok: bool
    count: int
    head: str | None
    broken_at: int | None = None


class Streams(Message):
    """List every stream."""


class StreamInfo(msgspec.Struct, frozen=True, kw_only=True):
    stream: str
    count: int
    head: str


class StreamList(Message):
    streams: list[StreamInfo]


class InvalidInput(ErrorReply):
    """A field of the request is not acceptable; ``field`` names it (e.g. ``data.items[2]``)."""

    field: str
    http_status: ClassVar[int] = 422


class LedgerUnavailable(ErrorReply):
    """The store failed: the append was not stored (or the read could not be served)."""

    http_status: ClassVar[int] = 503


class _Flush(msgspec.Struct, frozen=True):
    """Commit what is pending (private: sent by the ledger to itself)."""


# -- the agent ---------------------------------------------------------------------------


class Ledger(ClosesStore, Agent[Append | Read | Tail | Verify | Streams]):
    """Append-only hash-chained streams; see the module docstring."""

    Config: ClassVar = LedgerConfig

    def on_start(self) -> None:
        self._metrics = system_metrics(self.system, "ledger", build_metrics)
        self._path = database_path(self.system.config.data_dir, self.name)
        self._store: LedgerStore | None = None
        #: Committed heads, and the heads including the pending batch.
        self._heads: dict[str, Head] = {}
        self._tentative: dict[str, Head] = {}
        self._pending: list[tuple[Row, Deferred | None]] = []
        self._flush_queued = False
        try:
            self._store = LedgerStore(self._path)
            self._heads = self._store.heads()
        except StoreError as exc:
            self._close()
            degrade_for(self, exc)
            return
        self.log.info("ledger_started", path=str(self._path), streams=len(self._heads))

    def on_stop(self) -> None:
        if self._store is not None:
            self._commit()
            self._close()

    def on_failure(self, error: BaseException) -> None:
        self._abandon_pending(f"the ledger crashed before the commit: {type(error).__name__}")
        self._close()

    # -- appends ------------------------------------------------------------------

    @handler
    def append(self, msg: Append) -> Appended | InvalidInput | LedgerUnavailable | None:
        problem = _stream_problem(msg.stream) or _data_problem(msg.data)
        if problem is not None:
            return problem
        data = encode_data(msg.data)
        if len(data) > self.config.max_record_bytes:
            return InvalidInput(
                field="data",
                detail=f"{len(data)} bytes encoded, over the limit of "
                f"{self.config.max_record_bytes}",
            )
        stream = msg.stream
        head = self._tentative.get(stream) or self._heads.get(stream)
        seq = 1 if head is None else head.seq + 1
        ts = time.time()
        digest = record_hash(None if head is None else head.hash, stream, seq, ts, data)
        row = Row(stream, seq, ts, data, digest)
        self._tentative[stream] = Head(seq, digest)
        if not self.config.group_commit:
            self._pending.append((row, None))
            return self._commit() or Appended(stream=stream, seq=seq, hash=digest)
        self._pending.append((row, self.defer()))
        if len(self._pending) >= self.config.max_batch or self.mailbox_size == 0:
            self._commit()
        elif not self._flush_queued:
            # Whatever is queued behind (a Ping, a timer) the batch commits at the latest here.
            self._flush_queued = True
            self.ref(self.name).tell(_Flush())
        return None

    @handler
    def _flush(self, msg: _Flush) -> None:
        self._flush_queued = False
        self._commit()

    def _commit(self) -> LedgerUnavailable | None:
        """Commit the pending batch, then answer it; returns the error if it failed."""
        pending, self._pending = self._pending, []
        tentative, self._tentative = self._tentative, {}
        if not pending:
            return None
        assert self._store is not None
        started = time.perf_counter()
        try:
            self._store.commit([row for row, _ in pending], tentative)
        except StoreError as exc:
            return self._commit_failed(pending, exc)
        metrics = self._metrics
        metrics.commit_seconds.observe(time.perf_counter() - started)
        metrics.batch_size.observe(len(pending))
        metrics.appends.inc(len(pending))
        self._heads.update(tentative)
        for row, deferred in pending:
            if deferred is not None:
                deferred.resolve(Appended(stream=row.stream, seq=row.seq, hash=row.hash))
        return None

    def _commit_failed(
        self, pending: list[tuple[Row, Deferred | None]], exc: StoreError
    ) -> LedgerUnavailable:
        self._metrics.failures.inc()
        self.log.error("ledger_commit_failed", path=exc.path, error=exc.reason, batch=len(pending))
        error = LedgerUnavailable(detail=f"not stored: {exc}")
        for _, deferred in pending:
            if deferred is not None:
                deferred.resolve(error)
        # The heads in memory may no longer match the file: reload them. If the
        # file cannot even be read, this raises and the agent crashes on
        # purpose (the supervisor restarts it; a new incarnation reopens the file).
        assert self._store is not None
        self._heads = self._store.heads()
        return error

    def _abandon_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, []
        self._tentative = {}
        error = LedgerUnavailable(detail=f"not stored: {reason}")
        for _, deferred in pending:
            if deferred is not None:
                deferred.resolve(error)

    # -- reads (each first commits what is pending: a reader sees every earlier append) ----

    @handler
    def read(self, msg: Read) -> Records | InvalidInput | LedgerUnavailable:
        problem = _stream_problem(msg.stream) or _limit_problem(msg.limit)
        if problem is None and msg.after < 0:
            problem = InvalidInput(field="after", detail="must be >= 0")
        if problem is not None:
            return problem
        self._commit()
        assert self._store is not None
        return self._records(msg.stream, self._store.read(msg.stream, msg.after, msg.limit))

    @handler
    def tail(self, msg: Tail) -> Records | InvalidInput | LedgerUnavailable:
        problem = _stream_problem(msg.stream) or _limit_problem(msg.limit)
        if problem is not None:
            return problem
        self._commit()
        assert self._store is not None
        return self._records(msg.stream, self._store.tail(msg.stream, msg.limit))

    def _records(self, stream: str, rows: list[Row]) -> Records | LedgerUnavailable:
        records = []
        for row in rows:
            try:
                data = msgspec.msgpack.decode(row.data)
            except (msgspec.DecodeError, TypeError) as exc:
                self.log.error(
                    "ledger_record_unreadable", stream=stream, seq=row.seq, error=str(exc)
                )
                return LedgerUnavailable(
                    detail=f"record {row.seq} of {stream!r} cannot be decoded (run Verify): {exc}"
                )
            records.append(Record(seq=row.seq, data=data, hash=row.hash, ts=row.ts))
        return Records(stream=stream, records=records)

    @handler
    def verify(self, msg: Verify) -> Verified | InvalidInput:
        problem = _stream_problem(msg.stream)
        if problem is not None:
            return problem
        self._commit()
        assert self._store is not None
        check = verify_rows(self._store.chain(msg.stream), self._heads.get(msg.stream))
        if not check.ok:
            self.log.error("ledger_chain_broken", stream=msg.stream, broken_at=check.broken_at)
        return Verified(
            stream=msg.stream,
            ok=check.ok,
            count=check.count,
            head=check.head,
            broken_at=check.broken_at,
        )

    @handler
    def streams(self, msg: Streams) -> StreamList:
        self._commit()
        return StreamList(
            streams=[
                StreamInfo(stream=name, count=head.seq, head=head.hash)
                for name, head in sorted(self._heads.items())
            ]
        )


def _stream_problem(stream: Any) -> InvalidInput | None:
    why = check_stream(stream)
    return None if why is None else InvalidInput(field="stream", detail=f"stream {why}")


def _data_problem(data: Any) -> InvalidInput | None:
    problem = check_data(data)
    if problem is None:
        return None
    field, why = problem
    return InvalidInput(field=field, detail=f"{field}: {why}")


def _limit_problem(limit: Any) -> InvalidInput | None:
    if isinstance(limit, int) and not isinstance(limit, bool) and 1 <= limit <= MAX_LIMIT:
        return None
    return InvalidInput(field="limit", detail=f"limit must be an integer from 1 to {MAX_LIMIT}")
