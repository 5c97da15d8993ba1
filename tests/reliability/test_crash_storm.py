"""Item 2: crash storms.

An agent crashing faster than its supervisor's intensity escalates up the
tree exactly as the wiring says: the supervisor restarts it ``intensity``
times, the next crash makes the supervisor give up, its parent restarts the
supervisor (counted as that supervisor's restart) within its own intensity,
and when the root gives up the gateway exits 1 with one clear line.

The expected sequence is computed from the wiring file itself (a two-level
model: the victim's supervisor and the root), then checked one crash at a
time against ``/metrics``. Each crash is injected only once the victim
answers again, so the crashes are sequential and the windows are the only
clock that matters (each run takes seconds, well inside every ``period``).

Backoff: a crash loop (an agent that crashes right after each start) is run
with the default backoff and with the backoff off; the CPU time of the
gateway process over the same window is reported for both.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import wait_until
from tests.reliability.conftest import ROOT, WIRINGS, cpu_seconds, variant


def _chain(wiring: Path, victim: str) -> list[dict[str, Any]]:
    """The supervisors from the victim's parent up to the root, as written in the wiring."""

    def search(node: dict[str, Any], path: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        for child in node.get("children", ()):
            if child["name"] == victim:
                return [node, *path]
            found = search(child, [node, *path]) if "children" in child else None
            if found:
                return found
        return None

    chain = search(yaml.safe_load(wiring.read_text())["root"], [])
    assert chain is not None and len(chain) == 2, "the model covers victim -> supervisor -> root"
    return chain


def _expected_steps(intensity: int, root_intensity: int) -> list[tuple[int, int, int]]:
    """After each crash: (victim restarts, supervisor escalations, supervisor restarts).

    A restarted supervisor starts with an empty restart window; the last step
    is the root giving up.
    """
    steps, victim, escalations, window = [], 0, 0, 0
    while True:
        if window < intensity:
            window += 1
            victim += 1
        else:
            escalations += 1
            window = 0
        steps.append((victim, escalations, min(escalations, root_intensity)))
        if escalations > root_intensity:
            return steps


def _counts(gateway, victim: str, supervisor: str) -> tuple[int, int, int] | None:
    try:
        restarts = gateway.by_label("vibe_restarts_total", "agent")
        escalations = gateway.by_label("vibe_escalations_total", "supervisor")
    except httpx.TransportError:
        return None  # the process is exiting
    return (
        int(restarts.get(victim, 0)),
        int(escalations.get(supervisor, 0)),
        int(restarts.get(supervisor, 0)),
    )


def _answers(gateway, victim: str) -> bool:
    try:
        response = httpx.post(f"{gateway.url}/v1/agents/{victim}/Ping", json={}, timeout=5)
    except httpx.TransportError:
        return False
    return response.status_code == 200


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("wiring", "victim"),
    variant((WIRINGS / "storm.yaml", "victim"), (ROOT / "wiring.yaml", "policy")),
)
def test_a_crash_storm_escalates_as_the_wiring_says_then_exits_1(
    gateways, wiring, victim, record_property
):
    supervisor, root = _chain(wiring, victim)
    steps = _expected_steps(supervisor.get("intensity", 1), root.get("intensity", 1))
    gateway = gateways(wiring=wiring)
    started = time.monotonic()
    for number, expected in enumerate(steps, 1):
        assert gateway.chaos(victim) == 202, f"crash {number}"
        if number == len(steps):
            break
        wait_until(
            lambda expected=expected: _counts(gateway, victim, supervisor["name"]) == expected,
            30,
            f"crash {number} of {len(steps)} to give {expected}",
        )
        wait_until(lambda: _answers(gateway, victim), 30, f"{victim} to answer after {number}")
    # The last crash is one more than the root allows: the process exits 1, saying why.
    code = gateway.wait(60)
    elapsed = time.monotonic() - started
    logs = gateway.logs()
    assert code == 1, logs[-3000:]
    failure = [
        event["problem"]
        for event in map(json.loads, logs.splitlines())
        if event["event"] == "gateway_failed"
    ]  # and every line is JSON (the gateway's default format)
    assert len(failure) == 1, logs[-3000:]
    assert failure[0].startswith("the actor system failed: "), failure
    assert "Traceback" not in logs.split("system_failed_stopping_server")[-1]
    record_property("crashes", len(steps))
    print(f"storm: {len(steps)} crashes of {victim} in {elapsed:.1f} s -> exit 1: {failure[0]}")


def _crash_loop_figures(gateways, wiring: Path, seconds: float) -> tuple[float, int]:
    """(CPU seconds, restarts) of the gateway over ``seconds`` of a crash loop."""
    gateway = gateways(wiring=wiring, chaos=False, args=("--log-level", "error"), ready=False)
    gateway.wait_healthy()
    wait_until(
        lambda: (
            gateway.by_label("vibe_restarts_total", "agent").get("loop", 0) >= 10
        ),  # the delay reaches its cap by then
        30,
        "the crash loop to turn",
    )
    restarts_before = gateway.by_label("vibe_restarts_total", "agent")["loop"]
    cpu_before, t0 = cpu_seconds(gateway.pid), time.monotonic()
    time.sleep(seconds)  # the measuring window itself
    cpu = cpu_seconds(gateway.pid) - cpu_before
    window = time.monotonic() - t0
    restarts = gateway.by_label("vibe_restarts_total", "agent")["loop"] - restarts_before
    gateway.close()
    assert gateway.process.returncode == 0
    return cpu / window, int(restarts)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("seconds", variant(4, 20))
def test_backoff_keeps_a_crash_loop_from_spinning_the_cpu(gateways, seconds, record_property):
    spinning_cpu, spinning_restarts = _crash_loop_figures(
        gateways, WIRINGS / "crashloop_nobackoff.yaml", seconds
    )
    backoff_cpu, backoff_restarts = _crash_loop_figures(
        gateways, WIRINGS / "crashloop_backoff.yaml", seconds
    )
    figures = {
        "window_s": seconds,
        "no_backoff": {"cpu_share": round(spinning_cpu, 3), "restarts": spinning_restarts},
        "backoff": {"cpu_share": round(backoff_cpu, 3), "restarts": backoff_restarts},
    }
    record_property("figures", figures)
    print("crash loop figures:", figures)
    # Counts, not timings: without backoff the loop turns freely; with it the
    # delay has reached its 5 s cap after the first few restarts.
    assert spinning_restarts > 10 * seconds
    assert backoff_restarts <= seconds / 5 + 1
    assert backoff_cpu < 0.5  # an idle gateway uses a few percent of one core
