"""The running system as the engine that hosts agents sees it: the :class:`Runtime` protocol.

A :class:`~vibe_actors._cell.Cell` and its incarnations publish dead letters
and runtime events, count failures, watch other agents and start timers
through the system's parts. They reach those parts through this protocol, not
through :class:`~vibe_actors.ActorSystem`, which builds cells: the engine sits
below the system that assembles it (no import cycle).
:class:`~vibe_actors.ActorSystem` fits it as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from vibe_actors._deadletters import DeadLetters
    from vibe_actors._deathwatch import DeathWatch
    from vibe_actors._events import EventStream
    from vibe_actors._routing import Routes
    from vibe_actors._stats import FailureCounts
    from vibe_actors._timers import TimerService

__all__ = ["Runtime"]


class Runtime(Protocol):
    """The system's parts a cell and its incarnations use."""

    @property
    def dead_letters(self) -> DeadLetters: ...

    @property
    def events(self) -> EventStream: ...

    @property
    def failures(self) -> FailureCounts:
        """Supervisor give-ups and abandoned incarnations, by name (for the metrics)."""
        ...

    @property
    def deathwatch(self) -> DeathWatch: ...

    @property
    def timers(self) -> TimerService: ...

    @property
    def routes(self) -> Routes: ...
