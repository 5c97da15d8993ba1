"""A durable entity kind on a PostgreSQL store shared by two replicas, over HTTP: a write
from a stale activation is answered 409 problem+json (EntityConflict), and the retry runs
on the newer state. The OpenAPI document lists the 409 for durable kinds."""

from __future__ import annotations

from vibe_actors import SupervisorSpec

from tests.vibe_actors.test_entities_shared import KIND, Inc, kind


def tree() -> SupervisorSpec:
    return SupervisorSpec(name="root", children=(kind(),))


def test_a_stale_replica_answers_409_and_the_retry_sees_the_newer_state(
    gateway, make_system, tmp_path, postgres_url
):
    _, client = gateway(tree(), {"data_dir": str(tmp_path / "a"), "store": postgres_url})
    other = make_system(tree(), data_dir=str(tmp_path / "b"), store=postgres_url)
    first = client.post(f"/v1/entities/{KIND}/x/Inc", json={})
    assert first.status_code == 200 and first.json()["value"] == 1
    assert other.entity(KIND, "x").ask(Inc()).value == 2  # the other replica wrote since
    stale = client.post(f"/v1/entities/{KIND}/x/Inc", json={})
    assert stale.status_code == 409, stale.text
    assert stale.headers["content-type"].startswith("application/problem+json")
    problem = stale.json()
    assert problem["type"].endswith("/entity-conflict")
    assert problem["status"] == 409 and f"{KIND}/x" in problem["detail"]
    retried = client.post(f"/v1/entities/{KIND}/x/Inc", json={})
    assert retried.status_code == 200 and retried.json()["value"] == 3
    assert client.get(f"/v1/entities/{KIND}").json()["passivations"]["conflict"] == 1


def test_the_openapi_document_lists_the_conflict_of_a_durable_kind(gateway, tmp_path):
    _, client = gateway(tree(), {"data_dir": str(tmp_path)})
    document = client.get("/v1/openapi.json").json()
    responses = document["paths"][f"/v1/entities/{KIND}/{{id}}/Inc"]["post"]["responses"]
    assert responses["409"]["x-error-replies"] == ["EntityConflict"]
    assert "EntityConflict" in document["components"]["schemas"]
