"""Receive timeout (issue 20): ReceiveTimeout after an idle period, driven by a ManualClock."""

from __future__ import annotations

import pytest

from vibe_actors import (
    ActorSystem,
    Agent,
    Message,
    ReceiveTimeout,
    SystemConfig,
    WorkerSpec,
    handler,
)
from vibe_actors.testing import ManualClock

from tests.conftest import wait_until


class Arm(Message):
    seconds: float | None


class Work(Message):
    pass


class Timeouts(Message):
    count: int


#: ReceiveTimeouts handled (read from the test thread without messaging the agent).
TIMEOUTS: list[float] = []


class Idle(Agent):
    def __init__(self) -> None:
        super().__init__()
        self.timeouts = 0

    @handler
    def arm(self, msg: Arm) -> None:
        self.set_receive_timeout(msg.seconds)

    @handler
    def work(self, msg: Work) -> Timeouts:
        return Timeouts(count=self.timeouts)

    @handler
    def timed_out(self, msg: ReceiveTimeout) -> None:
        self.timeouts += 1
        TIMEOUTS.append(self.system.clock())


@pytest.fixture
def clocked():
    TIMEOUTS.clear()
    clock = ManualClock()
    system = ActorSystem(
        [WorkerSpec(name="idle", agent=Idle)], SystemConfig(serialize_messages=True), clock=clock
    ).start()
    yield system, clock
    system.shutdown()


def count(system: ActorSystem) -> int:
    return system.ask("idle", Work()).count


def test_an_idle_agent_gets_receive_timeout_once_per_idle_period(clocked):
    system, clock = clocked
    system.ask("idle", Arm(seconds=10))  # checks every 5 s; two quiet checks in a row fire
    start = clock.now
    clock.advance(5)  # first check: the Arm itself was activity
    clock.advance(5)  # quiet 1
    assert TIMEOUTS == []
    clock.advance(5)  # quiet 2: idle for 10..15 s
    wait_until(lambda: len(TIMEOUTS) == 1, what="one ReceiveTimeout")
    assert 10 <= TIMEOUTS[0] - start <= 15
    wait_until(lambda: system.cell("idle").host.current is None, what="done with it")
    clock.advance(5)  # its own handling is not activity, but it needs a new idle period
    assert len(TIMEOUTS) == 1
    clock.advance(5)
    wait_until(lambda: len(TIMEOUTS) == 2, what="a second one while still idle")
    assert count(system) == 2


def test_turning_it_off_stops_it(clocked):
    system, clock = clocked
    system.ask("idle", Arm(seconds=2))
    system.ask("idle", Arm(seconds=None))
    for _ in range(5):
        clock.advance(1)
    assert count(system) == 0 and TIMEOUTS == []


def test_no_timeout_while_messages_keep_coming(clocked):
    system, clock = clocked
    system.ask("idle", Arm(seconds=2))
    for _ in range(10):
        clock.advance(0.9)
        assert count(system) == 0  # the ask itself is activity
    assert TIMEOUTS == []


def test_a_non_positive_timeout_is_refused(make_system):
    system = make_system([WorkerSpec(name="idle", agent=Idle)])
    with pytest.raises(Exception, match="must be > 0"):
        system.ask("idle", Arm(seconds=0))
