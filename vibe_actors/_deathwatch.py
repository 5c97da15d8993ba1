"""Death-watch: who watches whom, and the runtime's signals to an agent.

A watcher is told :class:`~vibe_actors.Terminated` once its target stops for
good (at once if the target is already stopped or unknown). The set of
watchers lives on the target's cell, so it survives the target's restarts; a
watcher that is itself stopped is not told (its cell refuses nothing: a
stopped cell is skipped).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from vibe_actors._envelope import Envelope
from vibe_actors._messages import Terminated
from vibe_actors._signals import AgentStatus

if TYPE_CHECKING:
    from vibe_actors._mailbox import Mailbox

__all__ = ["DeathWatch", "Watched"]


class Watched(Protocol):
    """An agent's cell, as death-watch uses it (:class:`~vibe_actors._cell.Cell` is one)."""

    #: The names told Terminated when this agent stops for good.
    watchers: set[str]

    @property
    def status(self) -> AgentStatus: ...

    @property
    def last_failure(self) -> str | None: ...

    @property
    def mailbox(self) -> Mailbox: ...


class DeathWatch:
    """Death-watch over the cells of one system (``cells``: name -> cell, live view)."""

    def __init__(self, cells: Mapping[str, Watched]) -> None:
        self._cells = cells

    def watch(self, watcher: str, target: str) -> None:
        """``watcher`` gets Terminated when ``target`` stops for good (now, if it has)."""
        cell = self._cells.get(target)
        if cell is None or cell.status is AgentStatus.STOPPED:
            reason = "unknown agent" if cell is None else (cell.last_failure or "stopped")
            self.notify(watcher, Terminated(agent=target, reason=reason))
        else:
            cell.watchers.add(watcher)

    def unwatch(self, watcher: str, target: str) -> None:
        """Stop watching; a Terminated already queued may still arrive."""
        cell = self._cells.get(target)
        if cell is not None:
            cell.watchers.discard(watcher)

    def notify(self, name: str, message: Any) -> None:
        """Put a runtime signal in agent ``name``'s mailbox, past its bound (if it is not
        stopped; an unknown or stopped agent is not told)."""
        cell = self._cells.get(name)
        if cell is not None and cell.status is not AgentStatus.STOPPED:
            cell.mailbox.put_system(Envelope(message))
