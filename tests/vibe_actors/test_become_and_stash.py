"""States (become) and the stash (issue 20): a protocol state machine without a
hand-written dispatcher. The connection below queues sends while offline and
flushes them, in order, once connected."""

from __future__ import annotations

import pytest

from vibe_actors import (
    Agent,
    AgentCrashedError,
    Message,
    UnknownMessageError,
    WorkerSpec,
    handler,
)
from vibe_actors.testing import crash

from tests.conftest import wait_until


class Connect(Message):
    pass


class Disconnect(Message):
    pass


class Send(Message):
    text: str


class Sent(Message):
    text: str
    state: str | None


class Status(Message):
    pass


class State(Message):
    state: str | None
    stashed: int


class Fill(Message):
    pass


SENT: list[str] = []


class Connection(Agent[Connect | Disconnect | Send | Status]):
    initial_state = "offline"
    stash_capacity = 3

    @handler(when="offline")
    def connect(self, msg: Connect) -> State:
        self.become("online")
        self.unstash_all()
        return State(state=self.state_name, stashed=self.stashed)

    @handler(when="offline")
    def later(self, msg: Send) -> None:
        self.stash()  # the asker keeps waiting

    @handler(when="online")
    def send(self, msg: Send) -> Sent:
        SENT.append(msg.text)
        return Sent(text=msg.text, state=self.state_name)

    @handler(when="online")
    def disconnect(self, msg: Disconnect) -> State:
        self.become("offline")
        return State(state=self.state_name, stashed=self.stashed)

    @handler
    def status(self, msg: Status) -> State:  # every state
        return State(state=self.state_name, stashed=self.stashed)


@pytest.fixture(autouse=True)
def _clear():
    SENT.clear()


def connection(make_system):
    return make_system([WorkerSpec(name="conn", agent=Connection)]).ref("conn")


def test_messages_stashed_while_offline_are_handled_in_order_once_online(make_system):
    conn = connection(make_system)
    assert conn.ask(Status()) == State(state="offline", stashed=0)
    pending = [conn.ask_future(Send(text=t)) for t in "abc"]
    wait_until(lambda: conn.ask(Status()).stashed == 3, what="three stashed")
    assert not any(f.done() for f in pending)  # their askers wait
    assert conn.ask(Connect()) == State(state="online", stashed=0)
    assert [f.result() for f in pending] == [Sent(text=t, state="online") for t in "abc"]
    assert SENT == ["a", "b", "c"]
    assert conn.ask(Send(text="d")).state == "online"  # handled at once now


def test_a_handler_of_another_state_is_not_active(make_system):
    conn = connection(make_system)
    with pytest.raises(UnknownMessageError):
        conn.ask(Disconnect())  # only when online
    conn.ask(Connect())
    with pytest.raises(UnknownMessageError):
        conn.ask(Connect())  # only when offline
    assert conn.ask(Disconnect()).state == "offline"


def test_the_stash_is_bounded_and_kept_across_a_restart(make_system):
    conn = connection(make_system)
    pending = [conn.ask_future(Send(text=t), timeout=10) for t in "xyz"]
    wait_until(lambda: conn.ask(Status()).stashed == 3, what="three stashed")
    with pytest.raises(AgentCrashedError, match="stash is full"):
        conn.ask(Send(text="overflow"))
    # The crash restarted the agent in its initial state; the stash was kept for it.
    wait_until(lambda: conn.ask(Status()).stashed == 3, what="the stash handed over")
    conn.ask(Connect())
    assert [f.result().text for f in pending] == ["x", "y", "z"]


def test_a_restart_starts_in_the_initial_state(make_system):
    system = make_system([WorkerSpec(name="conn", agent=Connection)])
    conn = system.ref("conn")
    conn.ask(Connect())
    crash(system, "conn")
    wait_until(lambda: system.cell("conn").incarnation == 2, what="the restart")
    assert conn.ask(Status()).state == "offline"


def test_state_mistakes_are_refused():
    with pytest.raises(TypeError, match="two handlers for Send in state 'a'"):

        class Twice(Agent):
            @handler(when="a")
            def one(self, msg: Send) -> None: ...

            @handler(when="a")
            def two(self, msg: Send) -> None: ...

    with pytest.raises(TypeError, match="state name"):
        handler(when="")

    class Fine(Agent):
        @handler(when="a")
        def one(self, msg: Send) -> None: ...

    assert Send in Fine.message_types()
    assert Fine.handler_for(Send) is Fine.one
