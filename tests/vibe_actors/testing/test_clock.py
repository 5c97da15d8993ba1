"""ManualClock: timers, restart backoff and intensity windows driven without sleeping."""

from __future__ import annotations

import threading
import time

import pytest

from vibe_actors import (
    ActorSystem,
    AgentRestarted,
    AgentStatus,
    BackoffSpec,
    Ping,
    SupervisorGaveUp,
    SupervisorSpec,
    SystemConfig,
    SystemFailed,
)
from vibe_actors._timers import TimerService
from vibe_actors.testing import ManualClock, crash, record_events

from tests.conftest import worker


@pytest.fixture
def service_and_clock():
    clock = ManualClock()
    service = TimerService(clock)
    yield service, clock
    service.stop()


def test_advance_runs_the_due_timers_before_returning(service_and_clock):
    service, clock = service_and_clock
    fired: list[float] = []
    service.call_later(2.0, lambda: fired.append(clock.now))
    service.call_later(5.0, lambda: fired.append(clock.now))
    clock.advance(1.99)
    assert fired == []
    clock.advance(0.01)
    assert fired == [1002.0]
    clock.advance(10)
    assert fired == [1002.0, 1012.0]
    assert clock.pending() == 0


def test_a_repeating_timer_fires_once_per_period_passed(service_and_clock):
    service, clock = service_and_clock
    ticks = []
    service.call_every(1.0, lambda: ticks.append(1))
    clock.advance(3.5)
    assert len(ticks) == 3
    assert clock.pending() == 1


def test_jump_moves_exactly_to_the_next_timer(service_and_clock):
    service, clock = service_and_clock
    fired = []
    service.call_later(7.25, lambda: fired.append(clock.now))
    assert clock.jump() == 7.25
    assert fired == [1007.25]
    with pytest.raises(AssertionError, match="no timer is pending"):
        clock.jump()


def test_time_never_goes_back():
    with pytest.raises(ValueError, match="cannot go back"):
        ManualClock().advance(-1)


def test_wait_for_timers_sees_a_timer_scheduled_by_another_thread(service_and_clock):
    service, clock = service_and_clock
    go = threading.Event()

    def later() -> None:
        go.wait(5)
        service.call_later(1.0, lambda: None)

    threading.Thread(target=later, daemon=True).start()
    go.set()
    clock.wait_for_timers(1, timeout=5)
    assert clock.pending() == 1
    with pytest.raises(AssertionError, match="2 pending timer"):
        clock.wait_for_timers(2, timeout=0.01)


def test_a_callback_that_raises_does_not_block_advance(service_and_clock):
    service, clock = service_and_clock
    fired = []
    service.call_later(1.0, lambda: 1 / 0)
    service.call_later(1.0, lambda: fired.append(1))
    clock.advance(1)
    assert fired == [1]


def test_settle_returns_at_once_on_a_stopped_service():
    clock = ManualClock()
    service = TimerService(clock)
    service.call_later(1.0, lambda: None)
    service.stop()
    assert service.settle(0.01)
    clock.advance(5)  # a stopped service is no longer driven
    assert clock.pending() == 0


def _system(clock: ManualClock, journal, **sup) -> ActorSystem:
    spec = SupervisorSpec(name="sup", children=(worker("w", journal),), **sup)
    return ActorSystem(spec, SystemConfig(serialize_messages=True), clock=clock).start()


def test_three_crashes_in_five_seconds_escalate_in_milliseconds(journal):
    started = time.perf_counter()
    clock = ManualClock()
    backoff = BackoffSpec(min=1.0, max=1.0, random_factor=0.0, reset_after=60.0)
    system = _system(clock, journal, intensity=2, period=5.0, backoff=backoff)
    try:
        with record_events(system) as events:
            crash(system, "w")  # t=0: restarted at once
            events.wait_for(AgentRestarted)
            clock.advance(1.0)
            crash(system, "w")  # t=1: second consecutive restart backs off 1 s
            clock.wait_for_timers(1)
            clock.advance(1.0)
            events.wait_for(AgentRestarted)
            clock.advance(2.0)
            crash(system, "w")  # t=4: a third restart within 5 s
            gave_up = events.wait_for(SupervisorGaveUp)
        assert gave_up.supervisor == "sup"
        with pytest.raises(SystemFailed):
            system.wait(5)
    finally:
        system.shutdown()
    # Driven by the ManualClock: on real time the backoff and the advances take 3 s at least.
    assert time.perf_counter() - started < 3.0


def test_crashes_five_seconds_apart_never_escalate(journal):
    clock = ManualClock()
    backoff = BackoffSpec(min=1.0, max=1.0, random_factor=0.0, reset_after=3.0)
    system = _system(clock, journal, intensity=1, period=5.0, backoff=backoff)
    try:
        with record_events(system) as events:
            for incarnation in (2, 3, 4):
                crash(system, "w")
                events.wait_for(AgentRestarted, where=lambda e, n=incarnation: e.incarnation == n)
                clock.advance(5.0)  # past the period, and past reset_after: no backoff
        assert system.running
        assert system.ask("w", Ping()).incarnation == 4
    finally:
        system.shutdown()


def test_backoff_delays_the_restart_by_exactly_its_delay(journal):
    clock = ManualClock()
    backoff = BackoffSpec(min=2.0, max=30.0, random_factor=0.0, reset_after=100.0)
    system = _system(clock, journal, intensity=10, period=60.0, backoff=backoff)
    try:
        crash(system, "w")
        assert system.ask("w", Ping()).incarnation == 2  # the first restart is immediate
        crash(system, "w")
        clock.wait_for_timers(1)
        pending = system.ref("w").ask_future(Ping(), timeout=5)  # queues meanwhile
        clock.advance(1.999)
        system.ask("sup", Ping())  # the supervisor handled whatever the clock delivered
        assert system.status("w") is AgentStatus.RESTARTING
        clock.advance(0.001)
        assert pending.result().incarnation == 3
    finally:
        system.shutdown()


def test_pending_and_wait_for_timers_within(service_and_clock):
    service, clock = service_and_clock
    service.call_later(10.0, lambda: None)
    assert clock.pending() == 1 and clock.pending(within=2.0) == 0
    with pytest.raises(AssertionError, match="due within 2s"):
        clock.wait_for_timers(1, within=2.0, timeout=0.01)
    service.call_later(1.0, lambda: None)
    clock.wait_for_timers(1, within=2.0)
    assert repr(clock) == "ManualClock(now=1000, pending=2)"
