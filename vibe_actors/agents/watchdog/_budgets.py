"""The watchdog's time budgets: per agent, for readiness, and for the watchdog itself.

Pure functions of :class:`~vibe_actors.agents.watchdog.WatchdogConfig`, shared
by the watchdog's heartbeat rounds and by the runtime's progress monitor
(:mod:`vibe_actors._progress`) that the watchdog installs, so that both use
the same deadline for the same agent.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from vibe_actors._progress import MonitorSettings, OnStuck

if TYPE_CHECKING:
    from vibe_actors.agents.watchdog.protocol import WatchdogConfig

__all__ = ["budget", "heartbeat_deadline", "monitor_settings"]

#: Sampling never runs more often than this (seconds), however small the settings.
MIN_PERIOD = 0.01
#: Floor of the watchdog's own hang budget and of the monitor's staleness limit
#: (seconds): a round takes milliseconds, but a busy machine may delay a thread
#: by more than a small test interval, and that must not read as a hang.
SELF_FLOOR = 1.0


def budget(settings: WatchdogConfig, name: str) -> tuple[float, int]:
    """(deadline, misses) of agent ``name``: its override, its pool's, or the defaults."""
    override = settings.agents.get(name) or settings.agents.get(name.rpartition(".")[0])
    deadline = settings.deadline
    misses = settings.misses
    if override is not None:
        deadline = override.deadline or deadline
        misses = override.misses or misses
    return deadline, misses


def heartbeat_deadline(settings: WatchdogConfig, name: str, pool: str | None) -> float | None:
    """The deadline of ``name`` (a worker of ``pool``, if any), or None if it is excluded."""
    if name in settings.exclude or (pool is not None and pool in settings.exclude):
        return None
    return budget(settings, name)[0]


def monitor_settings(settings: WatchdogConfig, watchdog: str, on_stuck: OnStuck) -> MonitorSettings:
    """The progress monitor's settings for the watchdog named ``watchdog``.

    Sampling period ``min(interval, deadline) / 4`` (at least :data:`MIN_PERIOD`);
    an agent is not answering past its heartbeat deadline; the watchdog itself
    is stuck past ``interval * misses + deadline`` (at least :data:`SELF_FLOOR`),
    the time it takes to declare another agent hung; samples are stale after
    ``deadline + 4 periods`` (at least :data:`SELF_FLOOR`).
    """
    period = max(MIN_PERIOD, min(settings.interval, settings.deadline) / 4)
    return MonitorSettings(
        period=period,
        stale_after=max(SELF_FLOOR, settings.deadline + 4 * period),
        budget_of=partial(heartbeat_deadline, settings),
        guarded=watchdog,
        guard_budget=max(SELF_FLOOR, settings.interval * settings.misses + settings.deadline),
        on_guarded_stuck=on_stuck,
    )
