"""Acting on behalf of a caller: whose authority a message carries, checked at delivery.

A message sent by trusted code (the embedding program, an agent acting for
itself) carries no caller and is never checked. A message sent *for* an
external party — the gateway's ask for an authenticated request, and every
send an agent makes later on that request's behalf (a reminder firing, a
job's asks, a pubsub event fanned out to a subscribing agent) — carries that
party's :class:`Caller`, and the system's :class:`Authorizer` decides whether
the caller may send that message type to the recipient, at the moment it is
sent. A denied tell becomes a dead letter (reason ``forbidden``); a denied ask
is answered :class:`~vibe_actors.Forbidden`. Either way the recipient never
sees it, so an agent cannot be made a confused deputy: whatever it sends on a
caller's behalf is bounded by what the caller could send directly.

With no authorizer installed (no policy agent in the tree), everything is
allowed, as the gateway does without a policy agent.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

__all__ = ["ANONYMOUS", "Authorizer", "Caller"]


class Caller(msgspec.Struct, frozen=True, gc=False):
    """The external party a message is sent on behalf of.

    ``principal`` is the authenticated name (a bearer token's principal), or
    None for an anonymous caller. Plain data: it is persisted with the work
    done on the caller's behalf (a reminder, a job) and crosses processes.
    """

    principal: str | None = None

    def __repr__(self) -> str:
        return f"Caller({self.principal!r})"


#: The anonymous external caller.
ANONYMOUS = Caller()


class Authorizer(Protocol):
    """Decides whether ``caller`` may send ``message_type`` (a type name) to ``agent``.

    Called in the sending thread on every send that carries a caller: it must
    be quick, thread-safe and must not block or raise (it may publish an event
    for the audit trail). Returns None to allow,
    else the reason of the denial (shown to the caller and in the audit trail).
    """

    def authorize(
        self, caller: Caller, agent: str, message_type: str, sender: str | None
    ) -> str | None:
        """None when allowed; else why not (``sender``: the agent sending for the caller)."""
        ...
