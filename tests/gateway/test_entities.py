"""Entities over HTTP: asks by kind and id, the kind and entity views, errors, policy."""

from __future__ import annotations

import jsonschema
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

from vibe_actors import EntitySpec, EntityState, SupervisorSpec, WorkerSpec
from vibe_actors.agents.introspect import Introspect
from vibe_actors.testing import hang

from tests.vibe_actors.test_entities import Counter
from tests.vibe_actors.test_entities_durable import Store

JSON = {"content-type": "application/json"}


def tree(**entity) -> SupervisorSpec:
    return SupervisorSpec(
        name="root",
        children=(
            WorkerSpec(name="counters", agent=Counter, entity=EntitySpec(shards=2, **entity)),
            WorkerSpec(
                name="bags",
                agent=Store,
                entity=EntitySpec(shards=1, state=EntityState.DURABLE),
            ),
            WorkerSpec(name="introspect", agent=Introspect),
        ),
    )


def test_an_ask_by_kind_and_id_activates_and_answers(gateway, tmp_path):
    _, client = gateway(tree(), {"data_dir": str(tmp_path)})
    first = client.post("/v1/entities/counters/ann/Add", json={"n": 2})
    assert first.status_code == 200 and first.json() == {
        "type": "Total",
        "id": "ann",
        "total": 2,
        "ticks": 0,
    }
    assert client.post("/v1/entities/counters/ann/Add", json={"n": 3}).json()["total"] == 5
    assert client.post("/v1/entities/counters/bob/Get", json={}).json()["total"] == 0


def test_the_kind_and_entity_views(gateway, tmp_path):
    _, client = gateway(tree(), {"data_dir": str(tmp_path)})
    client.post("/v1/entities/counters/ann/Add", json={"n": 4})
    client.post("/v1/entities/bags/b1/Put", json={"key": "k", "value": 9})
    kind = client.get("/v1/entities/counters").json()
    assert kind["kind"] == "counters" and kind["shards"] == 2 and kind["active"] == 1
    assert kind["activations"] == 1 and kind["state"] == "memory"
    assert kind["passivations"]["idle"] == 0
    assert [k["kind"] for k in client.get("/v1/entities").json()] == ["counters", "bags"]
    assert client.get("/v1/entities/counters/ann").json() == {
        "type": "EntitySnapshot",
        "id": "ann",
        "active": True,
        "state": {"total": 4, "ticks": 0},
    }
    # not active, memory kind: nothing known, and looking does not activate it
    assert client.get("/v1/entities/counters/zed").json()["active"] is False
    assert client.get("/v1/entities/counters").json()["active"] == 1
    assert client.get("/v1/entities/bags/b1").json()["state"] == {"values": {"k": 9}}


def test_errors_follow_the_agents_contract(gateway, tmp_path):
    system, client = gateway(tree(), {"data_dir": str(tmp_path)})
    unknown_kind = client.post("/v1/entities/nope/1/Add", json={"n": 1})
    assert unknown_kind.status_code == 404
    assert unknown_kind.json()["type"].endswith("/unknown-entity-kind")
    unknown_type = client.post("/v1/entities/counters/1/Nope", json={})
    assert unknown_type.status_code == 404 and "it accepts: Add" in unknown_type.json()["detail"]
    bad_body = client.post("/v1/entities/counters/1/Add", json={"n": "x"})
    assert bad_body.status_code == 422
    too_long = client.post(f"/v1/entities/counters/{'x' * 257}/Add", json={"n": 1})
    assert too_long.status_code == 422 and too_long.json()["type"].endswith("/invalid-entity-id")
    crashed = client.post("/v1/entities/counters/1/Boom", json={})
    assert crashed.status_code == 503 and "counters/1" in crashed.json()["detail"]
    by_name = client.post("/v1/agents/counters/Add", json={"n": 1})
    assert by_name.status_code == 404 and "/v1/entities/counters/" in by_name.json()["detail"]
    # 503 with Retry-After while the id's shard is not running
    shard = system.entity_shard("counters", "1")
    with hang(system, shard) as held:
        held.wait_hung(5)
        system.cell(shard).status = system.cell(shard).status.RESTARTING
        try:
            refused = client.post("/v1/entities/counters/1/Get", json={})
        finally:
            system.cell(shard).status = system.cell(shard).status.RUNNING
    assert refused.status_code == 503 and "retry-after" in refused.headers


def test_the_document_lists_the_entity_routes(gateway, tmp_path):
    _, client = gateway(tree(), {"data_dir": str(tmp_path)})
    document = client.get("/v1/openapi.json").json()
    OPENAPI_31_VALIDATOR.validate(document)
    paths = document["paths"]
    assert {
        "/v1/entities",
        "/v1/entities/{kind}",
        "/v1/entities/{kind}/{id}",
        "/v1/entities/counters/{id}/Add",
        "/v1/entities/bags/{id}/Put",
    } <= set(paths)
    assert "/v1/agents/counters/Add" not in paths
    ok = paths["/v1/entities/counters/{id}/Add"]["post"]["responses"]["200"]
    schema = {**ok["content"]["application/json"]["schema"], "components": document["components"]}
    reply = client.post("/v1/entities/counters/ann/Add", json={"n": 1}).json()
    jsonschema.validate(reply, schema)


def test_policy_applies_to_entity_asks_and_views(gateway, tmp_path):
    from vibe_actors.agents.policy import Policy, PolicyConfig, Rule

    from tests.conftest import wait_until

    rules = [
        Rule(principal="alice", agent="counters", message="Add"),
        Rule(principal="alice", agent="counters", message="InspectEntity"),
    ]
    spec = tree()
    policy = WorkerSpec(name="policy", agent=Policy, config=PolicyConfig(enabled=True, rules=rules))
    root = SupervisorSpec(name="root", children=(policy, *spec.children))
    _, client = gateway(
        root,
        system_config={"data_dir": str(tmp_path)},
        tokens={"alice": "alice-token", "bob": "bob-token"},
    )
    wait_until(lambda: client.app.guards.policy is not None, what="the policy snapshot")
    alice = {"authorization": "Bearer alice-token"}
    bob = {"authorization": "Bearer bob-token"}
    assert (
        client.post("/v1/entities/counters/1/Add", json={"n": 1}, headers=alice).status_code == 200
    )
    assert client.post("/v1/entities/counters/1/Get", json={}, headers=alice).status_code == 403
    assert client.post("/v1/entities/counters/1/Add", json={"n": 1}, headers=bob).status_code == 403
    assert client.get("/v1/entities/counters/1", headers=alice).status_code == 200
    assert client.get("/v1/entities/counters/1", headers=bob).status_code == 403
    assert client.post("/v1/entities/bags/1/Read", json={}, headers=alice).status_code == 403
    assert client.get("/v1/entities/counters/1").status_code == 401
