"""The OpenAPI document lists every route the gateway serves, as it serves it.

The fuzzing against the shipped wiring (tests/reliability/test_schemathesis.py)
checks that every answer matches the document; these check what the document
says about the routes that depend on the gateway's settings (tokens, chaos)
and that it is a valid OpenAPI 3.1 document.
"""

from __future__ import annotations

from typing import Any

import jsonschema
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

from gateway._routes import ROUTES
from vibe_actors import SupervisorSpec, WorkerSpec
from vibe_actors.agents.introspect import Introspect

from tests.conftest import worker

JSON = {"content-type": "application/json"}
GATEWAY_ROUTES = {
    "/healthz",
    "/livez",
    "/readyz",
    "/metrics",
    "/v1/openapi.json",
    "/v1/agents",
    "/v1/agents/{name}",
    "/v1/tree",
    "/v1/topics/{topic}/events",
    "/v1/events",
    "/v1/dead-letters",
    "/v1/system",
    "/ui",
    "/ui/{file}",
    "/v1/entities",
    "/v1/entities/{kind}",
    "/v1/entities/{kind}/{id}",
}
CHAOS_ROUTES = {"/v1/chaos/{name}/crash", "/v1/chaos/{name}/hang"}


def tree() -> SupervisorSpec:
    return SupervisorSpec(
        name="root", children=(worker("w"), WorkerSpec(name="introspect", agent=Introspect))
    )


def _documented(document: dict[str, Any], route: str, method: str, status: int) -> Any:
    """The schema of the documented response, or fail naming what is missing."""
    responses = document["paths"][route][method]["responses"]
    assert str(status) in responses, (route, method, status, sorted(responses))
    (content,) = responses[str(status)]["content"].values()
    return {**content["schema"], "components": document["components"]}


def test_every_route_served_is_documented_in_a_valid_document(gateway):
    _, client = gateway(tree())
    document = client.get("/v1/openapi.json").json()
    OPENAPI_31_VALIDATOR.validate(document)
    assert GATEWAY_ROUTES | {"/v1/agents/w/Add"} <= set(document["paths"])
    assert not CHAOS_ROUTES & set(document["paths"])
    assert "securitySchemes" not in document["components"]
    for route, method, path in [
        ("/v1/agents", "get", "/v1/agents"),
        ("/v1/agents/{name}", "get", "/v1/agents/w"),
        ("/v1/tree", "get", "/v1/tree"),
        ("/healthz", "get", "/healthz"),
        ("/readyz", "get", "/readyz"),
    ]:
        response = client.get(path)
        jsonschema.validate(response.json(), _documented(document, route, method, 200))
    missing = client.get("/v1/agents/nobody")
    assert missing.status_code == 404
    jsonschema.validate(missing.json(), _documented(document, "/v1/agents/{name}", "get", 404))
    bad_topic = client.get("/v1/topics/-bad-/events")
    assert bad_topic.status_code == 422
    _documented(document, "/v1/topics/{topic}/events", "get", 422)


def test_with_tokens_every_v1_route_documents_the_bearer_scheme_and_401(gateway):
    _, client = gateway(tree(), tokens={"alice": "s3cret"})
    unauthenticated = client.get("/v1/openapi.json")
    assert unauthenticated.status_code == 401
    document = client.get("/v1/openapi.json", headers={"authorization": "Bearer s3cret"}).json()
    OPENAPI_31_VALIDATOR.validate(document)
    assert document["components"]["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer"}
    }
    assert document["security"] == [{"bearer": []}]
    for route, path_item in document["paths"].items():
        for operation in path_item.values():
            if route.startswith("/v1/"):
                assert "401" in operation["responses"], route
                assert "security" not in operation, route  # the document's applies
            else:
                assert operation["security"] == [], route
                assert "401" not in operation["responses"], route
    jsonschema.validate(
        unauthenticated.json(), _documented(document, "/v1/openapi.json", "get", 401)
    )


