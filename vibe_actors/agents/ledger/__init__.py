"""Ledger: append-only, keyed hash-chained streams in one SQLite file (or a PostgreSQL
database shared by replicas).

Each stream is a sequence of records numbered 1, 2, 3... without gaps; each
record carries ``hash = HMAC-SHA256(key, previous hash + canonical msgpack of
{stream, seq, data, ts})`` (see :mod:`vibe_actors.agents.ledger._chain`), so
changing, removing or reordering a stored record breaks the chain, and
``Verify`` finds where.

Tamper evidence. The chain's secret key lives in its own file, ``key_file``
(default ``<data_dir>/keys/<ledger name>.key``: hex, mode 0600 in a 0700
directory), made from :func:`secrets.token_bytes` at the first start when
absent; it is never logged nor put in a reply (only its public ``key_id``).
Without the key the chain cannot be recomputed. After each durable commit
the ledger rewrites ``checkpoint_file`` (default ``<data_dir>/<ledger
name>.checkpoints``, see :mod:`vibe_actors.agents.ledger._checkpoints`):
every stream's last seq and hash, signed with the key. ``Verify`` recomputes
the chain with the key and checks that the stream still reaches its
checkpointed record with the checkpointed hash. So records removed from the
end (even with the stored head rewritten), records rewritten under a
recomputed unkeyed chain or another key, and a forged or altered checkpoint
are all found. After a crash the checkpoint may lag the database (the
records past it verify by their chain); it is never ahead of it. Not found:
tampering by someone holding the key; the database and the checkpoint file
both put back to an older copy of themselves; all of them (database,
checkpoint, key) removed at once, which looks like a new ledger.

At start: a key file missing while the database is keyed, or holding
another key than the records' (the ``key_id`` kept in the database), degrades
the agent (every message but Ping gets ``Unavailable`` naming the key file).
A checkpoint file missing or failing its signature does not: the ledger
serves, every ``Verify`` answers ``ok=False`` with the ``reason``, and the file
is left as found (restore it from its backup). A stream whose stored
records fall short of its checkpoint is held: appends to it get
:class:`StreamHeld` (409), since new records would cover the gap.

Upgrade from unkeyed ledgers. A database without the keyed marker (table
``chain_meta``), written by an earlier version, is adopted at its first
start: each stream's records so far stay under the old rule (``sha256``
without a key) up to a per-stream boundary, kept in the database and signed
into a first checkpoint that pins their last hash; every later record is
keyed. The adoption logs ``ledger_unkeyed_records_adopted`` once. A database
with neither marker nor checkpoint looks the same whether it predates keys
or was stripped of them: that warning outside an upgrade means tampering.
A database without the marker but with a checkpoint file it does not match
degrades the agent (the database was replaced).

Durability: an :class:`Appended` reply is sent only after the transaction
holding the record committed (WAL, ``synchronous=FULL``). With group commit
(the default) appends that queue up while the ledger works are batched into
one transaction: each one is deferred, and the batch commits when the
mailbox holds no more messages, when it reaches ``max_batch``, or before any
other message is handled (a Read sees every append that came before it).
Nobody is acknowledged before the commit that holds their record. With
``group_commit=False`` each append is its own transaction. Each commit's
heads go to the checkpoint once its replies are sent; a writer thread
writes the newest while the next batch commits (at most one write per
commit). A failed write is logged and counted
(``vibe_ledger_checkpoint_failures_total``) and the next commit's is tried;
a stopping or crashing incarnation writes the last committed heads first.

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

Shared store (``store: postgresql://...``): every replica's ledger of this
name appends to the same streams. A commit locks its batch's streams (an
advisory lock per stream, in stream order) and reads their stored heads; if
another replica appended since the batch was made, the batch's records are
re-numbered and re-hashed onto the stored heads before they are written
(``vibe_ledger_rechained_batches_total``), and each acknowledgement names the
seq and hash committed. So seqs stay gapless and the chain unbroken across
replicas, and group commit is kept. The chain key must be the same file on
every replica (``key_file`` pointing at a mounted secret): a replica holding
another key is degraded naming it, as above. Each replica keeps its own
signed checkpoint (in its own data directory) of what it committed: a
replica new to the database starts one (``ledger_checkpoint_started``)
instead of failing Verify, which also means a checkpoint file deleted from a
replica goes unnoticed there. ``Streams`` and ``Verify`` read the heads other
replicas committed first; ``max_streams`` counts the streams this replica
knows (it may be exceeded by the new streams of the others). A read that
fails for want of the database is answered :class:`LedgerUnavailable` (503).

Streams: at most ``max_streams`` (committed or in the pending batch; a restart
counts them from the file). A new stream's first ``Append`` past it is
:class:`TooManyStreams` (429); appends to existing streams go on.

Protocol: ``Append`` -> ``Appended``; ``Read`` / ``Tail`` -> ``Records``;
``Verify`` -> ``Verified``; ``Streams`` -> ``StreamList``; bad input ->
:class:`InvalidInput` (422) naming the field (every integer is bounded, up to
``2**63 - 1``, by the message's schema and again by the store).
"""

