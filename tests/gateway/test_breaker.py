"""A poison request opens a circuit for its (agent, message type): it cannot spend restarts."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from gateway import BreakerSettings
from gateway._breaker import CrashBreaker
from vibe_actors import CircuitOpened, SupervisorSpec

from tests.conftest import wait_until, worker


def test_repeated_handler_crashes_open_the_circuit_and_the_process_survives(gateway):
    # The supervisor allows 3 restarts in 60 s; 4 crashes would make the root give up.
    root = SupervisorSpec(name="root", children=(worker("w"),), intensity=3, period=60.0)
    system, client = gateway(
        root, breaker=BreakerSettings(crashes=2, window=60.0, cooldown=0.2, max_cooldown=0.4)
    )
    opened: list[CircuitOpened] = []
    system.events.subscribe(lambda e: opened.append(e) if isinstance(e, CircuitOpened) else None)
    codes = []
    for _ in range(20):  # a client hammering a poison request
        reply = client.post("/v1/agents/w/Boom", json={"why": "poison"})
        codes.append(reply.status_code)
        if reply.status_code == 503 and reply.json()["type"] == "/problems/circuit-open":
            assert reply.headers["retry-after"].isdigit()
        wait_until(lambda: system.status("w").value == "running", what="w running")
    assert system.running, "the supervisors gave up"
    assert system.cell("w").restarts <= 3
    assert codes[:2] == [503, 503]  # the two crashes (AgentCrashed is a 503 too)
    assert len(opened) >= 1 and (opened[0].agent, opened[0].message_type) == ("w", "Boom")
    # Other types of the same agent, and probes, keep serving while it is open.
    assert client.post("/v1/agents/w/Echo", json={"text": "x"}).status_code == 200
    assert client.get("/healthz").status_code == 200
    samples = client.app.metrics.registry.get_sample_value
    assert samples("vibe_http_circuit_opened_total", {"agent": "w", "message_type": "Boom"}) >= 1
    assert samples("vibe_http_circuit_refused_total", {"agent": "w", "message_type": "Boom"}) > 0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_state_machine(make_system):
    system = make_system([worker("w")])
    clock = Clock()
    settings = BreakerSettings(crashes=2, window=10.0, cooldown=5.0, max_cooldown=8.0)
    breaker = CrashBreaker(system, CollectorRegistry(), settings, clock)
    breaker.crashed("w", "Boom", "r1")
    clock.now = 11.0  # the first crash left the window: still closed
    breaker.crashed("w", "Boom", "r2")
    assert breaker.refuse("w", "Boom") is None and not breaker.tripped
    breaker.crashed("w", "Boom", "r3")  # two within the window: open for 5 s
    assert breaker.refuse("w", "Boom") == 5
    assert breaker.refuse("w", "Echo") is None  # per message type
    clock.now = 16.0  # half-open: one trial goes through, the others wait
    assert breaker.refuse("w", "Boom") is None
    assert breaker.refuse("w", "Boom") == 1
    breaker.crashed("w", "Boom", "r4")  # the trial crashed: open again, twice as long
    assert breaker.refuse("w", "Boom") == 8
    clock.now = 24.0
    assert breaker.refuse("w", "Boom") is None
    breaker.crashed("w", "Boom", "r5")
    assert breaker.refuse("w", "Boom") == 8  # capped at max_cooldown
    clock.now = 32.0
    assert breaker.refuse("w", "Boom") is None
    breaker.answered("w", "Boom")  # the trial was answered: closed
    assert not breaker.tripped and breaker.refuse("w", "Boom") is None


def test_a_trial_whose_client_left_does_not_hold_the_circuit(make_system):
    system = make_system([worker("w")])
    clock = Clock()
    breaker = CrashBreaker(
        system, CollectorRegistry(), BreakerSettings(crashes=1, cooldown=2.0), clock
    )
    breaker.crashed("w", "Boom", "r1")
    clock.now = 2.0
    assert breaker.refuse("w", "Boom") is None  # the trial; its client disconnects
    assert breaker.refuse("w", "Boom") == 1
    clock.now = 4.0
    assert breaker.refuse("w", "Boom") is None  # another trial after a cooldown


def test_bad_settings_are_refused():
    for bad in ({"crashes": -1}, {"window": 0}, {"cooldown": float("inf")}):
        with pytest.raises(ValueError):
            BreakerSettings(**bad)


def test_a_cooldown_longer_than_its_cap_is_refused():
    # The first opening would outlast max_cooldown, and a crashed trial then shorten it.
    with pytest.raises(ValueError, match=r"cooldown \(700\) must not exceed max_cooldown \(600\)"):
        BreakerSettings(cooldown=700.0)
    assert BreakerSettings(cooldown=600.0).max_cooldown == 600.0
