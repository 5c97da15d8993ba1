"""The timer service: one daemon thread running due callbacks in time order.

Agents' timers, supervisors' restart backoff and periodic jobs all go
through it. Callbacks run in the timer thread, so they must be quick (a
``tell``); one that raises is logged with its error and the service goes on.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

__all__ = ["TimerHandle", "TimerService"]

_log = structlog.get_logger("vibe_actors.timers")


class TimerHandle:
    """A scheduled callback; :meth:`cancel` prevents any further run."""

    __slots__ = ("args", "callback", "cancelled", "interval", "when")

    def __init__(
        self,
        when: float,
        interval: float | None,
        callback: Callable[..., Any],
        args: tuple[Any, ...],
    ) -> None:
        self.when = when
        self.interval = interval
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        """Cancel the timer; safe to call from any thread, any number of times."""
        self.cancelled = True


class TimerService:
    """Runs callbacks at ``clock()`` instants on one daemon thread.

    ``clock`` is injected (``time.monotonic`` by default) so tests can drive
    time; after moving a manual clock, call :meth:`wake` to re-check due timers,
    or :meth:`settle` to also wait until they ran. A clock with an
    ``attach_timers(service)`` method is handed every service that reads it
    (``vibe_actors.testing.ManualClock`` settles them on ``advance``).
    """

    def __init__(self, clock: Callable[[], float], name: str = "vibe-timers") -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        lock = threading.RLock()
        self._cond = threading.Condition(lock)  # the timer thread waits on this one
        self._changed = threading.Condition(lock)  # settle()/wait_pending() wait on this one
        self._busy = False  # a callback is running
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        attach = getattr(clock, "attach_timers", None)
        if attach is not None:
            attach(self)

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called (no timer fires any more)."""
        return self._stopped

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` once, ``delay`` seconds from now."""
        return self._push(TimerHandle(self._clock() + max(delay, 0.0), None, callback, args))

    def call_every(
        self, interval: float, callback: Callable[..., Any], *args: Any, first: float | None = None
    ) -> TimerHandle:
        """Run ``callback(*args)`` every ``interval`` seconds (fixed rate), first after ``first``."""
        if interval <= 0:
            raise ValueError(f"timer interval must be > 0, got {interval}")
        start = interval if first is None else max(first, 0.0)
        return self._push(TimerHandle(self._clock() + start, interval, callback, args))

    def _push(self, handle: TimerHandle) -> TimerHandle:
        with self._cond:
            if self._stopped:
                raise RuntimeError("timer service is stopped")
            heapq.heappush(self._heap, (handle.when, next(self._seq), handle))
            if self._heap[0][2] is handle:
                self._cond.notify()
            self._changed.notify_all()
        return handle

    def wake(self) -> None:
        """Re-check due timers now (after a manual clock moved)."""
        with self._cond:
            self._cond.notify()

    def settle(self, timeout: float = 5.0) -> bool:
        """Wake the thread and wait until no timer is due at ``clock()`` and none is running.

        For manual clocks: after moving time, every callback due by then has
        run when this returns True (False: still busy after ``timeout`` real
        seconds). Returns True at once once stopped.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify()
            while not self._stopped and (self._busy or self._due()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    def wait_pending(self, count: int, timeout: float, before: float | None = None) -> bool:
        """Wait until at least ``count`` timers are pending (due before ``before``, if given).

        Returns False after ``timeout`` real seconds.
        """
        with self._cond:
            return self._changed.wait_for(lambda: self.pending(before) >= count, timeout)

    def next_when(self) -> float | None:
        """The ``clock()`` instant of the earliest pending timer, or None."""
        with self._cond:
            return min((h.when for _, _, h in self._heap if not h.cancelled), default=None)

    def _due(self) -> bool:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return bool(self._heap) and self._heap[0][0] <= self._clock()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread; pending timers never run."""
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()
            self._changed.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def pending(self, before: float | None = None) -> int:
        """Timers scheduled and not cancelled (and due before ``before``, if given)."""
        with self._cond:
            return sum(
                1
                for when, _, handle in self._heap
                if not handle.cancelled and (before is None or when < before)
            )

    def _next_due(self) -> TimerHandle | None:
        with self._cond:
            self._busy = False
            while not self._stopped:
                while self._heap and self._heap[0][2].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._changed.notify_all()  # idle: settle() may return
                    self._cond.wait()
                    continue
                delay = self._heap[0][0] - self._clock()
                if delay <= 0:
                    handle = heapq.heappop(self._heap)[2]
                    if handle.interval is not None:
                        handle.when += handle.interval
                        heapq.heappush(self._heap, (handle.when, next(self._seq), handle))
                    self._busy = True
                    return handle
                self._changed.notify_all()
                self._cond.wait(delay)
            return None

    def _run(self) -> None:
        while (handle := self._next_due()) is not None:
            try:
                handle.callback(*handle.args)
            except Exception:  # noqa: BLE001 - logged; the timer thread must survive
                _log.exception("timer_callback_failed", callback=repr(handle.callback))
