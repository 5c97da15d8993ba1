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
* **A failed transaction keeps nothing of its writes.** Each reply is answered
  ``Unavailable`` (``state not saved``), after each shard that lost a change
  was impaired (so readiness says so before any client hears of it) and told
  which of its entities lost one (:class:`SaveFailed`, as a system message):
  it drops them, so their next message reloads the last saved state. Until the shard
  has done so (:meth:`KindWriter.forgive`, queued behind what it handed over
  before), later hand-overs for those ids are refused the same way, so that a
  change that was not saved can never reach the store through a later write.
  After a failure, the next transaction that succeeds ends every shard's
  impairment.
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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
import structlog

from vibe_actors._envelope import Envelope
from vibe_actors._messages import Unavailable
from vibe_actors.store import StoreError

if TYPE_CHECKING:
    from collections.abc import Callable

    from vibe_actors._entity_kind import KindStats
    from vibe_actors._entity_shard import Shard
    from vibe_actors._host import Deferred

__all__ = ["KindWriter", "SaveFailed", "WriterStore"]

_log = structlog.get_logger("vibe_actors.entity")


class SaveFailed(msgspec.Struct, frozen=True):
    """To a shard: these entities' changes were not saved (drop them, then forgive)."""

    ids: tuple[str, ...]
    reason: str


class WriterStore(Protocol):
    """What the writer needs of a kind's store (:class:`EntityStateStore` is one)."""

    @property
    def path(self) -> str: ...  # pragma: no cover - protocol

    def put_many(self, states: dict[str, bytes]) -> None: ...  # pragma: no cover - protocol

    def close(self) -> None: ...  # pragma: no cover - protocol


@dataclass(eq=False, slots=True)
class _HandOver:
    """One hand-over: a write (``state`` None: a reply only) and the reply waiting on it."""

    shard: int
    incarnation: int
    entity_id: str
    state: bytes | None
    reply: Deferred | None
    result: Any
    #: The ``unsaved`` entry this write counts in (None for a reply only).
    entry: list[Any] | None


@dataclass(eq=False, slots=True)
class _Forgive:
    """Queued by a shard once it dropped ``ids``: their later hand-overs are accepted again."""

    ids: tuple[str, ...]


@dataclass(eq=False)
class _Shard:
    agent: Shard
    incarnation: int


