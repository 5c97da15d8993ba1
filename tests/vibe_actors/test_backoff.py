"""Restart backoff in a running system, with an injected clock."""

from __future__ import annotations

from vibe_actors import ActorSystem, AgentStatus, BackoffSpec, Ping, SupervisorSpec, SystemConfig
from vibe_actors.testing import ManualClock

from tests.conftest import wait_until, worker
from tests.vibe_actors.agents import Boom


def test_second_consecutive_restart_waits_for_the_backoff_delay(journal):
    clock = ManualClock()
    spec = SupervisorSpec(
        name="sup",
        intensity=10,
        period=60,
        backoff=BackoffSpec(min=2.0, max=30.0, random_factor=0.0, reset_after=100.0),
        children=(worker("w", journal),),
    )
    system = ActorSystem(spec, SystemConfig(serialize_messages=True), clock=clock).start()
    try:
        system.tell("w", Boom())
        assert system.ask("w", Ping()).incarnation == 2  # first restart: immediate
        system.tell("w", Boom())
        clock.wait_for_timers(1)  # the backed-off restart is scheduled
        assert system.cell("w").status is AgentStatus.RESTARTING
        pending = system.ref("w").ask_future(Ping(), timeout=30)  # queues meanwhile
        clock.advance(1.9)  # returns once every timer due by then has run: none is
        assert system.cell("w").status is AgentStatus.RESTARTING  # 1.9 s < 2 s
        clock.advance(0.2)
        assert pending.result().incarnation == 3  # the queued ask reached the new incarnation
        # A quiet period longer than reset_after makes the next restart immediate again.
        clock.advance(200)
        system.tell("w", Boom())
        assert system.ask("w", Ping()).incarnation == 4
    finally:
        system.shutdown()


def test_crash_loop_is_bounded_by_intensity_not_spinning(journal):
    spec = SupervisorSpec(
        name="sup",
        intensity=3,
        period=60,
        backoff=BackoffSpec(min=0.001, max=0.01, random_factor=0.0),
        children=(worker("w", journal),),
    )
    system = ActorSystem(spec, SystemConfig(serialize_messages=True)).start()
    for _ in range(10):
        system.tell("w", Boom())
    wait_until(lambda: not system.running, what="the supervisor to give up")
    assert system.failures.escalations() == {"sup": 1}
    assert system.cell("w").restarts == 3
