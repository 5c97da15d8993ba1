"""The gateway's X-Timeout-Ms is the deadline of everything the request's handler sends."""

from __future__ import annotations

import time

from tests.vibe_actors.test_deadline_propagation import specs


def test_the_gateway_timeout_flows_down(gateway):
    system, client = gateway(specs(), {"ask_timeout": 30.0})
    sent = time.monotonic()
    reply = client.post("/v1/agents/relayer/Relay", json={}, headers={"x-timeout-ms": "1500"})
    assert reply.status_code == 200
    body = reply.json()
    assert body["theirs"] == body["mine"]
    assert body["mine"] <= sent + 1.6  # the request's X-Timeout-Ms, not ask_timeout