@dataclass(eq=False)
class _Turn:
    """What one transaction carries, and what it decided."""

    items: list[_HandOver] = field(default_factory=list)
    rows: dict[str, bytes] = field(default_factory=dict)
    #: Hand-overs refused without being written, and why.
    refused: list[tuple[_HandOver, str]] = field(default_factory=list)


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
        self._queue: deque[_HandOver | _Forgive] = deque()
        #: Id -> [newest state handed over, hand-overs with a state not yet committed].
        self._unsaved: dict[str, list[Any]] = {}
        #: Ids whose change was lost, until their shard forgives them.
        self._poisoned: set[str] = set()
        self._shards: dict[int, _Shard] = {}
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
                self._shards[index] = _Shard(shard, incarnation)
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
        reply: Deferred | None,
        result: Any,
    ) -> None:
        """Queue ``state`` (None: nothing to write) of ``entity_id``; ``reply`` (None: a
        tell) is answered ``result`` once it is written, ``Unavailable`` if it is not.

        Refused at once (``Unavailable``, never written nor offered to reads) when
        ``incarnation`` is no longer shard ``index``'s: a replaced shard woken up.
        What a current incarnation hands over is written whatever becomes of it.
        """
        with self._lock:
            shard = self._shards.get(index)
            stale = shard is None or shard.incarnation != incarnation
        if stale:
            refused = _HandOver(index, incarnation, entity_id, state, reply, result, None)
            self._refuse(refused, "its shard was replaced")
            return
        with self._lock:
            entry = None
            if state is not None:
                entry = self._unsaved.get(entity_id)
                if entry is None:
                    entry = self._unsaved[entity_id] = [state, 1]
                else:
                    entry[0] = state
                    entry[1] += 1
            item = _HandOver(index, incarnation, entity_id, state, reply, result, entry)
            self._queue.append(item)
            self._queued += 1
            if len(self._queue) == 1:
                self._wakeup.notify()

    def pending(self, entity_id: str) -> bool:
        """Whether a state of ``entity_id`` was handed over and is not written yet, or its
        last change was lost (its replies must wait for the writer: it refuses them)."""
        # Reads of a dict and a set: atomic under the GIL, no lock on the hot path.
        return entity_id in self._unsaved or entity_id in self._poisoned

    def unsaved(self, entity_id: str) -> bytes | None:
        """The newest state of ``entity_id`` handed over and not yet written, else None
        (read the store); never a state built on a change that was lost."""
        with self._lock:
            entry = self._unsaved.get(entity_id)
            if entry is None or entity_id in self._poisoned:
                return None
            return entry[0]  # type: ignore[no-any-return]

    def forgive(self, ids: tuple[str, ...]) -> None:
        """The shard dropped ``ids`` (after :class:`SaveFailed`): what it hands over from now
        on is theirs again. Their refused states are no longer offered to reads."""
        with self._lock:
            for entity_id in ids:
                self._unsaved.pop(entity_id, None)
            self._queue.append(_Forgive(ids))
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

    def _write(self, store: WriterStore, queued: list[_HandOver | _Forgive]) -> None:
        with self._lock:
            turn = self._plan(queued)
            shards = dict(self._shards)
        error: StoreError | None = None
        if turn.rows:
            try:
                store.put_many(turn.rows)
            except StoreError as exc:
                error = exc
        with self._lock:
            unsaved = self._unsaved
            for item in (*turn.items, *(item for item, _ in turn.refused)):
                entry = item.entry
                if entry is not None:
                    entry[1] -= 1
                    if entry[1] == 0 and unsaved.get(item.entity_id) is entry:
                        del unsaved[item.entity_id]
            if error is not None:
                self._poisoned.update(turn.rows)
            recovered = error is None and bool(turn.rows) and self._failing
            if turn.rows:
                self._failing = error is not None
        if error is None and turn.rows:
            self._stats.commits += 1
            self._stats.committed_writes += len(turn.rows)
        if recovered:  # before the replies: whoever hears of the commit sees the recovery
            _log.info("entity_state_saved_again", agent=self.kind)
            for shard in shards.values():
                shard.agent.impair(None)
        self._answer(turn, error, shards)
        with self._lock:
            self._done += sum(1 for item in queued if isinstance(item, _HandOver))
            self._wakeup.notify_all()

    def _plan(self, queued: list[_HandOver | _Forgive]) -> _Turn:
        """Split ``queued`` into what is written and what is refused (a change of the
        entity was lost before). Called with the lock held."""
        turn = _Turn()
        poisoned = self._poisoned
        for item in queued:
            if isinstance(item, _Forgive):
                poisoned.difference_update(item.ids)
                continue
            if item.entity_id in poisoned:
                turn.refused.append((item, "an earlier change was not saved"))
            else:
                turn.items.append(item)
                if item.state is not None:
                    turn.rows[item.entity_id] = item.state  # the newest state of an id wins
        return turn

    def _answer(self, turn: _Turn, error: StoreError | None, shards: dict[int, _Shard]) -> None:
        for item, reason in turn.refused:
            self._refuse(item, reason)
        if error is None:
            for item in turn.items:
                if item.reply is not None:
                    item.reply.resolve(item.result)
            return
        _log.error(
            "entity_state_not_saved",
            agent=self.kind,
            path=error.path,
            error=error.reason,
            writes=len(turn.rows),
        )
        lost: dict[int, list[str]] = {}
        for item in turn.items:
            if item.entity_id in turn.rows:
                lost.setdefault(item.shard, []).append(item.entity_id)
        for index, ids in lost.items():  # before any asker hears of it
            shard = shards.get(index)
            if shard is not None:
                shard.agent.impair(f"entity state not saved: {error}")
                message = SaveFailed(tuple(dict.fromkeys(ids)), str(error))
                shard.agent.shard_cell.mailbox.put_system(Envelope(message))
            else:  # no incarnation holds them (it crashed): the next one reloads them
                with self._lock:
                    self._poisoned.difference_update(ids)
        for item in turn.items:
            if item.entity_id in turn.rows:
                self._refuse(item, error.reason)
            elif item.reply is not None:  # a reply held for a write committed before
                item.reply.resolve(item.result)

    def _refuse(self, item: _HandOver, reason: str) -> None:
        if item.reply is not None:
            address = f"{self.kind}/{item.entity_id}"
            item.reply.resolve(Unavailable(agent=address, reason=f"state not saved ({reason})"))
