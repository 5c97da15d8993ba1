"""One writer per durable entity kind: every shard's writes, one transaction per turn.

Shards hand each changed state to their kind's :class:`KindWriter` with the
reply that waits for it, and go on with their next message: the commit
happens off their threads. The writer's thread takes everything handed over
since its last transaction (from every shard of the kind) and writes it in
one transaction, then answers the replies (group commit across shards; the
longer a transaction takes, the more the next one carries).

What a shard may rely on:

* **Order.** Hand-overs are written in the order they were made; a reply
  handed over after a write (a read of an entity whose write is not
  committed yet) is answered after that write commits.
* **Reads see every hand-over.** :meth:`KindWriter.unsaved` gives the newest
  state handed over and not yet committed, so an entity passivated with a
  write in flight is reloaded with it (an entry leaves only once committed).
* **A failed transaction keeps nothing of its writes** (:class:`StoreError`, or
  :class:`StoreRejected`: the database refused a statement). Each reply is answered
  ``Unavailable`` (``state not saved``), after each shard that lost a change
  was impaired (so readiness says so before any client hears of it) and told
  which of its entities lost one (:class:`SaveFailed`, as a system message):
  it drops them, so their next message reloads the last saved state. Until the shard
  has done so (:meth:`KindWriter.forgive`, queued behind what it handed over
  before), later hand-overs for those ids are refused the same way, so that a
  change that was not saved can never reach the store through a later write.
  After a failure, the next transaction that succeeds ends every shard's
  impairment.
* **Conflicts** (PostgreSQL, several replicas). Each write names the version
  it builds on; the store writes it only if the row still has that version
  (:mod:`vibe_actors._entity_store`). The ids it did not write are conflicts:
  their shard is told to drop them (:class:`SaveFailed` with ``conflict``,
  not impaired: the store works), then their replies are answered
  :class:`~vibe_actors.EntityConflict` (409), and their later hand-overs are
  refused the same way until the shard has dropped them, as after a failure.
  The rest of the transaction is committed.
* **Fencing.** A hand-over from an incarnation that is no longer its shard's
  current one (a hung shard that was replaced, waking up) is refused when it is
  made: never written, never offered to reads. What a current incarnation
  handed over is written even if it crashes before the commit (a reload may
  already have read it).

Lifecycle: shards :meth:`~KindWriter.join` when they start (the first opens the
store in the writer's thread and starts it; a store that cannot be opened
raises :class:`StoreError`) and :meth:`~KindWriter.leave` when they end; the
last one to leave on a graceful stop drains the queue and stops the thread (a
crashed one leaves it running for its next incarnation). :meth:`~KindWriter.flush`
waits for everything handed over so far (a shard's graceful stop).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any

import structlog

from vibe_actors._entity import entity_address
from vibe_actors._entity_writes import (
    Forgive,
    HandOver,
    SaveFailed,
    ShardSlot,
    Turn,
    WriterStore,
    plan,
)
from vibe_actors._envelope import Envelope
from vibe_actors._messages import EntityConflict, Unavailable
from vibe_actors.store import StoreError, StoreRejected

if TYPE_CHECKING:
    from collections.abc import Callable

    from vibe_actors._entity_kind import KindStats
    from vibe_actors._entity_shard import Shard
    from vibe_actors._host import Deferred

__all__ = ["KindWriter", "SaveFailed", "WriterStore"]

_log = structlog.get_logger("vibe_actors.entity")
#: How many conflicting ids one log event names (the count is always complete).
_LOGGED_IDS = 20
_CONFLICT = "another replica saved a newer state since this activation read it"
_CONFLICT_BEFORE = "an earlier change of this activation conflicted with another replica's"


class KindWriter:
    """The writer of one durable entity kind (see the module docstring)."""

    def __init__(self, kind: str, stats: KindStats) -> None:
        self.kind = kind
        self._stats = stats
        #: Guards the queue and the tables; ``_wakeup`` is its condition.
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        #: Serialises starting and stopping the thread (held while it starts or drains).
        self._lifecycle = threading.Lock()
        self._queue: deque[HandOver | Forgive] = deque()
        #: Id -> [newest state handed over, hand-overs with a state not yet committed,
        #: the newest state's version].
        self._unsaved: dict[str, list[Any]] = {}
        #: Ids whose change was lost, until their shard forgives them -> whether it was
        #: lost to a conflict (else to a failed commit).
        self._poisoned: dict[str, bool] = {}
        self._shards: dict[int, ShardSlot] = {}
        self._failing = False
        #: Hand-overs queued so far / written or answered so far (flush waits on these).
        self._queued = 0
        self._done = 0
        self._thread: threading.Thread | None = None
        self._store: WriterStore | None = None
        self._closing = False

    # -- shards joining and leaving -------------------------------------------------

    def join(
        self, index: int, shard: Shard, incarnation: int, open_store: Callable[[], WriterStore]
    ) -> None:
        """Shard ``index`` (incarnation ``incarnation``) starts using the writer.

        The first shard starts it: ``open_store`` runs in the writer's thread;
        raises :class:`StoreError` if it cannot open the store (the writer is not started).
        """
        with self._lifecycle:
            with self._lock:
                self._shards[index] = ShardSlot(shard, incarnation)
                if self._thread is not None:
                    return
                self._closing = False
            opened: list[WriterStore | StoreError] = []
            ready = threading.Event()
            # A daemon: a kind whose last shard crashed for good leaves it idle, and it
            # holds nothing acknowledged (a reply is sent only after its commit).
            thread = threading.Thread(
                target=self._run,
                args=(open_store, opened, ready),
                name=f"vibe:{self.kind}:writer",
                daemon=True,
            )
            thread.start()
            ready.wait()
            if isinstance(opened[0], StoreError):
                thread.join()
                with self._lock:
                    self._shards.pop(index, None)
                raise opened[0]
            self._thread = thread

    def leave(self, index: int, incarnation: int, *, stopping: bool = True) -> None:
        """Shard ``index``'s incarnation ends. The last shard to leave on a graceful stop
        (``stopping``) stops the writer once what was handed over is written; one that
        crashed leaves it running for its next incarnation (what it handed over is
        written meanwhile: a reload may already have read it)."""
        with self._lifecycle:
            with self._lock:
                shard = self._shards.get(index)
                if shard is not None and shard.incarnation == incarnation:
                    del self._shards[index]
                if self._shards or self._thread is None or not stopping:
                    return
                thread, self._thread = self._thread, None
                self._closing = True
                self._wakeup.notify()
            thread.join()

    # -- what shards call -----------------------------------------------------------------

    def hand_over(
        self,
        index: int,
        incarnation: int,
        entity_id: str,
        state: bytes | None,
        version: int,
        reply: Deferred | None,
        result: Any,
    ) -> None:
        """Queue ``state`` (None: nothing to write) of ``entity_id``, to be saved as
        ``version`` over ``version - 1``; ``reply`` (None: a tell) is answered ``result``
        once it is written, ``Unavailable`` if it is not, ``EntityConflict`` if another
        replica wrote the entity first.

        Refused at once (``Unavailable``, never written nor offered to reads) when
        ``incarnation`` is no longer shard ``index``'s: a replaced shard woken up.
        What a current incarnation hands over is written whatever becomes of it.
        """
        with self._lock:
            shard = self._shards.get(index)
            stale = shard is None or shard.incarnation != incarnation
        if stale:
            refused = HandOver(index, incarnation, entity_id, state, version, reply, result, None)
            self._refuse(refused, "its shard was replaced")
            return
        with self._lock:
            entry = None
            if state is not None:
                entry = self._unsaved.get(entity_id)
                if entry is None:
                    entry = self._unsaved[entity_id] = [state, 1, version]
                else:
                    entry[0] = state
                    entry[1] += 1
                    entry[2] = version
            item = HandOver(index, incarnation, entity_id, state, version, reply, result, entry)
            self._queue.append(item)
            self._queued += 1
            if len(self._queue) == 1:
                self._wakeup.notify()

    def pending(self, entity_id: str) -> bool:
        """Whether a state of ``entity_id`` was handed over and is not written yet, or its
        last change was lost (its replies must wait for the writer: it refuses them)."""
        # Reads of two dicts: atomic under the GIL, no lock on the hot path.
        return entity_id in self._unsaved or entity_id in self._poisoned

    def unsaved(self, entity_id: str) -> tuple[bytes, int] | None:
        """The newest state of ``entity_id`` handed over and not yet written, and its
        version, else None (read the store); never a state built on a change that was lost."""
        with self._lock:
            entry = self._unsaved.get(entity_id)
            if entry is None or entity_id in self._poisoned:
                return None
            return entry[0], entry[2]

    def forgive(self, ids: tuple[str, ...]) -> None:
        """The shard dropped ``ids`` (after :class:`SaveFailed`): what it hands over from now
        on is theirs again. Their refused states are no longer offered to reads."""
        with self._lock:
            for entity_id in ids:
                self._unsaved.pop(entity_id, None)
            self._queue.append(Forgive(ids))
            if len(self._queue) == 1:
                self._wakeup.notify()

    def flush(self, timeout: float) -> bool:
        """Wait until everything handed over so far is written (or refused); False on timeout."""
        with self._lock:
            target = self._queued
            return self._wakeup.wait_for(lambda: self._done >= target, timeout)

    # -- the writer's thread ------------------------------------------------------------------

    def _run(
        self,
        open_store: Callable[[], WriterStore],
        opened: list[WriterStore | StoreError],
        ready: threading.Event,
    ) -> None:
        try:
            store = open_store()
        except StoreError as exc:
            opened.append(exc)
            ready.set()
            return
        opened.append(store)
        ready.set()
        try:
            while True:
                with self._lock:
                    while not self._queue and not self._closing:
                        self._wakeup.wait()
                    if not self._queue:
                        return
                    queued = list(self._queue)
                    self._queue.clear()
                self._write(store, queued)
        finally:
            store.close()

    def _write(self, store: WriterStore, queued: list[HandOver | Forgive]) -> None:
        with self._lock:
            turn = plan(queued, self._poisoned)
            shards = dict(self._shards)
        error: StoreError | StoreRejected | None = None
        if turn.rows:
            try:
                turn.conflicts = store.put_many(turn.rows)
            except (StoreError, StoreRejected) as exc:  # nothing saved: answered, never raised
                error = exc
        with self._lock:
            unsaved = self._unsaved
            for item in (*turn.items, *(item for item, _ in turn.refused)):
                entry = item.entry
                if entry is not None:
                    entry[1] -= 1
                    if entry[1] == 0 and unsaved.get(item.entity_id) is entry:
                        del unsaved[item.entity_id]
            lost = turn.rows if error is not None else turn.conflicts
            for entity_id in lost:
                self._poisoned.setdefault(entity_id, error is None)
            recovered = error is None and bool(turn.rows) and self._failing
            if turn.rows:
                self._failing = error is not None
        if error is None and turn.rows:
            self._stats.commits += 1
            self._stats.committed_writes += len(turn.rows) - len(turn.conflicts)
            self._stats.conflicts += len(turn.conflicts)
        if recovered:  # before the replies: whoever hears of the commit sees the recovery
            _log.info("entity_state_saved_again", agent=self.kind)
            for shard in shards.values():
                shard.agent.impair(None)
        self._answer(turn, error, shards)
        with self._lock:
            self._done += sum(1 for item in queued if isinstance(item, HandOver))
            self._wakeup.notify_all()

    def _answer(
        self, turn: Turn, error: StoreError | StoreRejected | None, shards: dict[int, ShardSlot]
    ) -> None:
        for item, conflict in turn.refused:
            if conflict:
                self._conflict(item, _CONFLICT_BEFORE)
            else:
                self._refuse(item, "an earlier change was not saved")
        if error is not None:
            _log.error(
                "entity_state_not_saved",
                agent=self.kind,
                path=error.path,
                error=error.reason,
                writes=len(turn.rows),
            )
            self._drop(turn, turn.rows, shards, f"entity state not saved: {error}")
        elif turn.conflicts:
            ids = sorted(turn.conflicts)
            _log.warning(
                "entity_state_conflict",
                agent=self.kind,
                conflicts=len(ids),
                entities=ids[:_LOGGED_IDS],
                writes=len(turn.rows),
            )
            self._drop(turn, turn.conflicts, shards, None)
        lost = turn.rows if error is not None else turn.conflicts
        for item in turn.items:
            if item.entity_id not in lost:  # written (or a reply held for a write before)
                if item.reply is not None:
                    item.reply.resolve(item.result)
            elif error is not None:
                self._refuse(item, error.reason)
            else:
                self._conflict(item, _CONFLICT)

    def _drop(
        self, turn: Turn, ids: Any, shards: dict[int, ShardSlot], impairment: str | None
    ) -> None:
        """Tell each shard which of its entities lost a change (``ids``), before any asker
        hears of it; impaired first when the store failed (``impairment``)."""
        lost: dict[int, list[str]] = {}
        for item in turn.items:
            if item.entity_id in ids:
                lost.setdefault(item.shard, []).append(item.entity_id)
        for index, dropped in lost.items():
            shard = shards.get(index)
            if shard is not None:
                if impairment is not None:
                    shard.agent.impair(impairment)
                reason = impairment or _CONFLICT
                message = SaveFailed(tuple(dict.fromkeys(dropped)), reason, impairment is None)
                shard.agent.shard_cell.mailbox.put_system(Envelope(message))
            else:  # no incarnation holds them (it crashed): the next one reloads them
                with self._lock:
                    for entity_id in dropped:
                        self._poisoned.pop(entity_id, None)

    def _refuse(self, item: HandOver, reason: str) -> None:
        if item.reply is not None:
            address = f"{self.kind}/{item.entity_id}"
            item.reply.resolve(Unavailable(agent=address, reason=f"state not saved ({reason})"))

    def _conflict(self, item: HandOver, reason: str) -> None:
        if item.reply is not None:
            address = entity_address(self.kind, item.entity_id)
            item.reply.resolve(EntityConflict(agent=address, reason=reason))
