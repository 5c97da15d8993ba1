"""ManualClock: time that moves only when a test says so.

Pass it as ``ActorSystem(root, config, clock=clock)``. It drives everything the
runtime times with its clock: agents' timers, supervisors' restart backoff and
restart-intensity windows (ask deadlines stay on real time: they bound real
threads). :meth:`ManualClock.advance` moves time and returns once every timer
due by the new time has run, so a test of "3 crashes in 5 s escalate" or "the
restart waits 2 s" takes milliseconds and never sleeps.

There is no autojump (Trio's jump to the next timer when every task is idle):
agent threads give no sound "the whole system is idle" signal, so jumps are
explicit (:meth:`ManualClock.jump`).
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vibe_actors._timers import TimerService

__all__ = ["ManualClock"]


class ManualClock:
    """A monotonic clock (seconds) that only :meth:`advance` and :meth:`jump` move.

    Every timer service of a system built with it attaches itself (the runtime
    calls :meth:`attach_timers`), so moving the clock runs the timers that
    became due. Thread-safe; one clock may drive several systems.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        self._services: weakref.WeakSet[TimerService] = weakref.WeakSet()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    @property
    def now(self) -> float:
        """The current time."""
        return self()

    def __repr__(self) -> str:
        return f"ManualClock(now={self.now:g}, pending={self.pending()})"

    def attach_timers(self, service: TimerService) -> None:
        """Called by the runtime for each timer service reading this clock."""
        with self._lock:
            self._services.add(service)

    def _live(self) -> list[TimerService]:
        with self._lock:
            return [s for s in self._services if not s.stopped]

    def advance(self, seconds: float, *, timeout: float = 5.0) -> None:
        """Move time forward by ``seconds`` and run every timer due by then.

        When it returns, each due callback has run (a timer's message is in its
        agent's mailbox; the agent handles it in its own thread — wait for the
        effect with an ask or a probe). Repeating timers fire once per period
        passed. Raises ValueError for negative ``seconds``, and AssertionError
        if the timer threads are still busy after ``timeout`` real seconds.
        """
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: advance({seconds})")
        with self._lock:
            self._now += seconds
        self._settle(timeout)

    def jump(self, *, timeout: float = 5.0) -> float:
        """Advance exactly to the earliest pending timer and run it; returns the seconds moved.

        Raises AssertionError if no timer is pending.
        """
        instants = [w for s in self._live() if (w := s.next_when()) is not None]
        if not instants:
            raise AssertionError(f"jump(): no timer is pending at t={self.now:g}")
        moved = max(0.0, min(instants) - self.now)
        self.advance(moved, timeout=timeout)
        return moved

    def pending(self, *, within: float | None = None) -> int:
        """Timers scheduled and not cancelled, over every attached system.

        With ``within``: only those due less than ``within`` seconds from now.
        """
        before = None if within is None else self.now + within
        return sum(s.pending(before) for s in self._live())

    def wait_for_timers(
        self, count: int = 1, *, within: float | None = None, timeout: float = 1.0
    ) -> None:
        """Block (in real time) until at least ``count`` timers are pending.

        For the moment between an event and the timer it schedules: after a
        crash, the supervisor schedules the backed-off restart in its own
        thread; advancing before that would not count toward its delay.
        ``within`` counts only timers due less than that many seconds from
        now (to tell a 1 s restart from a 10 s periodic timer).
        Raises AssertionError after ``timeout`` real seconds.
        """
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while self.pending(within=within) < count:
            services = self._live()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {count} pending timer(s)"
                    f"{'' if within is None else f' due within {within:g}s'}; "
                    f"{self.pending(within=within)} pending at t={self.now:g}"
                )
            if len(services) == 1:
                before = None if within is None else self.now + within
                services[0].wait_pending(count, remaining, before)
            else:
                pause.wait(0.001)  # several services: no single condition to wait on

    def _settle(self, timeout: float) -> None:
        for service in self._live():
            if not service.settle(timeout):
                raise AssertionError(
                    f"timers still running {timeout}s after the clock moved to {self.now:g}"
                )
