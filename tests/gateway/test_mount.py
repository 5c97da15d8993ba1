"""The gateway mounted inside Starlette and FastAPI, as docs/embedding describes.

A framework passes the mounted app the whole path with the mount's prefix in
``root_path`` (the ASGI spec); the gateway routes on the part below it, and
its OpenAPI document names the prefix as its server URL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount

from gateway import create_app
from vibe_actors import ActorSystem, SupervisorSpec, WorkerSpec
from vibe_actors.agents.pubsub import Publish, PubSub

from tests.conftest import worker
from tests.gateway.conftest import serve
from tests.gateway.test_sse import read_events, subscribed


def tree() -> SupervisorSpec:
    return SupervisorSpec(
        name="root", children=(WorkerSpec(name="pubsub", agent=PubSub), worker("w"))
    )


def starlette_app(gateway: Any) -> Any:
    return Starlette(routes=[Mount("/actors", app=gateway)])


def fastapi_app(gateway: Any) -> Any:
    app = FastAPI()
    app.mount("/actors", gateway)
    return app


@pytest.fixture(params=[starlette_app, fastapi_app], ids=["starlette", "fastapi"])
def mounted(
    request: pytest.FixtureRequest, make_system: Callable[..., ActorSystem], tmp_path: Any
) -> Iterator[tuple[ActorSystem, Any]]:
    system = make_system(tree(), data_dir=str(tmp_path))
    gateway = create_app(system)
    with serve(request.param(gateway), on_shutdown=gateway.close_streams) as client:
        yield system, client


def test_every_route_answers_under_the_mount(mounted):
    _, client = mounted
    assert client.post("/actors/v1/agents/w/Add", json={"n": 4}).json()["total"] == 4
    assert client.get("/actors/healthz").json() == {"status": "ok"}
    assert client.get("/actors/readyz").status_code == 200
    assert "vibe_http_requests_total" in client.get("/actors/metrics").text
    assert {a["name"] for a in client.get("/actors/v1/agents").json()} >= {"w", "pubsub"}
    assert client.get("/actors/v1/agents/w").json()["name"] == "w"
    assert client.get("/actors/v1/tree").json()["name"] == "root"
    missing = client.get("/actors/v1/nowhere")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert client.get("/actors/v1/agents/w/Add").headers["allow"] == "POST"


def test_the_openapi_document_names_the_mount_as_its_server(mounted):
    _, client = mounted
    document = client.get("/actors/v1/openapi.json").json()
    assert document["servers"] == [{"url": "/actors"}]
    assert "/v1/agents/w/Add" in document["paths"]


def test_events_stream_under_the_mount(mounted):
    system, client = mounted
    with client.stream("GET", "/actors/v1/topics/orders/events") as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        subscribed(lines)
        system.ask("pubsub", Publish(topic="orders", data={"n": 1}))
        (event,) = read_events(lines, 1)
    assert json.loads(event["data"])["data"] == {"n": 1}


def test_the_prefix_is_not_required_when_served_alone(gateway):
    _, client = gateway(tree())
    document = client.get("/v1/openapi.json").json()
    assert "servers" not in document
    assert client.post("/v1/agents/w/Add", json={"n": 1}).status_code == 200
