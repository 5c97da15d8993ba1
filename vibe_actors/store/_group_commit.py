"""Group commit: many writes, one durable transaction, each acknowledged once it committed.

A durable agent that acknowledges a write only once it is on disk pays one
commit (an fsync) per write. Group commit batches the writes that queue up
while it works into one transaction, so a burst of requests costs one commit:
the ledger's appends, the jobs' submissions (and the durable entities' writes
to come). :class:`GroupCommit` is that batch and its bookkeeping; the agent
keeps the decisions that are its own: when to commit (a message it tells
itself, a batch size, an empty mailbox; before a read, so that the read sees
every write acknowledged before it) and what the transaction writes.

Threads: the owner uses it from its own thread only (the agent's, the one that
owns the store): it submits each write with the acknowledgement its caller
waits on (the :class:`~vibe_actors.Deferred` of its ask), and the
acknowledgement is resolved in that thread after the batch's transaction
committed. It holds no lock and starts no thread.

Failure: a transaction that raises :class:`StoreError` (the storage: a full
disk, an I/O error) or :class:`StoreRejected` (the store refused a write)
keeps nothing of the batch, and every write of it is answered with the one
typed error reply the owner makes for the batch (``refuse``, called first:
the owner logs, counts and impairs itself there, before anyone hears of it);
then :meth:`GroupCommit.commit` raises :class:`BatchNotCommitted`, so the
owner can do what follows (reload what it holds in memory). Any other
exception propagates as it is and leaves the batch pending, unanswered: the
owner answers it with :meth:`GroupCommit.abandon` when its incarnation ends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from vibe_actors import VibeError, _tracing
from vibe_actors.store._database import StoreError, StoreRejected

__all__ = ["Acknowledgement", "BatchNotCommitted", "GroupCommit"]

W = TypeVar("W")


class Acknowledgement(Protocol):
    """What a write's caller waits on: resolved once with the write's reply."""

    def resolve(self, reply: Any) -> None: ...


class BatchNotCommitted(VibeError, Generic[W]):
    """The transaction of a batch failed: nothing of it was kept.

    Raised by :meth:`GroupCommit.commit` after every write of the batch was
    answered ``reply``. ``error`` is the store's typed error (its ``__cause__``
    too), ``writes`` the batch, in the order they were submitted.
    """

    def __init__(self, error: StoreError | StoreRejected, writes: list[W], reply: Any) -> None:
        super().__init__(f"a batch of {len(writes)} writes was not committed: {error}")
        self.error = error
        self.writes = writes
        self.reply = reply


class GroupCommit(Generic[W]):
    """The writes waiting for their batch's commit, and how each one is answered.

    ``acknowledge(write)`` is a committed write's reply; ``refuse(error,
    writes)`` is the reply of every write of a batch whose transaction failed
    (called once per failed batch, before any of them is answered: log and
    count there). Use from the owner's thread only.
    """

    def __init__(
        self,
        acknowledge: Callable[[W], Any],
        refuse: Callable[[StoreError | StoreRejected, list[W]], Any],
    ) -> None:
        self._acknowledge = acknowledge
        self._refuse = refuse
        self._writes: list[W] = []
        self._acks: list[Acknowledgement | None] = []
        #: The spans of the writes of the batch (tracing on): its commit span links them.
        self._traces: list[Any] = []

    def __len__(self) -> int:
        """The writes waiting for the next commit."""
        return len(self._writes)

    @property
    def pending(self) -> Sequence[W]:
        """The writes waiting for the next commit, in the order they were submitted."""
        return self._writes

    def submit(self, write: W, ack: Acknowledgement | None = None) -> bool:
        """Add ``write`` to the batch; ``ack`` (None: nobody waits) is answered at its commit.

        Returns True when ``write`` opened a new batch (the owner then arranges a commit).
        """
        self._writes.append(write)
        self._acks.append(ack)
        if _tracing.ON and (context := _tracing.current_context()) is not None:
            self._traces.append(context)
        return len(self._writes) == 1

    def commit(self, transaction: Callable[[list[W]], None]) -> list[W]:
        """Write the batch with ``transaction`` (one durable transaction), then answer it.

        Returns the writes committed, each answered ``acknowledge(write)`` ([] if
        none was pending). The batch is empty afterwards unless an unforeseen exception ends it. If
        ``transaction`` raises :class:`StoreError` or :class:`StoreRejected`,
        every write is answered ``refuse(error, writes)`` and
        :class:`BatchNotCommitted` is raised; any other exception propagates
        and leaves the writes pending, unanswered (see :meth:`abandon`).
        """
        writes, acks, traces = self._writes, self._acks, self._traces
        self._writes, self._acks, self._traces = [], [], []
        if not writes:
            return writes
        try:
            if _tracing.ON:  # a child of the committing message's span, linked to each writer's
                with _tracing.span(
                    "store group commit", {"vibe.store.writes": len(writes)}, traces
                ):
                    transaction(writes)
            else:
                transaction(writes)
        except (StoreError, StoreRejected) as exc:
            reply = self._refuse(exc, writes)
            for ack in acks:
                if ack is not None:
                    ack.resolve(reply)
            raise BatchNotCommitted(exc, writes, reply) from exc
        except BaseException:
            # Not the store's refusal: a bug, or an interrupt. The writes stay pending (ahead of
            # any submitted since) for the owner's crash hook to answer.
            self._writes[:0], self._acks[:0], self._traces[:0] = writes, acks, traces
            raise
        acknowledge = self._acknowledge
        for write, ack in zip(writes, acks, strict=True):
            if ack is not None:
                ack.resolve(acknowledge(write))
        return writes

    def abandon(self, reply: Any) -> int:
        """Answer every pending write ``reply`` without writing it (the owner is going away);
        returns how many there were."""
        acks = self._acks
        self._writes, self._acks, self._traces = [], [], []
        for ack in acks:
            if ack is not None:
                ack.resolve(reply)
        return len(acks)
