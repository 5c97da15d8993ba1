"""ReplyFuture: the pending answer to one ask.

Pykka's future waits on a ``threading.Condition``; this one is a pair of raw
locks (a waiter lock held until the reply arrives, and a claim lock so that
exactly one reply wins), which is what makes pipelined asks cheap. The reply
is always a message: a failure is an :class:`ErrorReply`, and only
:meth:`ReplyFuture.result` turns it into an exception, in the caller's thread.
"""

from __future__ import annotations

import _thread
from collections.abc import Callable
from typing import Any

from vibe_actors._errors import (
    AgentCrashedError,
    AskError,
    DeadlineExceededError,
    EntityConflictError,
    ForbiddenError,
    MailboxFullError,
    UnavailableError,
    UnknownMessageError,
)
from vibe_actors._messages import (
    IS_ERROR_REPLY,
    AgentCrashed,
    DeadlineExceeded,
    EntityConflict,
    Forbidden,
    MailboxFull,
    Unavailable,
    UnknownMessage,
)

__all__ = ["ReplyFuture", "raise_for_error"]

_allocate_lock = _thread.allocate_lock

_ERROR_CLASSES: dict[type, type[AskError]] = {
    AgentCrashed: AgentCrashedError,
    MailboxFull: MailboxFullError,
    DeadlineExceeded: DeadlineExceededError,
    Unavailable: UnavailableError,
    UnknownMessage: UnknownMessageError,
    Forbidden: ForbiddenError,
    EntityConflict: EntityConflictError,
}


def raise_for_error(reply: Any) -> Any:
    """Return ``reply``, or raise the :class:`AskError` subclass matching an error reply."""
    if IS_ERROR_REPLY[reply.__class__]:
        raise _ERROR_CLASSES.get(type(reply), AskError)(reply)
    return reply


class ReplyFuture:
    """The reply to one ask, resolved exactly once from any thread.

    ``callback``, if given, is called with the reply in the resolving thread
    (the agent's, or the asker's on timeout); it must be quick and must not
    raise (``Ref.ask_future(callback=...)``). Asks from asyncio do not use it:
    their reply goes to the loop through a :class:`~vibe_actors._asyncio.LoopBridge`
    slot.
    """

    __slots__ = ("_callback", "_claim", "_done", "_reply", "agent", "timeout")

    def __init__(
        self,
        agent: str,
        timeout: float,
        callback: Callable[[Any], None] | None = None,
    ) -> None:
        self.agent = agent
        self.timeout = timeout
        self._callback = callback
        self._reply: Any = None
        self._claim = _allocate_lock()
        self._done = _allocate_lock()
        self._done.acquire()

    def resolve(self, reply: Any) -> bool:
        """Set the reply; returns False (and changes nothing) if it was already set."""
        if not self._claim.acquire(False):
            return False
        self._reply = reply
        self._done.release()
        callback = self._callback
        if callback is not None:
            callback(reply)
        return True

    def done(self) -> bool:
        """Whether a reply (or an error reply) has been set."""
        return self._claim.locked() and not self._done.locked()

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the reply arrives and return it; never raises.

        On timeout (default: the ask's own timeout) the future resolves itself
        with :class:`DeadlineExceeded`, which is returned; a reply arriving
        later is discarded.
        """
        limit = self.timeout if timeout is None else timeout
        if self._done.acquire(True, limit if limit >= 0 else -1):
            self._done.release()
            return self._reply
        self.resolve(DeadlineExceeded(agent=self.agent, timeout=self.timeout))
        self._done.acquire()
        self._done.release()
        return self._reply

    def result(self, timeout: float | None = None) -> Any:
        """Like :meth:`wait`, but raises :class:`AskError` (a subclass) for an error reply."""
        return raise_for_error(self.wait(timeout))

    def __repr__(self) -> str:
        state = f"reply={type(self._reply).__name__}" if self.done() else "pending"
        return f"<ReplyFuture {self.agent} {state}>"
