"""Mailboxes: a ``queue.SimpleQueue`` with an optional bound and overflow policy.

The consumer side is always ``SimpleQueue.get`` (C code, no Python lock),
which is why the runtime outruns Pykka's ``queue.Queue`` inbox. Producers of a
bounded mailbox take a small lock so the bound is exact. Control envelopes
(stop wake-ups) and system messages use :meth:`Mailbox.put_system`, which
ignores the bound: a full mailbox never blocks a stop.

A *claimable* mailbox (:meth:`Mailbox.claim`) also lets another thread act in
the consumer's stead while the consumer is idle: an agent whose work is done
elsewhere (a Ray-placed agent's proxy) answers a blocking ask in the asker's
thread instead of costing two thread hops, without any message overtaking one
sent before it by the same sender.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from vibe_actors._deadletters import DeadLetterReason
from vibe_actors._envelope import Control, Envelope
from vibe_actors._messages import MailboxFull
from vibe_actors._spec import MailboxSpec, Overflow

__all__ = ["Mailbox"]

#: Called with (envelope, reason) for every message the mailbox refuses or evicts.
Refuse = Callable[[Envelope, DeadLetterReason], None]


class Mailbox:
    """One agent's queue of envelopes, shared by all its incarnations.

    ``put`` never raises for a full mailbox: what the policy refuses or evicts
    goes to ``on_refused`` (the owner turns it into a dead letter), and a
    refused or evicted ask is answered with :class:`MailboxFull` at once.
    """

    def __init__(
        self, owner: str, spec: MailboxSpec, on_refused: Refuse, *, claimable: bool = False
    ) -> None:
        self.owner = owner
        self.spec = spec
        self.capacity = spec.capacity
        self._queue: queue.SimpleQueue[Envelope | Control] = queue.SimpleQueue()
        self._on_refused = on_refused
        self._put_lock = threading.Lock()
        self._space = threading.Condition(self._put_lock)
        self._blocked = 0
        self.qsize = self._queue.qsize
        self.put_system: Callable[[Envelope | Control], None] = self._queue.put
        self.get_nowait = self._queue.get_nowait
        self.get: Callable[[], Envelope | Control]
        self.put: Callable[[Envelope], None]
        if spec.capacity == 0:
            self.put = self._queue.put
            self.get = self._queue.get
        elif spec.overflow is Overflow.BLOCK:
            self.put = self._put_blocking
            self.get = self._get_notifying
        else:
            self.put = self._put_bounded
            self.get = self._queue.get
        self.claimable = claimable
        if claimable:
            self._claim_lock = threading.Lock()
            self._puts = 0  # puts completed; counted after the enqueue, under _claim_lock
            self._idle_at = -1  # _puts when the consumer last found the queue empty
            self._inner_put, self._inner_get = self.put, self.get
            self._inner_put_system = self.put_system
            self.put, self.get = self._put_counted, self._get_noting_idle
            self.put_system = self._put_system_counted

    def _refuse(self, envelope: Envelope, reason: DeadLetterReason) -> None:
        if envelope.reply is not None:
            envelope.reply.resolve(
                MailboxFull(agent=self.owner, capacity=self.capacity, detail=reason.value)
            )
        self._on_refused(envelope, reason)

    def _put_bounded(self, envelope: Envelope) -> None:
        evicted: list[Envelope] = []
        with self._put_lock:
            q = self._queue
            # An agent's messages to itself (timers, results its own threads report) are
            # never refused by its own bound: they are how it drains what it accepted.
            if q.qsize() < self.capacity or envelope.sender == self.owner:
                q.put(envelope)
                return
            overflow = self.spec.overflow
            if overflow is Overflow.DROP_OLDEST:
                self._evict_oldest(evicted)
                q.put(envelope)
        if overflow is Overflow.DROP_OLDEST:
            for old in evicted:
                self._refuse(old, DeadLetterReason.DROPPED_OLDEST)
        elif overflow is Overflow.DROP_NEWEST:
            self._refuse(envelope, DeadLetterReason.DROPPED_NEWEST)
        else:
            self._refuse(envelope, DeadLetterReason.MAILBOX_FULL)

    def _evict_oldest(self, evicted: list[Envelope]) -> None:
        # Runs under _put_lock. The consumer may empty the queue meanwhile, and
        # control envelopes are never evicted: they go back to the tail.
        q = self._queue
        controls: list[Control] = []
        while not evicted:
            try:
                item = q.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, Control):
                controls.append(item)
            else:
                evicted.append(item)
        for control in controls:
            q.put(control)

    def _put_blocking(self, envelope: Envelope) -> None:
        deadline = time.monotonic() + self.spec.block_timeout
        with self._space:
            while self._queue.qsize() >= self.capacity and envelope.sender != self.owner:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._blocked += 1
                try:
                    self._space.wait(remaining)
                finally:
                    self._blocked -= 1
            else:
                self._queue.put(envelope)
                return
        self._refuse(envelope, DeadLetterReason.MAILBOX_FULL)

    def _get_notifying(self) -> Envelope | Control:
        item = self._queue.get()
        if self._blocked:
            with self._space:
                self._space.notify()
        return item

    # -- claims (claimable mailboxes only) -----------------------------------------

    def claim(self) -> bool:
        """Take the consumer's place for a moment, if it is idle: True means claimed.

        Claimed means the consumer has handled everything put before this call
        and is waiting on an empty queue, so whatever the claimant now does in
        its stead (sending the next message on, for a proxy) cannot overtake an
        earlier message of the same sender. Until :meth:`release`, completed
        puts wait (messages being put concurrently may still reach the consumer:
        they are not ordered before the claimant's). False: the caller must
        ``put`` as usual. Hold the claim for microseconds, never across a wait.
        """
        self._claim_lock.acquire()
        if self._idle_at == self._puts and self._queue.qsize() == 0:
            return True
        self._claim_lock.release()
        return False

    def release(self) -> None:
        """End a claim that :meth:`claim` granted."""
        self._claim_lock.release()

    def _put_counted(self, envelope: Envelope) -> None:
        # Counted after the enqueue: a consumer that found the queue empty before
        # this message arrived then sees a count it did not record, so no claim is
        # granted until it has handled the message and found the queue empty again.
        self._inner_put(envelope)
        with self._claim_lock:
            self._puts += 1

    def _put_system_counted(self, item: Envelope | Control) -> None:
        self._inner_put_system(item)
        with self._claim_lock:
            self._puts += 1

    def _get_noting_idle(self) -> Envelope | Control:
        # Called by the consumer only when it has handled everything it took before.
        if self._queue.qsize() == 0:
            with self._claim_lock:
                if self._queue.qsize() == 0:
                    self._idle_at = self._puts
        return self._inner_get()

    def drain(self) -> list[Envelope]:
        """Take every queued envelope out (control envelopes are discarded)."""
        items: list[Envelope] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return items
            if not isinstance(item, Control):
                items.append(item)