# Past ~400 lines only by the docstring above: it is the agent's whole contract (its
# reference page), and the code it describes is about 300 lines.

from __future__ import annotations

import time
from typing import ClassVar

import msgspec

from vibe_actors import Agent, handler
from vibe_actors.agents.ledger._chain import (
    Head,
    LedgerRangeError,
    Row,
    encode_data,
    record_hash,
)
from vibe_actors.agents.ledger._checkpoints import (
    CheckpointError,
    CheckpointWriter,
    checkpoint_path,
)
from vibe_actors.agents.ledger._integrity import ChainState, open_chain
from vibe_actors.agents.ledger._keys import key_path
from vibe_actors.agents.ledger._metrics import build_metrics
from vibe_actors.agents.ledger._records import records, verified
from vibe_actors.agents.ledger._store import LedgerStore
from vibe_actors.agents.ledger.protocol import (
    MAX_LIMIT,
    Append,
    Appended,
    InvalidInput,
    LedgerConfig,
    LedgerUnavailable,
    Read,
    Record,
    Records,
    StreamHeld,
    StreamInfo,
    StreamList,
    StreamName,
    Streams,
    Tail,
    TooManyStreams,
    Verified,
    Verify,
    after_problem,
    data_problem,
    limit_problem,
    stream_problem,
)
from vibe_actors.store import (
    BatchNotCommitted,
    ClosesStore,
    GroupCommit,
    StoreError,
    StoreRejected,
    degrade_for,
    open_store,
)

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
    "StreamHeld",
    "StreamInfo",
    "StreamList",
    "StreamName",
    "Streams",
    "Tail",
    "TooManyStreams",
    "Verified",
    "Verify",
]

#: How long a stopping ledger waits for its last checkpoint write, seconds.
CHECKPOINT_CLOSE_TIMEOUT = 5.0


class _Flush(msgspec.Struct, frozen=True):
    """Commit what is pending (private: sent by the ledger to itself)."""


class _Pending:
    """An append waiting for its batch's commit: its row, re-numbered and re-chained by the
    commit if another replica appended to its stream first (a shared store)."""

    __slots__ = ("row",)

    def __init__(self, row: Row) -> None:
        self.row = row


# -- the agent ---------------------------------------------------------------------------


