"""Item 3: hung agents.

A hang injected through ``POST /v1/chaos/{name}/hang?seconds=60`` blocks the
agent's thread. The watchdog of the shipped wiring.yaml (heartbeat every
``interval`` s, ``deadline`` s to answer, hung after ``misses`` misses without
progress) must declare it hung and have it replaced within
``interval * misses + deadline`` plus slack for a busy machine, while every
other agent keeps answering; the stuck thread's stack is in the watchdog's
``Report`` and in the log.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import yaml

from phoenix import _durations as durations

from tests.conftest import wait_until
from tests.reliability.conftest import ROOT, variant

#: Seconds allowed on top of the watchdog's own budget (2 shared cores, busy).
SLACK = 15.0
OTHERS = ("policy", "quota", "ledger", "state", "audit", "registry", "pubsub", "webhooks",
          "scheduler", "jobs", "introspect", "schema", "watchdog")  # fmt: skip


#: Agents a replacement restarts too (later siblings under rest_for_one, as in wiring.yaml):
#: they answer 503 while restarting, so they are not among the agents that must keep serving.
COLLATERAL = {"ledger": ("state", "audit"), "state": ("audit",), "scheduler": ("jobs",)}


def _watchdog_budget() -> float:
    wiring = yaml.safe_load((ROOT / "wiring.yaml").read_text())
    observability = next(c for c in wiring["root"]["children"] if c["name"] == "observability")
    config = next(c for c in observability["children"] if c["name"] == "watchdog")["config"]
    return _seconds(config["interval"]) * config["misses"] + _seconds(config["deadline"])


def _seconds(value: object) -> float:
    """A duration of the wiring (``2s``, or a plain number of seconds) in seconds."""
    if isinstance(value, int | float):
        return float(value)
    seconds = durations.parse(str(value), "s")
    assert seconds is not None, value
    return float(seconds)


def _incidents(gateway) -> list[dict]:
    return gateway.ask("watchdog", "Report")["incidents"]


def _keep_asking(url: str, names: tuple[str, ...], stop: threading.Event, bad: list[str]) -> int:
    """Ping every agent in ``names`` and append to the ledger until ``stop``; count answers."""
    answered = 0
    with httpx.Client(base_url=url, timeout=15, headers={"x-timeout-ms": "5000"}) as client:
        while not stop.is_set():
            for name in names:
                response = client.post(f"/v1/agents/{name}/Ping", json={})
                if response.status_code != 200:
                    bad.append(f"{name}: {response.status_code} {response.text[:200]}")
                answered += 1
            if "ledger" in names:
                response = client.post(
                    "/v1/agents/ledger/Append", json={"stream": "alive", "data": answered}
                )
                if response.status_code != 200:
                    bad.append(f"ledger append: {response.status_code}")
    return answered


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "victims", variant(["state"], ["ledger", "pubsub", "registry", "scheduler", "schema"])
)
def test_a_hung_agent_is_replaced_within_the_watchdog_budget(gateways, victims, record_property):
    budget = _watchdog_budget() + SLACK
    gateway = gateways()
    restarted = {n for v in victims for n in (v, *COLLATERAL.get(v, ()))}
    others = tuple(n for n in OTHERS if n not in restarted)
    stop, bad, result = threading.Event(), [], {}
    prober = threading.Thread(
        target=lambda: result.update(n=_keep_asking(gateway.url, others, stop, bad)),
        daemon=True,
    )
    prober.start()
    started = time.monotonic()
    for victim in victims:
        assert gateway.chaos(victim, "hang", 60) == 202
    try:
        replaced: dict[str, float] = {}

        def all_replaced() -> bool:
            for incident in _incidents(gateway):
                if incident["agent"] in victims and incident["replaced"]:
                    replaced.setdefault(incident["agent"], time.monotonic() - started)
            return set(replaced) == set(victims)

        wait_until(all_replaced, budget, f"the watchdog to replace {victims} within {budget} s")
        for victim in victims:  # the replacement serves, under the same name
            pong = gateway.ask(victim, "Ping")
            assert pong["incarnation"] >= 2, pong
        wait_until(gateway.ready, 30, "readiness back to 200")
    finally:
        stop.set()
        prober.join(60)
    assert not prober.is_alive()
    assert bad == [], bad[:10]
    assert result["n"] > 0
    incidents = [i for i in _incidents(gateway) if i["agent"] in victims]
    for incident in incidents:
        assert "_injected_fault" in (incident["stack"] or ""), incident
    logs = gateway.logs()
    assert logs.count('"agent_declared_hung"') >= len(victims)
    assert "_injected_fault" in logs  # the stack is in the log line too
    figures = {
        "budget_s": budget,
        "replaced_after_s": {k: round(v, 1) for k, v in replaced.items()},
        "other_answers": result["n"],
    }
    record_property("figures", figures)
    print("hung figures:", figures)
