"""The incarnation serving the current thread, seen as what a send made in a handler needs.

A send made inside a handler inherits that message's deadline, and a blocking
ask made there is refused when only the asking thread could answer it
(:class:`~vibe_actors.SelfAsk`). :class:`~vibe_actors._ref.Ref` learns both from
:data:`serving`, through the :class:`ServingHost` protocol: it knows no
:class:`~vibe_actors._incarnation.Incarnation` (which sets :data:`serving` once
per thread), so the send path sits below the engine that runs agents.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from vibe_actors._envelope import Envelope
    from vibe_actors._future import ReplyFuture

__all__ = ["ServingHost", "serving"]


class ServingHost(Protocol):
    """What a send made in a handler needs of the incarnation running that handler."""

    #: The envelope being handled, else None (its deadline bounds the sends made for it).
    current: Envelope | None
    #: The blocking ask this thread is in, as (target, reply), else None.
    waiting: tuple[Any, ReplyFuture] | None

    @property
    def name(self) -> str: ...

    def blocking_ask(self, target: Any, future: ReplyFuture) -> None:
        """Called before this thread blocks in an ask of ``target``; raises SelfAsk when only
        this thread could answer."""
        ...


class _Serving(threading.local):
    """Per thread: the incarnation whose thread it is (None in any other thread)."""

    host: ServingHost | None = None  # a class default: no lookup miss in other threads


#: ``serving.host``: the incarnation running in the current thread, else None.
serving = _Serving()
