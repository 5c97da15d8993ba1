"""Messages: the error-reply test the hot paths use instead of isinstance."""

from __future__ import annotations

import vibe_actors as va
from vibe_actors._messages import IS_ERROR_REPLY


class Conflict(va.ErrorReply):
    """A domain error reply, as an agent defines its own."""

    version: int = 0


class Deeper(Conflict):
    pass


def test_is_error_reply_agrees_with_isinstance_for_every_kind_of_value() -> None:
    values = [
        va.AgentCrashed(agent="a", error="boom"),
        va.DeadlineExceeded(agent="a", timeout=1.0),
        Conflict(detail="stale"),
        Deeper(version=2),
        va.Pong(agent="a", incarnation=1),
        va.Ping(),
        None,
        42,
        "text",
    ]
    for value in values * 2:  # the second pass reads what the first one filled in
        assert IS_ERROR_REPLY[type(value)] is isinstance(value, va.ErrorReply), value
    assert IS_ERROR_REPLY[Deeper] and not IS_ERROR_REPLY[va.Pong]
