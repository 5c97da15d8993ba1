"""Item 1: chaos under load.

A real gateway (``--chaos``, wirings/chaos.yaml: the shipped tree with room for
many restarts) takes a steady stream of ledger appends and state puts from
several clients while another loop crashes a random agent through
``POST /v1/chaos/{name}/crash`` every few hundred ms.

Afterwards: every request got a well-formed answer (200, or 429/503 with
Retry-After and a problem body; no 500, no hang, no reset); every acknowledged
write reads back; every stream's chain verifies; restarts match the crashes
injected; nothing escalated; ``/readyz`` is 200 again.

Why restarts can be counted exactly: a chaos crash is a system message queued
in the agent's mailbox, and a mailbox outlives incarnations, so every accepted
crash (202) makes exactly one incarnation of that agent crash, even if it was
queued while the agent was restarting. Under a one_for_one supervisor that is
one restart of that agent and nothing else. Under rest_for_one (data: ledger,
state, audit; work: scheduler, jobs) a crash also restarts the later siblings,
so for those the sound claim is a range: at least the crashes injected into
the agent, at most those plus the crashes of its earlier siblings.
"""

from __future__ import annotations

import random
import time

import pytest

from tests.conftest import wait_until
from tests.reliability.conftest import (
    WIRINGS,
    Load,
    missing_writes,
    run_writers,
    stop_writers,
    variant,
)

#: Agents crashed at random, by supervisor: rest_for_one groups list their order.
ONE_FOR_ONE = ("policy", "quota", "registry", "pubsub", "webhooks", "introspect", "schema")
REST_FOR_ONE = (("ledger", "state", "audit"), ("scheduler", "jobs"))
TARGETS = ONE_FOR_ONE + tuple(name for group in REST_FOR_ONE for name in group)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("seconds", variant(8, 30))
def test_chaos_under_load_loses_nothing_acknowledged(gateways, seconds, record_property):
    gateway = gateways(wiring=WIRINGS / "chaos.yaml")
    load = Load()
    stop, clients = run_writers(gateway.url, 4, ("append", "put"), load)
    crashes: dict[str, int] = dict.fromkeys(TARGETS, 0)
    rng = random.Random(8)
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            victim = rng.choice(TARGETS)
            assert gateway.chaos(victim) == 202
            crashes[victim] += 1
            time.sleep(rng.uniform(0.15, 0.4))  # the pacing of the fault loop, not a wait
    finally:
        stop_writers(stop, clients)
    elapsed = time.monotonic() - started

    # Every injected crash lands on an incarnation: wait until the counts show them all.
    def restarts() -> dict[str, float]:
        return gateway.by_label("vibe_restarts_total", "agent")

    wait_until(
        lambda: all(restarts().get(name, 0) >= n for name, n in crashes.items()),
        60,
        "every injected crash to be restarted",
    )
    wait_until(gateway.ready, 60, "readiness back to 200")
    counted = restarts()
    for name in ONE_FOR_ONE:
        assert counted.get(name, 0) == crashes[name], (name, counted, crashes)
    for group in REST_FOR_ONE:
        for position, name in enumerate(group):
            earlier = sum(crashes[n] for n in group[:position])
            assert crashes[name] <= counted.get(name, 0) <= crashes[name] + earlier, (
                name,
                counted,
                crashes,
            )
    assert not any(gateway.by_label("vibe_escalations_total", "supervisor").values())

    assert load.violations == [], load.outcomes
    assert missing_writes(gateway, load) == []
    ok = sum(v for k, v in load.outcomes.items() if k.endswith(":200"))
    assert ok > 0
    figures = {
        "seconds": round(elapsed, 1),
        "requests": sum(load.outcomes.values()),
        "acknowledged": load.acknowledged,
        "outcomes": dict(load.outcomes),
        "crashes": sum(crashes.values()),
        "restarts": {k: int(v) for k, v in sorted(counted.items()) if v},
        "lost": 0,
    }
    record_property("figures", figures)
    print("chaos figures:", figures)
