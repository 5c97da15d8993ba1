"""The asyncio bridge: replies from agent threads to an event loop, in batches.

Awaiting a Pykka future would block the loop (its ``__await__`` calls the
blocking ``get``). Here an ask made from a coroutine carries a
:class:`LoopReply`; the agent's thread appends the reply to the loop's
:class:`LoopBridge` queue and wakes the loop with ``call_soon_threadsafe``
only when the queue was idle, so a burst of replies costs one wake-up.

Deadlines are enforced on the loop, not by a timer per ask: the bridge keeps
the asks in flight in an insertion-ordered dict and sweeps it every
``SWEEP_INTERVAL`` seconds while any is pending, so an ask resolves with
:class:`DeadlineExceeded` at most one interval after its deadline.
"""

from __future__ import annotations

import asyncio
import collections
import time
import weakref
from typing import Any

import structlog

from vibe_actors._messages import DeadlineExceeded

__all__ = ["SWEEP_INTERVAL", "LoopBridge", "LoopReply"]

SWEEP_INTERVAL = 0.02
_log = structlog.get_logger("vibe_actors.asyncio")
_last: LoopBridge | None = None
_bridges: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopBridge] = (
    weakref.WeakKeyDictionary()
)


class LoopReply:
    """The reply slot of one ask made from a coroutine (duck-types ReplyFuture's resolve)."""

    __slots__ = ("_bridge", "agent", "deadline", "timeout", "waiter")

    def __init__(self, bridge: LoopBridge, agent: str, timeout: float) -> None:
        self._bridge = bridge
        self.agent = agent
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.waiter: asyncio.Future[Any] = bridge.loop.create_future()

    def resolve(self, reply: Any) -> bool:
        """Hand ``reply`` to the loop (from any thread); the first reply wins there."""
        # The bridge's queue is appended to here rather than through a method of
        # the bridge: this runs for every reply, in the agent's thread.
        bridge = self._bridge
        bridge._queue.append((self, reply))  # noqa: SLF001 - a slot is part of its bridge
        if not bridge._scheduled:  # noqa: SLF001 - as above
            bridge._wake(self.agent)  # noqa: SLF001 - as above
        return True


class LoopBridge:
    """One per event loop; see the module docstring."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._queue: collections.deque[tuple[LoopReply, Any]] = collections.deque()
        self._scheduled = False
        self._inflight: dict[LoopReply, None] = {}
        self._sweeping = False

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> LoopBridge:
        """The bridge of ``loop`` (created on first use, from the loop's thread)."""
        global _last  # one process usually has one loop: skip the weak dict then
        last = _last
        if last is not None and last.loop is loop:
            return last
        bridge = _bridges.get(loop)
        if bridge is None:
            bridge = _bridges[loop] = cls(loop)
        _last = bridge
        return bridge

    def open(self, agent: str, timeout: float) -> LoopReply:
        """A new reply slot, tracked for its deadline (loop thread only)."""
        slot = LoopReply(self, agent, timeout)
        self._inflight[slot] = None
        if not self._sweeping:
            self._sweeping = True
            self.loop.call_later(SWEEP_INTERVAL, self._sweep)
        return slot

    def close(self, slot: LoopReply) -> None:
        """Stop tracking ``slot`` (its waiter is done or abandoned; loop thread only)."""
        self._inflight.pop(slot, None)

    def _wake(self, agent: str) -> None:
        # Any thread. deque.append and the flag are atomic under the GIL; the
        # drain clears the flag before it empties the queue, so no reply waits.
        self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            _log.debug("reply_after_loop_closed", agent=agent)

    def _drain(self) -> None:
        self._scheduled = False
        queue = self._queue
        while queue:
            slot, reply = queue.popleft()
            waiter = slot.waiter
            if not waiter.done():
                waiter.set_result(reply)

    def _sweep(self) -> None:
        now = time.monotonic()
        expired = [slot for slot in self._inflight if slot.deadline <= now]
        for slot in expired:
            del self._inflight[slot]
            if not slot.waiter.done():
                slot.waiter.set_result(DeadlineExceeded(agent=slot.agent, timeout=slot.timeout))
        if self._inflight:
            self.loop.call_later(SWEEP_INTERVAL, self._sweep)
        else:
            self._sweeping = False
