"""The cell an incarnation runs in, as the incarnation sees it: the :class:`HostingCell` protocol.

A :class:`~vibe_actors._cell.Cell` starts its incarnations; an
:class:`~vibe_actors._incarnation.Incarnation` reads what outlives it from its
cell and reports its start, failures and end back. The incarnation knows its
cell only through this protocol (no import cycle between the two); ``H`` is
the incarnation type that reports.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from vibe_actors._agent import Agent
    from vibe_actors._envelope import Envelope
    from vibe_actors._mailbox import Mailbox
    from vibe_actors._runtime import Runtime
    from vibe_actors._spec import Directive
    from vibe_actors._stats import AgentStats

__all__ = ["HostingCell"]

#: The incarnation that reports to the cell (only passed in: contravariant).
H = TypeVar("H", contravariant=True)


class HostingCell(Protocol[H]):
    """The cell an incarnation runs in, as the incarnation uses it: what outlives it (the
    name, mailbox, statistics and stash) and where it reports its start, failures and end
    (:class:`~vibe_actors._cell.Cell` is one)."""

    #: Why the current incarnation refuses work (Agent.degrade), else None.
    degraded: str | None
    #: Why it cannot do all its work while it serves the rest (Agent.impair), else None.
    impaired: str | None

    @property
    def name(self) -> str: ...

    @property
    def parent(self) -> HostingCell[Any] | None:
        """The supervisor's cell (None for the root)."""
        ...

    @property
    def agent_class(self) -> type[Agent]: ...

    @property
    def config(self) -> Any: ...

    @property
    def system(self) -> Runtime: ...

    @property
    def mailbox(self) -> Mailbox: ...

    @property
    def stats(self) -> AgentStats: ...

    @property
    def directives(self) -> dict[type, Directive]: ...

    @property
    def stash(self) -> list[Envelope]: ...

    @property
    def unstashed(self) -> collections.deque[Envelope]: ...

    def deliver_timer(self, incarnation: int, message: Any) -> None: ...

    def expired(self, env: Envelope) -> None: ...

    def unhandled(self, env: Envelope) -> None: ...

    def mark_running(self) -> None: ...

    def incarnation_crashed(self, host: H, error: BaseException) -> None: ...

    def incarnation_stopped(self, host: H) -> None: ...

    def log_crash(self, host: H, env: Envelope, error: BaseException) -> None: ...

    def log_resumed(self, host: H, env: Envelope, error: BaseException) -> None: ...
