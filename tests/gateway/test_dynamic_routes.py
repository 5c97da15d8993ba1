"""``POST /v1/supervisors/{name}/children`` and ``DELETE /v1/agents/{name}``: codes, policy."""

from __future__ import annotations

import pytest

from vibe_actors import SupervisorSpec, WorkerSpec
from vibe_actors.agents.policy import Policy, PolicyConfig, Rule

from tests.conftest import wait_until, worker
from tests.phoenix.agents import Counter
from tests.vibe_actors.agents import Worker
from tests.vibe_actors.dynamic_agents import Fragile

ALICE = {"authorization": "Bearer alice-token"}
BOB = {"authorization": "Bearer bob-token"}


def tree(*extra, max_children: int | None = 2) -> SupervisorSpec:
    sessions = SupervisorSpec(
        name="sessions",
        dynamic=True,
        intensity=5,
        max_children=max_children,
        templates=(Counter, Worker, Fragile),
    )
    other = SupervisorSpec(name="other", dynamic=True, templates=(Worker,))
    return SupervisorSpec(name="root", children=(sessions, other, worker("static"), *extra))


def start(client, name, template="Counter", supervisor="sessions", headers=None, **body):
    payload = {"name": name, "template": template, **body}
    return client.post(f"/v1/supervisors/{supervisor}/children", json=payload, headers=headers)


def test_a_child_started_over_http_is_served_listed_and_stopped(gateway):
    system, client = gateway(tree())
    created = start(client, "cart-1", config={"start": 40, "label": "cart"})
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/v1/agents/cart-1"
    assert created.json() == {
        "name": "cart-1",
        "supervisor": "sessions",
        "template": "Counter",
        "agent": "tests.phoenix.agents:Counter",
    }
    bumped = client.post("/v1/agents/cart-1/Bump", json={"by": 2})
    assert bumped.json() == {"type": "Count", "value": 42, "label": "cart"}
    assert "cart-1" in [view["name"] for view in client.get("/v1/agents").json()]
    sessions = client.get("/v1/tree").json()["children"][0]
    assert sessions["dynamic"] and [c["name"] for c in sessions["children"]] == ["cart-1"]
    assert sessions["children"][0]["dynamic"]
    deleted = client.delete("/v1/agents/cart-1")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert client.delete("/v1/agents/cart-1").status_code == 404
    assert "cart-1" not in system.names()


def test_a_name_taken_again_by_another_template_is_served_as_the_new_one(gateway):
    _, client = gateway(tree())
    assert start(client, "s").status_code == 201
    assert client.post("/v1/agents/s/Bump", json={}).status_code == 200  # cached by the gateway
    assert client.delete("/v1/agents/s").status_code == 204
    assert start(client, "s", template="Worker").status_code == 201
    assert client.post("/v1/agents/s/Echo", json={"text": "hi"}).json()["by"] == "s"
    assert client.post("/v1/agents/s/Bump", json={}).status_code == 404


