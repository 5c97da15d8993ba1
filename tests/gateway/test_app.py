"""The HTTP API against a real server: every route and every error status."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from vibe_actors import SupervisorSpec, WorkerSpec
from vibe_actors.agents.introspect import Introspect, IntrospectConfig

from tests.conftest import wait_until, worker
from tests.vibe_actors.agents import Block

JSON = {"content-type": "application/json"}


def tree(journal=None, intensity=5):
    return SupervisorSpec(name="root", intensity=intensity, children=(worker("w", journal),))


def test_probes(gateway):
    _, client = gateway(tree())
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_ask_returns_the_reply_with_its_type_tag_and_request_id(gateway):
    _, client = gateway(tree())
    response = client.post("/v1/agents/w/Add", json={"n": 5}, headers={"x-request-id": "req-42"})
    assert response.status_code == 200
    assert response.json() == {"type": "Total", "total": 5}
    assert response.headers["x-request-id"] == "req-42"
    generated = client.post("/v1/agents/w/Ping", json={}).headers["x-request-id"]
    assert len(generated) == 32


def test_agents_listing_and_detail(gateway):
    _, client = gateway(tree())
    agents = client.get("/v1/agents").json()
    assert agents == [
        {
            "name": "w",
            "kind": "worker",
            "status": "running",
            "restarts": 0,
            "mailbox_size": 0,
            "messages": sorted(agents[0]["messages"]),
            "agent": "tests.vibe_actors.agents:Worker",
            "incarnation": 1,
            "handled": 0,
            "rate": 0.0,
            "last_failure": None,
            "last_failure_at": None,
            "last_traceback": None,
            "degraded": None,
            "impaired": None,
            "placement": "local",
            "store": None,
        }
    ]
    assert {"Add", "Ping", "Echo"} <= set(agents[0]["messages"])
    detail = client.get("/v1/agents/w").json()
    assert detail["schemas"]["Add"]["properties"]["n"] == {"type": "integer"}
    missing = client.get("/v1/agents/nobody")
    assert missing.status_code == 404 and missing.json()["detail"] == "no agent named 'nobody'"


def test_views_come_from_the_introspect_agent_when_it_is_wired(gateway):
    spec = SupervisorSpec(
        name="root",
        children=(
            worker("w"),
            WorkerSpec(name="introspect", agent=Introspect,
                       config=IntrospectConfig(sample_interval=0.05)),
        ),
    )  # fmt: skip
    system, client = gateway(spec)
    for n in range(50):
        client.post("/v1/agents/w/Add", json={"n": n})

    def rate() -> float:
        return next(a for a in client.get("/v1/agents").json() if a["name"] == "w")["rate"]

    wait_until(lambda: rate() > 0, what="a rate, which only the introspect agent measures")
    assert client.get("/v1/agents/w").json()["handled"] >= 50
    assert client.get("/v1/agents/nobody").status_code == 404
    assert [c["name"] for c in client.get("/v1/tree").json()["children"]] == ["w", "introspect"]
    system.inject_fault("introspect", "hang", 1.0)  # busy: the views time out, nothing hangs
    response = client.get("/v1/agents", headers={"x-timeout-ms": "100"})
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"


def test_tree_and_openapi(gateway):
    _, client = gateway(tree())
    root = client.get("/v1/tree").json()
    assert root["name"] == "root" and root["children"][0]["name"] == "w"
    spec = client.get("/v1/openapi.json").json()
    assert spec["openapi"] == "3.1.0"
    operation = spec["paths"]["/v1/agents/w/Add"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Add"
    }
    assert "Total" in spec["components"]["schemas"]


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "slug"),
    [
        ("/v1/agents/w/Add", b"{not json", JSON, 400, "malformed-json"),
        ("/v1/agents/w/Add", b'{"n": "five"}', JSON, 422, "invalid-body"),
        ("/v1/agents/w/Add", b'{"n": 1, "zzz": 2}', JSON, 422, "invalid-body"),
        ("/v1/agents/ghost/Add", b"{}", JSON, 404, "unknown-agent"),
        ("/v1/agents/w/Nothing", b"{}", JSON, 404, "unknown-message-type"),
        (
            "/v1/agents/w/Add",
            b'{"n": 1}',
            {"content-type": "text/plain"},
            415,
            "unsupported-media-type",
        ),
        ("/v1/agents/w/Nope", b"{}", JSON, 500, "refused"),
        ("/v1/agents/w/Unknown", b"{}", JSON, 404, "unknown-message-type"),
        ("/v1/agents/w/Boom", b"{}", JSON, 503, "agent-crashed"),
        ("/v1/agents/w/Add", b'{"n": 1}', {**JSON, "x-timeout-ms": "soon"}, 400, "bad-timeout"),
        ("/nowhere", b"", {}, 404, "not-found"),
    ],
)
def test_errors_are_problem_json(gateway, path, body, headers, status, slug):
    _, client = gateway(tree())
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == f"/problems/{slug}"
    assert problem["status"] == status
    assert problem["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text


def test_validation_errors_name_the_field(gateway):
    _, client = gateway(tree())
    problem = client.post("/v1/agents/w/Add", json={"n": "five"}).json()
    assert problem["errors"] == [{"path": "$.n", "message": "Expected `int`, got `str`"}]


def test_wrong_method_is_405_with_allow(gateway):
    _, client = gateway(tree())
    response = client.get("/v1/agents/w/Add")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert client.post("/healthz").status_code == 405


def test_body_over_the_limit_is_413(gateway):
    _, client = gateway(tree(), max_body_bytes=64)
    response = client.post("/v1/agents/w/Echo", json={"text": "x" * 100})
    assert response.status_code == 413


def test_deadline_exceeded_is_504_and_restarting_is_503(gateway, journal):
    system, client = gateway(tree(journal))
    system.tell("w", Block())
    assert journal.entered.wait(5)
    response = client.post("/v1/agents/w/Ping", json={}, headers={"x-timeout-ms": "50"})
    assert response.status_code == 504
    journal.gate.set()


def test_auth_bearer_tokens(gateway):
    _, client = gateway(tree(), tokens={"alice": "s3cret-token"})
    assert client.get("/healthz").status_code == 200  # probes stay open
    assert client.get("/metrics").status_code == 200
    denied = client.get("/v1/agents")
    assert denied.status_code == 401 and denied.headers["www-authenticate"].startswith("Bearer")
    wrong = client.get("/v1/agents", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "s3cret" not in wrong.text
    ok = client.get("/v1/agents", headers={"authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200


def test_metrics_count_requests_by_route_template(gateway):
    _, client = gateway(tree())
    client.post("/v1/agents/w/Add", json={"n": 1})
    client.post("/v1/agents/w/Add", json={"n": "x"})
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    samples = {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for s in families["vibe_http_requests"].samples
        if s.name == "vibe_http_requests_total"
    }
    assert samples[("/v1/agents/{name}/{type}", "POST", "200")] == 1
    assert samples[("/v1/agents/{name}/{type}", "POST", "422")] == 1
    assert "vibe_messages" in families and "process_cpu_seconds" in families


def test_chaos_is_404_unless_enabled(gateway):
    _, client = gateway(tree())
    assert client.post("/v1/chaos/w/crash").status_code == 404


def test_chaos_crash_gives_503_then_200_and_shows_the_restart(gateway):
    system, client = gateway(tree(), chaos=True)
    client.post("/v1/agents/w/Add", json={"n": 7})
    assert client.post("/v1/chaos/w/crash").status_code == 202
    wait_until(lambda: system.cell("w").restarts == 1 and system.status("w").value == "running")
    assert client.post("/v1/agents/w/Ping", json={}).status_code == 200
    agent = next(a for a in client.get("/v1/agents").json() if a["name"] == "w")
    assert agent["restarts"] == 1
    assert 'vibe_restarts_total{agent="w"} 1.0' in client.get("/metrics").text


def test_readyz_names_the_failing_agent(gateway, journal):
    system, client = gateway(tree(journal), chaos=True)
    system.cell("w").stop()
    system.cell("w").terminate("test")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "not_ready", "failing": ["w"]}
    assert json.loads(client.post("/v1/agents/w/Ping", json={}).text)["status"] == 503


def test_requests_during_a_restart_get_a_fast_503_with_retry_after(gateway):
    from vibe_actors import AgentStatus, BackoffSpec

    slow_second_restart = SupervisorSpec(
        name="root",
        intensity=5,
        backoff=BackoffSpec(min=30.0, max=30.0, random_factor=0.0),
        children=(worker("w"), worker("other")),
    )
    system, client = gateway(slow_second_restart, chaos=True)
    client.post("/v1/agents/w/Add", json={"n": 3})
    assert client.post("/v1/chaos/w/crash").status_code == 202  # first restart: immediate
    wait_until(lambda: system.cell("w").restarts == 1, what="the first restart")
    assert client.post("/v1/chaos/w/crash").status_code == 202  # second: backs off 30 s
    wait_until(lambda: system.status("w") is AgentStatus.RESTARTING, what="w restarting")
    response = client.post("/v1/agents/w/Ping", json={}, headers={"x-timeout-ms": "20000"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.elapsed.total_seconds() < 10.0  # answered, not a wait for the 20 s deadline
    assert client.post("/v1/agents/other/Ping", json={}).status_code == 200  # others serve
    assert client.get("/readyz").json() == {"status": "not_ready", "failing": ["w"]}
    assert client.get("/v1/agents/w").json()["status"] == "restarting"
