"""Envelopes: a message plus the metadata the runtime needs to deliver it."""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from vibe_actors._authz import Caller

__all__ = ["Control", "Envelope", "ReplySlot"]


class ReplySlot(Protocol):
    """Where an ask's reply goes: a :class:`~vibe_actors.ReplyFuture` (threads) or a
    :class:`~vibe_actors._asyncio.LoopReply` (coroutines)."""

    timeout: float

    def resolve(self, reply: Any) -> bool:
        """Deliver ``reply``; the first reply wins."""
        ...


class Envelope(msgspec.Struct, gc=False):
    """One message in a mailbox.

    ``deadline`` is a ``time.monotonic()`` instant or ``None`` (tells); an ask
    whose deadline passed before its handler starts is not executed.
    ``attempt`` counts redeliveries (0 for the first). ``caller`` is the external
    party the message is sent on behalf of (None: trusted code; see
    :mod:`vibe_actors._authz`), checked when sent. ``entity`` is the id of the
    entity it is for, when sent to an entity kind (None: to an agent). ``trace`` is
    the sender's span context and send time when tracing is on, else None (see
    :mod:`vibe_actors._tracing`). A C-level struct, not
    tracked by the garbage collector (it never takes part in a cycle): building
    one is on every send's path.
    """

    message: Any
    reply: ReplySlot | None = None
    request_id: str | None = None
    sender: str | None = None
    deadline: float | None = None
    attempt: int = 0
    caller: Caller | None = None
    entity: str | None = None
    trace: Any = None


class Control:
    """A wake-up put into a mailbox to make one incarnation's loop check its stop flag.

    It carries the incarnation number so that a later incarnation reading the
    same mailbox ignores it. It bypasses the mailbox bound and is never a
    dead letter.
    """

    __slots__ = ("incarnation",)

    def __init__(self, incarnation: int) -> None:
        self.incarnation = incarnation