def test_without_tokens_no_route_documents_401(gateway):
    _, client = gateway(tree())
    document = client.get("/v1/openapi.json").json()
    assert "security" not in document
    for route, path_item in document["paths"].items():
        for operation in path_item.values():
            assert "401" not in operation["responses"], route


def test_chaos_routes_are_documented_when_they_are_served(gateway):
    _, client = gateway(tree(), chaos=True)
    document = client.get("/v1/openapi.json").json()
    OPENAPI_31_VALIDATOR.validate(document)
    assert set(document["paths"]) >= CHAOS_ROUTES
    refused = client.post("/v1/chaos/w/hang?seconds=0")
    assert refused.status_code == 400
    jsonschema.validate(refused.json(), _documented(document, "/v1/chaos/{name}/hang", "post", 400))
    root = client.post("/v1/chaos/root/crash")
    assert root.status_code == 403
    _documented(document, "/v1/chaos/{name}/crash", "post", 403)


def test_a_body_may_leave_out_its_type_as_documented_and_a_wrong_one_is_422(gateway):
    _, client = gateway(tree())
    document = client.get("/v1/openapi.json").json()
    add = document["components"]["schemas"]["Add"]
    assert "type" in add["properties"] and "type" not in add.get("required", [])
    assert client.post("/v1/agents/w/Add", json={"n": 2}).json()["total"] == 2
    assert client.post("/v1/agents/w/Add", json={"type": "Add", "n": 3}).status_code == 200
    wrong = client.post("/v1/agents/w/Add", json={"type": "Ping", "n": 3})
    assert wrong.status_code == 422
    assert wrong.headers["content-type"] == "application/problem+json"


def test_the_timeout_header_is_documented_as_the_server_reads_it(gateway):
    _, client = gateway(tree())
    document = client.get("/v1/openapi.json").json()
    (header,) = document["paths"]["/v1/agents/w/Add"]["post"]["parameters"]
    assert header["name"] == "X-Timeout-Ms"
    for value, valid in [("1", True), ("007", True), ("999999999", True), ("0", False),
                         ("000", False), ("1000000000", False), ("-5", False), ("1.5", False)]:  # fmt: skip
        validator = jsonschema.Draft202012Validator(header["schema"])
        assert validator.is_valid(value) is valid, value
        response = client.post("/v1/agents/w/Add", json={"n": 1}, headers={"x-timeout-ms": value})
        # A valid deadline is served (200) or runs out (504: 1 ms on a busy machine), never 400.
        expected = {200, 504} if valid else {400}
        assert response.status_code in expected, (value, response.text)


def test_the_document_and_the_route_table_agree(gateway):
    _, client = gateway(tree(), chaos=True)
    document = client.get("/v1/openapi.json").json()
    table = {(r.template, r.method.lower()) for r in ROUTES}
    documented = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if not path.startswith(("/v1/agents/", "/v1/supervisors/")) or path == "/v1/agents/{name}"
    }
    # Documented per agent (or entity kind) and message type, and per dynamic supervisor.
    asks = {
        ("/v1/agents/{name}/{type}", "post"),
        ("/v1/entities/{kind}/{id}/{type}", "post"),
        ("/v1/supervisors/{name}/children", "post"),
    }
    assert documented == table - asks
    assert ("/v1/agents/w/Add", "post") in {(p, m) for p, i in document["paths"].items() for m in i}


def test_a_problem_type_resolves_to_its_description_and_titles_name_the_type(gateway):
    _, client = gateway(tree())
    problem = client.post("/v1/agents/w/Add", json={"n": "x"}).json()
    assert problem["type"] == "/problems/invalid-body"
    assert problem["title"] == "Invalid body"  # the type's title, not "Unprocessable Content"
    described = client.get(problem["type"])
    assert described.status_code == 200
    assert described.json() == {
        "type": "/problems/invalid-body",
        "title": "Invalid body",
        "status": 422,
        "description": described.json()["description"],
    }
    assert "field" in described.json()["description"]
    crashed = client.get("/problems/agent-crashed").json()  # an agent error reply's type
    assert crashed["status"] == 503 and crashed["title"]
    missing = client.get("/problems/no-such-thing")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
