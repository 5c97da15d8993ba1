"""Over HTTP a namespaced message type keeps its class name: route, body, reply, schema."""

from __future__ import annotations

from vibe_actors import SupervisorSpec, WorkerSpec
from vibe_actors.agents.pubsub import PubSub
from vibe_actors.agents.registry import Registry


def _tree() -> SupervisorSpec:
    return SupervisorSpec(
        name="root",
        children=(
            WorkerSpec(name="registry", agent=Registry),
            WorkerSpec(name="pubsub", agent=PubSub),
        ),
    )


def test_a_body_may_name_its_type_by_http_name_or_wire_tag_and_replies_show_http_names(gateway):
    _, client = gateway(_tree())
    url = "/v1/agents/pubsub/Subscribe"
    for body in (
        {"topic": "t", "subscriber": "registry"},
        {"type": "Subscribe", "topic": "t", "subscriber": "registry"},
        {"type": "pubsub.Subscribe", "topic": "t", "subscriber": "registry"},
    ):
        reply = client.post(url, json=body)
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"type": "Subscribed", "topic": "t", "subscriber": "registry"}
    for wrong in ("registry.Subscribe", "Publish", "pubsub.Publish"):
        refused = client.post(url, json={"type": wrong, "topic": "t", "subscriber": "registry"})
        assert refused.status_code == 422, wrong
    bad_field = client.post(url, json={"type": "Subscribe", "topic": "", "subscriber": "x"})
    assert bad_field.status_code == 422 and "$.topic" in bad_field.text  # the field, not the tag


def test_an_error_reply_in_a_problem_shows_its_http_name(gateway):
    _, client = gateway(_tree())
    missing = client.post("/v1/agents/pubsub/Unsubscribe", json={"topic": "t", "subscriber": "x"})
    assert missing.status_code == 404
    assert missing.json()["reply"]["type"] == "NotSubscribed"


def test_the_schemas_name_types_by_http_name(gateway):
    _, client = gateway(_tree())
    document = client.get("/v1/openapi.json").json()
    components = document["components"]["schemas"]
    assert "/v1/agents/pubsub/Subscribe" in document["paths"]
    pubsub_subscribe = components["vibe_actors.agents.pubsub.Subscribe"]
    assert pubsub_subscribe["properties"]["type"]["enum"] == ["Subscribe"]
    assert components["Published"]["properties"]["type"]["enum"] == ["Published"]
    assert not any(
        "protocol" in name or str(c.get("properties", {}).get("type", {}).get("enum")).count(".")
        for name, c in components.items()
    )