@pytest.mark.parametrize(
    ("kwargs", "status", "slug", "words"),
    [
        ({"supervisor": "nope"}, 404, "unknown-agent", "no agent named 'nope'"),
        ({"supervisor": "root"}, 404, "not-dynamic-supervisor", "not a dynamic supervisor"),
        ({"name": "static"}, 409, "name-taken", "'static' already exists"),
        ({"template": "Policy"}, 422, "unknown-template", "its templates: Counter, Fragile, Worker"),
        ({"template": "Counter", "config": {"start": "many"}}, 422, "invalid-body", "$.config.start"),
        ({"template": "Worker", "config": {"x": 1}}, 422, "invalid-body", "Worker takes no config"),
        ({"name": "bad name!"}, 422, "invalid-body", "$.name"),
        ({"extra": 1}, 422, "invalid-body", "extra"),
    ],
    ids=["unknown", "static-supervisor", "taken", "template", "config", "no-config", "name",
         "unknown-field"],
)  # fmt: skip
def test_each_refusal_is_a_problem_naming_what_is_wrong(gateway, kwargs, status, slug, words):
    _, client = gateway(tree())
    kwargs = {"name": "c1", **kwargs}
    response = start(client, kwargs.pop("name"), **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == f"/problems/{slug}"
    assert words in problem["detail"] + str(problem.get("errors"))


def test_max_children_is_429_with_retry_after(gateway):
    _, client = gateway(tree(max_children=1))
    assert start(client, "c1").status_code == 201
    full = start(client, "c2")
    assert full.status_code == 429
    assert full.json()["type"] == "/problems/too-many-children"
    assert int(full.headers["retry-after"]) >= 1
    assert client.get("/problems/too-many-children").json()["status"] == 429


def test_a_start_failure_is_503_naming_the_cause_type_and_no_secret(gateway):
    system, client = gateway(tree())
    failed = start(client, "f1", template="Fragile", config={"fail": True})
    assert failed.status_code == 503
    problem = failed.json()
    assert problem["type"] == "/problems/start-failed"
    assert "ConnectionError" in problem["detail"] and "s3cret" not in failed.text
    assert "f1" not in system.names()
    assert start(client, "f1", template="Fragile").status_code == 201


def test_malformed_json_and_other_media_types_are_refused(gateway):
    _, client = gateway(tree())
    broken = client.post(
        "/v1/supervisors/sessions/children",
        content=b"{",
        headers={"content-type": "application/json"},
    )
    assert broken.status_code == 400
    text = client.post(
        "/v1/supervisors/sessions/children", content=b"x", headers={"content-type": "text/plain"}
    )
    assert text.status_code == 415


def test_a_static_agent_is_never_deleted(gateway):
    system, client = gateway(tree())
    for name in ("static", "sessions", "root"):
        refused = client.delete(f"/v1/agents/{name}")
        assert refused.status_code == 409, name
        assert refused.json()["type"] == "/problems/static-agent"
    assert client.delete("/v1/agents/ghost").status_code == 404
    assert system.status("static").value == "running"


def test_policy_governs_each_supervisor_and_its_children(gateway, tmp_path):
    rules = [
        Rule(principal="alice", agent="sessions", message="StartChild"),
        Rule(principal="alice", agent="sessions", message="TerminateChild"),
        Rule(principal="alice", agent="*", message="Bump"),
    ]
    policy = WorkerSpec(name="policy", agent=Policy, config=PolicyConfig(enabled=True, rules=rules))
    system, client = gateway(
        tree(policy),
        system_config={"data_dir": str(tmp_path)},
        tokens={"alice": "alice-token", "bob": "bob-token"},
    )
    wait_until(lambda: client.app.guards.policy is not None, what="the policy snapshot")
    assert start(client, "a1", headers=ALICE).status_code == 201
    elsewhere = start(client, "a2", template="Worker", supervisor="other", headers=ALICE)
    assert elsewhere.status_code == 403
    assert elsewhere.json()["type"] == "/problems/forbidden"
    assert start(client, "b1", headers=BOB).status_code == 403
    assert start(client, "x1", headers={}).status_code == 401
    system.start_child("other", WorkerSpec(name="theirs", agent=Worker))
    assert client.delete("/v1/agents/theirs", headers=ALICE).status_code == 403
    assert client.delete("/v1/agents/a1", headers=BOB).status_code == 403
    assert client.delete("/v1/agents/a1", headers=ALICE).status_code == 204
    assert "theirs" in system.names() and "a2" not in system.names()


def test_the_openapi_document_describes_each_dynamic_supervisors_templates(gateway):
    _, client = gateway(tree())
    document = client.get("/v1/openapi.json").json()
    operation = document["paths"]["/v1/supervisors/sessions/children"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    templates = [choice["properties"]["template"]["const"] for choice in body["oneOf"]]
    assert templates == ["Counter", "Fragile", "Worker"]
    counter = body["oneOf"][0]["properties"]["config"]["anyOf"][0]["$ref"]
    assert counter == "#/components/schemas/CounterConfig"
    assert {"201", "404", "409", "422", "429", "503"} <= set(operation["responses"])
    assert "/v1/supervisors/root/children" not in document["paths"]
    delete = document["paths"]["/v1/agents/{name}"]["delete"]
    assert {"204", "404", "409"} <= set(delete["responses"])
