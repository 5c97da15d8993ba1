"""An incarnation's side of the handler API: the :class:`~vibe_actors._host.Host` members.

What a handler reaches through :class:`~vibe_actors.Agent`'s methods (its name
and config, timers, death-watch, stash, deferred replies, degrade and impair)
lands here, on the incarnation running it: :class:`HandlerApi` is mixed into
:class:`~vibe_actors._incarnation.Incarnation`, which keeps the engine (the
receive loop and the stop protocol).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from vibe_actors import _tracing
from vibe_actors._errors import StashOverflow
from vibe_actors._host import Deferred
from vibe_actors._messages import ReceiveTimeout

if TYPE_CHECKING:
    from vibe_actors._authz import Caller
    from vibe_actors._envelope import Envelope, ReplySlot
    from vibe_actors._hosting_cell import HostingCell
    from vibe_actors._runtime import Runtime
    from vibe_actors._stats import AgentStats
    from vibe_actors._timers import TimerHandle

__all__ = ["HandlerApi"]


class HandlerApi:
    """The handler API's members of an incarnation (see the module docstring)."""

    cell: HostingCell[Any]
    incarnation: int
    #: The envelope being handled, else None.
    current: Envelope | None
    timers: dict[Any, TimerHandle]
    #: The handles of replies deferred and not given yet (see Deferred).
    deferred: set[Deferred]

    @property
    def name(self) -> str:
        return self.cell.name

    @property
    def config(self) -> Any:
        return self.cell.config

    @property
    def system(self) -> Runtime:
        return self.cell.system

    def mailbox_size(self) -> int:
        return self.cell.mailbox.qsize()

    def report_degraded(self, reason: str) -> None:
        self.cell.degraded = reason

    @property
    def impaired(self) -> str | None:
        return self.cell.impaired

    def report_impaired(self, reason: str | None) -> bool:
        """Record ``reason`` (None: recovered); returns whether it changed."""
        if self.cell.impaired == reason:
            return False
        self.cell.impaired = reason
        return True

    def watch(self, name: str) -> None:
        self.cell.system.deathwatch.watch(self.cell.name, name)

    def unwatch(self, name: str) -> None:
        self.cell.system.deathwatch.unwatch(self.cell.name, name)

    def start_timer(self, key: Any, message: Any, delay: float, repeat: bool) -> None:
        self.cancel_timer(key)
        timers = self.cell.system.timers
        deliver = self.cell.deliver_timer
        if repeat:
            handle = timers.call_every(delay, deliver, self.incarnation, message)
        else:
            handle = timers.call_later(delay, deliver, self.incarnation, message)
        self.timers[key] = handle

    def cancel_timer(self, key: Any) -> bool:
        handle = self.timers.pop(key, None)
        if handle is None:
            return False
        handle.cancel()
        return True

    def defer_reply(self, slot: ReplySlot) -> Deferred:
        trace = _tracing.current_context() if _tracing.ON else None
        return Deferred(slot, self.deferred, trace)

    def current_caller(self) -> Caller | None:
        env = self.current
        return env.caller if env is not None else None

    def stash_current(self, capacity: int) -> None:
        env = self.current
        if env is None:
            raise RuntimeError("stash() is only valid inside a handler")
        stash = self.cell.stash
        if len(stash) >= capacity:
            raise StashOverflow(self.cell.name, capacity)
        stash.append(msgspec.structs.replace(env))  # keeps the reply slot
        env.reply = None  # the loop will not answer for this message

    def unstash_all(self) -> int:
        cell = self.cell
        count = len(cell.stash)
        cell.unstashed.extendleft(reversed(cell.stash))
        cell.stash.clear()
        return count

    def stash_size(self) -> int:
        return len(self.cell.stash)

    def set_receive_timeout(self, seconds: float | None) -> None:
        self.cancel_timer(_RECEIVE_TIMEOUT)
        if seconds is None:
            return
        watch = _IdleWatch(self, self.cell.stats)
        self.timers[_RECEIVE_TIMEOUT] = self.cell.system.timers.call_every(seconds / 2, watch.tick)


#: The key of the receive-timeout check among an incarnation's timers.
_RECEIVE_TIMEOUT = object()


class _IdleWatch:
    """The receive timeout's check, on the timer thread every ``seconds / 2``.

    Idle means no message finished since the previous check, none in progress
    and none waiting; two idle checks in a row (at least ``seconds`` without a
    message) deliver one ReceiveTimeout. Handling a ReceiveTimeout is not
    activity.
    """

    __slots__ = ("_host", "_quiet", "_seen", "_stats")

    def __init__(self, host: HandlerApi, stats: AgentStats) -> None:
        self._host = host
        self._stats = stats
        self._seen = self._activity()
        self._quiet = 0

    def _activity(self) -> int:
        """Messages finished, ReceiveTimeouts aside (every finished one fills one bucket)."""
        stats = self._stats
        own = sum(counts.get(ReceiveTimeout, 0) for counts in stats.by_outcome.values())
        return sum(stats.buckets) - own

    def tick(self) -> None:
        handled = self._activity()
        host = self._host
        if handled != self._seen or host.current is not None or host.cell.mailbox.qsize():
            self._seen, self._quiet = handled, 0  # busy, or work is waiting: not idle
            return
        self._quiet += 1
        if self._quiet >= 2:
            self._quiet = 0
            host.cell.deliver_timer(host.incarnation, ReceiveTimeout())