class Ledger(ClosesStore, Agent[Append | Read | Tail | Verify | Streams]):
    """Append-only hash-chained streams; see the module docstring."""

    Config: ClassVar = LedgerConfig

    def on_start(self) -> None:
        self._metrics = self.system.shared_metrics("ledger", build_metrics)
        data_dir, config = self.system.config.data_dir, self.config
        self._store: LedgerStore | None = None
        #: Committed heads, and the heads including the pending batch.
        self._heads: dict[str, Head] = {}
        self._tentative: dict[str, Head] = {}
        #: The appends waiting for their batch's commit (group commit).
        self._batch: GroupCommit[_Pending] = GroupCommit(_appended, self._commit_failed)
        self._flush_queued = False
        self._checkpoints = CheckpointWriter(
            checkpoint_path(data_dir, self.name, config.checkpoint_file),
            f"vibe:{self.name}:checkpoints",
            on_error=self._checkpoint_failed,
            on_written=self._metrics.checkpoint_seconds.observe,
        )
        try:
            self._store = open_store(LedgerStore, self)
            self._heads = self._store.heads()
            self._chain: ChainState = open_chain(
                self._store,
                self._heads,
                key_path(data_dir, self.name, config.key_file),
                self._checkpoints,
                self.log,
            )
        except StoreError as exc:
            self._close()
            degrade_for(self, exc)
            return
        self._streams_gauge = self._metrics.streams.labels(agent=self.name)
        self._streams_gauge.set(len(self._heads))
        self.log.info(
            "ledger_started",
            path=self._store.path,
            streams=len(self._heads),
            key_id=self._chain.key.key_id,
        )

    def on_stop(self) -> None:
        if self._store is not None:
            self._commit()
        self._stop_checkpoints()
        self._close()

    def on_failure(self, error: BaseException) -> None:
        self._abandon_pending(f"the ledger crashed before the commit: {type(error).__name__}")
        self._stop_checkpoints()  # what was committed still gets its checkpoint
        self._close()

    def _stop_checkpoints(self) -> None:
        checkpoints: CheckpointWriter | None = getattr(self, "_checkpoints", None)
        if checkpoints is not None and not checkpoints.close(timeout=CHECKPOINT_CLOSE_TIMEOUT):
            self.log.error("ledger_checkpoint_writer_stuck", path=str(checkpoints.path))

    # -- appends ------------------------------------------------------------------

    @handler
    def append(
        self, msg: Append
    ) -> Appended | InvalidInput | LedgerUnavailable | StreamHeld | TooManyStreams | None:
        problem = stream_problem(msg.stream) or data_problem(msg.data)
        if problem is not None:
            return problem
        held = self._chain.held.get(msg.stream)
        if held is not None:
            return StreamHeld(detail=f"not stored: stream {msg.stream!r} fails Verify ({held})")
        data = encode_data(msg.data)
        if len(data) > self.config.max_record_bytes:
            return InvalidInput(
                field="data",
                detail=f"{len(data)} bytes encoded, over the limit of "
                f"{self.config.max_record_bytes}",
            )
        stream = msg.stream
        head = self._tentative.get(stream) or self._heads.get(stream)
        if head is None and (full := self._full(stream)) is not None:
            return full
        seq = 1 if head is None else head.seq + 1
        ts = time.time()
        previous = None if head is None else head.hash
        digest = record_hash(previous, stream, seq, ts, data, self._chain.key)
        pending = _Pending(Row(stream, seq, ts, data, digest))
        self._tentative[stream] = Head(seq, digest)
        if not self.config.group_commit:
            self._batch.submit(pending)
            return self._commit() or _appended(pending)
        self._batch.submit(pending, self.defer())
        if len(self._batch) >= self.config.max_batch or self.mailbox_size == 0:
            self._commit()
        elif not self._flush_queued:
            # Whatever is queued behind (a Ping, a timer) the batch commits at the latest here.
            self._flush_queued = True
            self.ref(self.name).tell(_Flush())
        return None

    def _full(self, stream: str) -> TooManyStreams | None:
        """The refusal of new ``stream`` if ``max_streams`` are held, committed or pending."""
        # The batch is at most max_batch appends: counting its new streams is cheap.
        held = len(self._heads) + sum(1 for s in self._tentative if s not in self._heads)
        if held < (limit := self.config.max_streams):
            return None
        self._metrics.refused.labels(agent=self.name).inc()
        env = self.envelope
        self.log.warning(
            "ledger_limit_reached", stream=stream, limit="max_streams", held=held,
            request_id=env.request_id if env is not None else None,
        )  # fmt: skip
        return TooManyStreams(limit=limit, detail=f"not stored: {limit} streams are held already")

    @handler
    def _flush(self, msg: _Flush) -> None:
        self._flush_queued = False
        self._commit()

    def _commit(self) -> LedgerUnavailable | None:
        """Commit the pending batch, then answer it; returns the error if it failed."""
        tentative, self._tentative = self._tentative, {}
        if not self._batch:
            return None
        committed = tentative

        def transaction(batch: list[_Pending]) -> None:
            nonlocal committed
            committed = self._write(batch, tentative)

        try:
            self._batch.commit(transaction)
        except BatchNotCommitted as failed:
            assert self._store is not None
            if not self._store.shared:
                # The heads in memory may no longer match the file: reload them. If the
                # file cannot even be read, this raises and the agent crashes on
                # purpose (the supervisor restarts it; a new incarnation reopens the file).
                # A shared store needs none: each commit reads the stored heads it builds on.
                self._heads = self._store.heads()
                self._streams_gauge.set(len(self._heads))
            reply: LedgerUnavailable = failed.reply
            return reply
        self._checkpoint(committed)
        return None

    def _write(self, batch: list[_Pending], heads: dict[str, Head]) -> dict[str, Head]:
        """A batch's transaction, then what its commit changes here (before any reply);
        returns the heads committed."""
        assert self._store is not None
        started = time.perf_counter()
        rows = [pending.row for pending in batch]
        heads = self._store.commit(rows, heads, lambda stored: self._rechain(batch, stored))
        metrics = self._metrics
        metrics.commit_seconds.observe(time.perf_counter() - started)
        metrics.batch_size.observe(len(rows))
        metrics.appends.inc(len(rows))
        self._heads.update(heads)
        self._streams_gauge.set(len(self._heads))
        return heads

    def _rechain(
        self, batch: list[_Pending], stored: dict[str, Head]
    ) -> tuple[list[Row], dict[str, Head]]:
        """The batch's rows and heads on top of ``stored`` (the heads in the database now,
        under the streams' locks): as made if no other replica appended meanwhile, else
        re-numbered and re-hashed from the stored heads (each pending row updated, so its
        reply names the seq and hash committed)."""
        streams = {pending.row.stream for pending in batch}
        if all(stored.get(stream) == self._heads.get(stream) for stream in streams):
            heads = {}
            for pending in batch:
                heads[pending.row.stream] = Head(pending.row.seq, pending.row.hash)
            return [pending.row for pending in batch], heads
        self._metrics.rechained.inc()
        heads = dict(stored)
        key = self._chain.key
        for pending in batch:
            row = pending.row
            base = heads.get(row.stream)
            seq = 1 if base is None else base.seq + 1
            previous = None if base is None else base.hash
            digest = record_hash(previous, row.stream, seq, row.ts, row.data, key)
            pending.row = Row(row.stream, seq, row.ts, row.data, digest)
            heads[row.stream] = Head(seq, digest)
        return [pending.row for pending in batch], {s: heads[s] for s in streams}

    def _checkpoint(self, committed: dict[str, Head]) -> None:
        """Hand the durably committed heads to the checkpoint writer (once per commit)."""
        chain = self._chain
        if chain.problem is not None:
            return  # the untrusted file stays as found: rewriting it would hide what happened
        chain.advance(committed)
        self._checkpoints.submit(chain.key, dict(chain.anchors))

    def _checkpoint_failed(self, error: CheckpointError) -> None:
        # In the writer's thread. The records are stored and acknowledged; the file lags
        # until the next write succeeds.
        self._metrics.checkpoint_failures.inc()
        self.log.error("ledger_checkpoint_write_failed", path=error.path, error=error.reason)

    def _commit_failed(
        self, exc: StoreError | StoreRejected, rows: list[_Pending]
    ) -> LedgerUnavailable:
        """The reply of every append of a batch whose commit failed (logged and counted)."""
        self._metrics.failures.inc()
        self.log.error("ledger_commit_failed", path=exc.path, error=exc.reason, batch=len(rows))
        return LedgerUnavailable(detail=f"not stored: {exc}")

    def _abandon_pending(self, reason: str) -> None:
        self._tentative = {}
        batch: GroupCommit[_Pending] | None = getattr(self, "_batch", None)
        if batch is not None:
            batch.abandon(LedgerUnavailable(detail=f"not stored: {reason}"))

    # -- reads (each first commits what is pending: a reader sees every earlier append) ----

    @handler
    def read(self, msg: Read) -> Records | InvalidInput | LedgerUnavailable:
        problem = stream_problem(msg.stream) or limit_problem(msg.limit) or after_problem(msg.after)
        if problem is not None:
            return problem
        self._commit()
        assert self._store is not None
        try:
            rows = self._store.read(msg.stream, msg.after, msg.limit)
        except LedgerRangeError as exc:  # the store's own bound, should the checks above miss
            return InvalidInput(field=exc.field, detail=str(exc))
        except StoreError as exc:
            return self._read_failed(exc)
        return records(msg.stream, rows, self.log)

    @handler
    def tail(self, msg: Tail) -> Records | InvalidInput | LedgerUnavailable:
        problem = stream_problem(msg.stream) or limit_problem(msg.limit)
        if problem is not None:
            return problem
        self._commit()
        assert self._store is not None
        try:
            return records(msg.stream, self._store.tail(msg.stream, msg.limit), self.log)
        except StoreError as exc:
            return self._read_failed(exc)

    @handler
    def verify(self, msg: Verify) -> Verified | InvalidInput | LedgerUnavailable:
        problem = stream_problem(msg.stream)
        if problem is not None:
            return problem
        self._commit()
        assert self._store is not None
        try:
            self._catch_up()
            expected = self._heads.get(msg.stream)
            return verified(self._store, self._chain, msg.stream, expected, self.log)
        except StoreError as exc:
            return self._read_failed(exc)

    @handler
    def streams(self, msg: Streams) -> StreamList | LedgerUnavailable:
        self._commit()
        try:
            self._catch_up()
        except StoreError as exc:
            return self._read_failed(exc)
        return StreamList(
            streams=[
                StreamInfo(stream=name, count=head.seq, head=head.hash)
                for name, head in sorted(self._heads.items())
            ]
        )

    def _catch_up(self) -> None:
        """On a shared store, take the heads other replicas committed (never one behind
        what this replica committed: a stored head that went back is for Verify to find)."""
        assert self._store is not None
        if not self._store.shared:
            return
        heads = self._heads
        for stream, head in self._store.heads().items():
            known = heads.get(stream)
            if known is None or head.seq > known.seq:
                heads[stream] = head
        self._streams_gauge.set(len(heads))

    def _read_failed(self, exc: StoreError) -> LedgerUnavailable:
        self.log.error("ledger_read_failed", path=exc.path, error=exc.reason)
        return LedgerUnavailable(detail=f"cannot read: {exc}")


def _appended(pending: _Pending) -> Appended:
    """The reply to an append whose record committed."""
    row = pending.row
    return Appended(stream=row.stream, seq=row.seq, hash=row.hash)
