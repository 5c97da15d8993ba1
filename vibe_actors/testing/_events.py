"""EventRecorder: wait for the runtime's events (restarts, give-ups, dead letters)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vibe_actors._events import RuntimeEvent
from vibe_actors._system import ActorSystem
from vibe_actors.testing._inbox import Inbox

__all__ = ["EventRecorder", "record_events"]


class EventRecorder:
    """Records ``system.events`` from its creation until :meth:`close` (or the ``with`` exit)."""

    def __init__(self, system: ActorSystem) -> None:
        self._inbox = Inbox("events")
        self._unsubscribe = system.events.subscribe(self._inbox.put)

    @property
    def events(self) -> list[RuntimeEvent]:
        """Every event recorded so far, in order."""
        return self._inbox.items()

    def wait_for(
        self,
        expected: Any,
        timeout: float = 1.0,
        *,
        where: Callable[[Any], bool] | None = None,
    ) -> Any:
        """Return the first not yet returned event matching ``expected`` (a type or a value).

        Earlier non-matching events are skipped. Raises AssertionError (listing
        the events) if none arrives within ``timeout`` real seconds.
        """
        return self._inbox.find(expected, timeout, where)

    def close(self) -> None:
        """Stop recording."""
        self._unsubscribe()

    def __enter__(self) -> EventRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def record_events(system: ActorSystem) -> EventRecorder:
    """Start recording ``system``'s runtime events (create it before causing them)."""
    return EventRecorder(system)
