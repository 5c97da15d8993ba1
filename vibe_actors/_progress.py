"""Progress monitor: which agents are stuck in one message, seen without an actor hop.

An agent that does not answer is one whose thread has been handling the
same message for too long: its mailbox has stopped draining. The receive
loop already records the envelope being handled (``Incarnation.current``, set
before the handler and cleared after it), so the runtime can see this
without costing the hot loop anything and without sending the agent a
message (a hop a stuck agent would never answer).

A :class:`ProgressMonitor` samples every watched worker on the system's
timer thread every ``period`` seconds and keeps one *sighting* per agent:
the incarnation, the envelope it is handling and when that pair was first
seen. Whoever asks (:func:`not_answering`, e.g. a readiness probe on the
gateway's event loop) compares the sighting with the agent's state *now*:

    an agent is **not answering** when its current incarnation is still
    handling the very envelope it was first seen handling at least
    ``budget`` seconds ago (``budget``: the agent's heartbeat deadline).

The answer is exact at the moment of the call (a handler that returned, a
replaced incarnation, is never reported from an old sample) and only its
onset lags, by at most one ``period`` (``since`` is the first sample that
saw the message, never earlier than the message's start: sampling can only
under-estimate a hang, never invent one). An agent that keeps finishing
messages, however long its queue, is never reported: each message is a new
envelope. The call costs a dict scan over the agents that were inside a
handler at the last sample, plus one clock read.

The monitor also *guards* one agent (the watchdog, which installs it): when
that agent has been stuck in one message for ``guard_budget`` seconds,
``on_guarded_stuck(system, name, stuck_for)`` runs on the timer thread (once
per stuck message) to have it replaced; nothing else watches the watchdog.

If the timer thread itself stops sampling (a timer callback blocking it),
sightings go stale and a new hang could not be seen: after ``stale_after``
seconds without a sample, :func:`not_answering` reports :data:`STALLED`
(unknown counts as not ready). The monitor removes itself once its guarded
agent is removed from the tree (a live reload without a watchdog).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from vibe_actors._signals import AgentStatus
from vibe_actors._spec import WorkerSpec

if TYPE_CHECKING:
    from vibe_actors._cell import Cell
    from vibe_actors._envelope import Envelope
    from vibe_actors._incarnation import Incarnation
    from vibe_actors._system import ActorSystem
    from vibe_actors._timers import TimerHandle

__all__ = [
    "STALLED",
    "MonitorSettings",
    "ProgressMonitor",
    "install_monitor",
    "not_answering",
]

#: Reported by :func:`not_answering` when the monitor has stopped sampling (named
#: after the timer thread that runs it).
STALLED = "vibe-timers"

#: (agent name, its pool's name or None) -> seconds it may spend in one message,
#: or None when it is not watched.
BudgetOf = Callable[[str, str | None], float | None]
#: (system, guarded agent's name, seconds stuck so far); runs on the timer thread.
OnStuck = Callable[["ActorSystem", str, float], None]

#: Each system's monitor (at most one; gone with the system).
_monitors: weakref.WeakKeyDictionary[ActorSystem, ProgressMonitor] = weakref.WeakKeyDictionary()
#: Serializes installing and removing a system's monitor.
_install_lock = threading.Lock()


class MonitorSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What a :class:`ProgressMonitor` watches and how often (see the module docstring).

    The callables run on the timer thread: they must be quick and must not block.
    """

    period: float
    stale_after: float
    budget_of: BudgetOf
    guarded: str
    guard_budget: float
    on_guarded_stuck: OnStuck


class _Sighting:
    """One agent seen inside one handler (written by the timer thread only)."""

    __slots__ = ("budget", "cell", "envelope", "host", "reported", "since")

    def __init__(
        self, cell: Cell, host: Incarnation, envelope: Envelope, since: float, budget: float
    ) -> None:
        self.cell = cell
        self.host = host
        #: Held strongly so that its identity cannot be reused by a later envelope.
        self.envelope = envelope
        self.since = since
        self.budget = budget
        self.reported = False

    def stuck_for(self, now: float) -> float | None:
        """Seconds the same incarnation has been in the same message, or None if it moved on."""
        host = self.host
        # Compared by incarnation number, not by cell.host: replace_hung clears
        # cell.host before the cell's status leaves RUNNING, and the agent must stay
        # reported until the status says so (no gap in readiness).
        if host.current is not self.envelope or self.cell.incarnation != host.incarnation:
            return None
        return now - self.since


