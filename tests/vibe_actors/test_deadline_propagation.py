"""Deadline propagation (issue 20.2): what a handler sends inherits the deadline of the
message it handles, so work stops where the original caller gave up."""

from __future__ import annotations

import threading
import time

import pytest

from vibe_actors import (
    Agent,
    DeadlineExceededError,
    Message,
    WorkerSpec,
    handler,
)

from tests.conftest import wait_until


class Relay(Message):
    """Ask (or tell, ``tell=True``) the recorder, with ``timeout`` if given."""

    timeout: float | None = None
    tell: bool = False
    wait_first: float = 0.0
    detached: bool = False
    to_self: bool = False


class Record(Message):
    pass


class Seen(Message):
    deadline: float | None


class Relayed(Message):
    mine: float | None
    theirs: float | None


SEEN: list[float | None] = []
RECORDED = threading.Event()


class Recorder(Agent):
    @handler
    def record(self, msg: Record) -> Seen:
        env = self.envelope
        SEEN.append(env.deadline if env is not None else None)
        RECORDED.set()
        return Seen(deadline=SEEN[-1])


class Relayer(Agent):
    @handler
    def record(self, msg: Record) -> None:
        env = self.envelope
        SEEN.append(env.deadline if env is not None else None)
        RECORDED.set()

    @handler
    def relay(self, msg: Relay) -> Relayed:
        env = self.envelope
        mine = env.deadline if env is not None else None
        if msg.wait_first:
            threading.Event().wait(msg.wait_first)  # let this message's deadline pass
        recorder = self.ref("recorder")
        if msg.detached:
            recorder = recorder.without_deadline()
        if msg.to_self:
            self.ref(self.name).tell(Record())
            return Relayed(mine=mine, theirs=None)
        if msg.tell:
            recorder.tell(Record())
            return Relayed(mine=mine, theirs=None)
        reply = recorder.ask(Record(), timeout=msg.timeout)
        return Relayed(mine=mine, theirs=reply.deadline)


@pytest.fixture(autouse=True)
def _reset():
    SEEN.clear()
    RECORDED.clear()


def specs() -> list[WorkerSpec]:
    return [
        WorkerSpec(name="recorder", agent=Recorder),
        WorkerSpec(name="relayer", agent=Relayer),
    ]


def test_a_nested_ask_inherits_the_remaining_deadline(make_system):
    system = make_system(specs(), ask_timeout=30.0)
    reply = system.ref("relayer").ask(Relay(), timeout=2.0)
    assert reply.mine is not None and reply.theirs == reply.mine  # not now + 30 s


def test_an_explicit_shorter_timeout_wins_and_a_longer_one_is_capped(make_system):
    system = make_system(specs())
    shorter = system.ref("relayer").ask(Relay(timeout=0.5), timeout=10.0)
    assert shorter.theirs < shorter.mine - 5
    longer = system.ref("relayer").ask(Relay(timeout=60.0), timeout=2.0)
    assert longer.theirs == longer.mine


def test_a_tell_from_a_handler_carries_the_deadline(make_system):
    system = make_system(specs())
    reply = system.ref("relayer").ask(Relay(tell=True), timeout=2.0)
    assert RECORDED.wait(5)
    assert [reply.mine] == SEEN


def test_without_a_deadline_nothing_is_inherited(make_system):
    system = make_system(specs())
    system.ref("relayer").tell(Relay(tell=True))  # a tell has no deadline
    assert RECORDED.wait(5)
    assert SEEN == [None]
    system.ref("recorder").tell(Record())  # nor has a tell from outside a handler
    wait_until(lambda: len(SEEN) == 2)
    assert SEEN[1] is None


def test_an_ask_past_the_inherited_deadline_fails_at_once_and_is_not_run(make_system):
    system = make_system(specs())
    relayer = system.ref("relayer")
    # The outer ask gives up after 0.1 s; the handler asks only after 0.3 s.
    future = relayer.ask_future(Relay(wait_first=0.3), timeout=0.1)
    with pytest.raises(DeadlineExceededError):
        future.result()
    started = time.monotonic()
    assert relayer.ask(Relay(), timeout=5.0).theirs is not None  # the agent is fine
    assert time.monotonic() - started < 4.0
    # the inner ask was refused at once: the recorder saw only the second relay's ask
    assert len(SEEN) == 1


def test_sends_to_itself_and_detached_sends_inherit_nothing(make_system):
    system = make_system(specs(), ask_timeout=30.0)
    relayer = system.ref("relayer")
    relayer.ask(Relay(to_self=True), timeout=2.0)  # its own bookkeeping: no deadline
    assert RECORDED.wait(5)
    assert SEEN == [None]
    detached = relayer.ask(Relay(detached=True), timeout=2.0)
    assert detached.theirs > detached.mine + 20  # the default ask_timeout, not the caller's
