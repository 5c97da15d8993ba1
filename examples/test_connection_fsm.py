"""The state machine example: sends wait while offline and go out in order once online."""

from __future__ import annotations

import pytest
from connection_fsm import Connect, Disconnect, Send, Sent, State, Status

from vibe_actors import UnknownMessageError

WIRING = """
root:
  name: root
  children:
    - name: conn
      agent: connection_fsm:Connection
"""


@pytest.mark.wiring(WIRING)
def test_sends_wait_offline_and_go_out_in_order_online(actor_system):
    conn = actor_system.ref("conn")
    waiting = [conn.ask_future(Send(text=t)) for t in ("a", "b")]
    assert conn.ask(Status()) == State(state="offline", stashed=2)
    assert conn.ask(Connect()) == State(state="online", stashed=0)
    assert [f.result() for f in waiting] == [Sent(text="a"), Sent(text="b")]
    assert conn.ask(Disconnect()).state == "offline"
    with pytest.raises(UnknownMessageError):
        conn.ask(Disconnect())  # a handler of the "online" state only