class ProgressMonitor:
    """Samples which message every watched agent is handling; see the module docstring."""

    def __init__(self, system: ActorSystem, settings: MonitorSettings) -> None:
        self._system = system
        self._clock = system.clock
        self.settings = settings
        #: Replaced whole by each sample, so readers never see a half-built one.
        self.sightings: dict[str, _Sighting] = {}
        self.sampled_at = system.clock()
        self._timer: TimerHandle = system.timers.call_every(settings.period, self.sample)

    def reconfigure(self, settings: MonitorSettings) -> None:
        """Take new settings (a new watchdog incarnation); sightings are kept."""
        if settings.period != self.settings.period:
            self._timer.cancel()
            self._timer = self._system.timers.call_every(settings.period, self.sample)
        self.settings = settings

    def stop(self) -> None:
        """Sample no more; idempotent."""
        self._timer.cancel()

    def sample(self) -> None:
        """One sampling pass (on the timer thread): update sightings, act on the guarded agent."""
        system = self._system
        settings = self.settings
        if settings.guarded not in system.names():
            self.stop()  # its watchdog was removed by a live reload
            with _install_lock:
                if _monitors.get(system) is self:
                    del _monitors[system]
            return
        now = self._clock()
        previous = self.sightings
        current: dict[str, _Sighting] = {}
        for cell in system.cells():
            host = cell.host
            if host is None or cell.status is not AgentStatus.RUNNING:
                continue
            envelope = host.current
            if envelope is None or not isinstance(cell.spec, WorkerSpec):
                continue
            budget = self._budget(system, cell)  # each time: a reload may change it
            if budget is None:
                continue
            seen = previous.get(cell.name)
            if seen is None or seen.host is not host or seen.envelope is not envelope:
                seen = _Sighting(cell, host, envelope, now, budget)
            seen.budget = budget
            current[cell.name] = seen
        self.sightings = current
        self.sampled_at = now
        guarded = current.get(settings.guarded)
        if guarded is not None and not guarded.reported:
            stuck_for = guarded.stuck_for(now)
            if stuck_for is not None and stuck_for >= guarded.budget:
                guarded.reported = True
                settings.on_guarded_stuck(system, settings.guarded, stuck_for)

    def _budget(self, system: ActorSystem, cell: Cell) -> float | None:
        settings = self.settings
        if cell.name == settings.guarded:
            return settings.guard_budget
        parent = cell.parent
        routes = system.routes
        grouped = parent is not None and (  # a pool's worker, an entity kind's shard
            routes.is_pool(parent.name) or routes.entity_kind(parent.name) is not None
        )
        return settings.budget_of(
            cell.name, parent.name if parent is not None and grouped else None
        )

    def not_answering(self, now: float) -> frozenset[str]:
        """The watched agents stuck in one message past their budget at ``now``."""
        names = {
            name
            for name, seen in self.sightings.items()
            if (stuck_for := seen.stuck_for(now)) is not None and stuck_for >= seen.budget
        }
        if now - self.sampled_at > self.settings.stale_after:
            names.add(STALLED)
        return frozenset(names)


def install_monitor(system: ActorSystem, settings: MonitorSettings) -> ProgressMonitor:
    """Start ``system``'s progress monitor, or give the running one new settings.

    One monitor per system (kept here, by system); it outlives the
    incarnations of the agent that installs it (its sightings survive a
    watchdog restart) and stops with the system's timer thread. Raises
    RuntimeError if the system's timers are stopped (the system is shutting
    down).
    """
    with _install_lock:
        monitor = _monitors.get(system)
        if monitor is None:
            monitor = _monitors[system] = ProgressMonitor(system, settings)
        else:
            monitor.reconfigure(settings)
        return monitor


def not_answering(system: ActorSystem) -> frozenset[str]:
    """Agents of ``system`` stuck in one message past their budget (see the module docstring).

    Includes :data:`STALLED` when the monitor has not sampled for its
    ``stale_after``. Empty when no monitor is installed or the system is not
    running. Cheap and non-blocking: for a readiness probe.
    """
    monitor = _monitors.get(system)
    if monitor is None or not system.running:
        return frozenset()
    return monitor.not_answering(system.clock())
