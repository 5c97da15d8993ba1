"""Schema: catalogue (the gateway's shapes), OpenAPI 3.1, Mermaid, caching and restarts."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec
from structlog.testing import capture_logs

from gateway._catalog import Catalog
from vibe_actors import (
    Agent,
    ErrorReply,
    Message,
    Ping,
    PoolSpec,
    RestartType,
    Strategy,
    SupervisorSpec,
    TreeReloaded,
    WorkerSpec,
    handler,
)
from vibe_actors.agents.schema import (
    Catalogue,
    CatalogueReply,
    Diagram,
    OpenAPI,
    Schema,
    SchemaConfig,
    openapi,
    replies_none,
)

from tests.conftest import worker


class Point(msgspec.Struct, frozen=True):
    x: int
    y: int


class Place(Message):
    """Put something at a point."""

    at: Point
    label: str = ""


class Placed(Message):
    count: int


class Occupied(ErrorReply):
    http_status: ClassVar[int] = 409


class Board(Agent):
    @handler
    def place(self, msg: Place) -> Placed | Occupied:
        return Placed(count=1)


def tree() -> SupervisorSpec:
    return SupervisorSpec(
        name="root",
        strategy=Strategy.ONE_FOR_ALL,
        children=(
            WorkerSpec(name="schema", agent=Schema, config=SchemaConfig(title="Test API")),
            worker("w"),
            SupervisorSpec(
                name="games",
                strategy=Strategy.REST_FOR_ONE,
                children=(
                    WorkerSpec(name="board", agent=Board, restart=RestartType.TRANSIENT),
                    worker("pool", pool=PoolSpec(size=2)),
                ),
            ),
        ),
    )


def refs(document: Any) -> list[str]:
    if isinstance(document, dict):
        found = [v for k, v in document.items() if k == "$ref"]
        return found + [r for v in document.values() for r in refs(v)]
    if isinstance(document, list):
        return [r for v in document for r in refs(v)]
    return []


def test_catalogue_covers_receivers_with_the_gateways_shapes(make_system):
    system = make_system(tree())
    reply = system.ask("schema", Catalogue())
    assert isinstance(reply, CatalogueReply)
    assert set(reply.agents) == {"schema", "w", "board", "pool", "pool.1", "pool.2"}
    gateway = Catalog(system)
    for name in ("w", "pool", "pool.1", "schema"):
        assert reply.agents[name] == gateway.schemas(name)
    assert "Ping" in reply.agents["w"] and "Echo" in reply.agents["w"]
    place = reply.agents["board"]["Place"]
    assert place["description"] == "Put something at a point."
    assert place["properties"]["at"] == {"$ref": "#/$defs/Point"}
    assert place["$defs"]["Point"]["required"] == ["x", "y"]  # standalone: refs resolve
    assert msgspec.json.decode(msgspec.json.encode(reply.agents)) == reply.agents


def test_openapi_has_one_operation_per_agent_and_message(make_system):
    system = make_system(tree())
    document = system.ask("schema", OpenAPI()).document
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {"title": "Test API", "version": "1"}
    gateway = Catalog(system).openapi(secured=True, chaos=False)
    # The gateway serves the agent operations as they are, and its own routes besides.
    assert {p: gateway["paths"][p] for p in document["paths"]} == document["paths"]
    assert set(gateway["paths"]) - set(document["paths"]) >= {"/v1/agents", "/healthz"}
    components = gateway["components"]["schemas"]
    assert {n: components[n] for n in document["components"]["schemas"]} == (
        document["components"]["schemas"]
    )
    place = document["paths"]["/v1/agents/board/Place"]["post"]
    assert place["operationId"] == "board.Place"
    body = place["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/Place"}
    ok = place["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"oneOf": [{"$ref": "#/components/schemas/Placed"}]}
    conflict = place["responses"]["409"]
    assert conflict["x-error-replies"] == ["Occupied"]
    assert conflict["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    for status in ("404", "422", "429", "503", "504"):
        assert "application/problem+json" in place["responses"][status]["content"]
    schemas = document["components"]["schemas"]
    for ref in refs(document):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_mermaid_diagram_shows_strategies_and_restart_types(make_system):
    system = make_system(tree())
    text = system.ask("schema", Diagram()).text
    lines = text.splitlines()
    assert lines[0] == "graph TD"
    assert '    n0["root<br/>supervisor, one_for_all, permanent"]' in lines
    assert any('"games<br/>supervisor, rest_for_one, permanent"' in line for line in lines)
    assert any('("board<br/>worker, transient")' in line for line in lines)
    assert any('[["pool<br/>pool, one_for_one, permanent"]]' in line for line in lines)
    edges = [line for line in lines if "-->" in line]
    nodes = len(list(system.walk()))
    assert len(edges) == nodes - 1
    assert "    n3 --> n4" in edges  # games supervises board


def test_a_reload_changes_what_is_served(make_system):
    system = make_system(tree())
    before = system.ask("schema", Catalogue()).agents
    assert "extra" not in before
    changed = msgspec.structs.replace(
        tree(), children=(*tree().children, WorkerSpec(name="extra", agent=Board))
    )
    system.apply(changed)
    after = system.ask("schema", Catalogue()).agents
    assert set(after) == set(before) | {"extra"}
    assert "/v1/agents/extra/Place" in system.ask("schema", OpenAPI()).document["paths"]
    assert "extra<br/>worker" in system.ask("schema", Diagram()).text


def test_cache_is_dropped_on_tree_reloaded_and_replies_are_copies(make_system):
    system = make_system(tree())
    first = system.ask("schema", Catalogue(), timeout=5)
    with capture_logs() as logs:
        system.ask("schema", Catalogue())
        system.events.publish(TreeReloaded())
        system.ask("schema", Catalogue())
    cleared = [entry for entry in logs if entry["event"] == "schema_cache_cleared"]
    assert len(cleared) == 1  # not for the cached request, once after the event
    first.agents["w"].clear()
    assert system.ask("schema", Catalogue()).agents["w"]  # the cache was not touched


def test_restart_rebuilds_and_does_not_leak_event_subscriptions(make_system):
    system = make_system(tree())
    expected = system.ask("schema", Catalogue())
    subscribers = len(system.events._subscribers)
    system.inject_fault("schema", "crash")
    # one_for_all: the whole tree restarts; the schema agent comes back with a new incarnation.
    assert system.ask("schema", Ping()).incarnation == 2
    assert len(system.events._subscribers) == subscribers
    assert system.ask("schema", Catalogue()) == expected


class Erase(Message):
    """May reply nothing."""


class Erased(Message):
    count: int


class Forget(Message):
    """Never replies anything."""


class Eraser(Agent):
    @handler
    def erase(self, msg: Erase) -> Erased | None:
        return None

    @handler
    def forget(self, msg: Forget) -> None:
        return None


def test_a_handler_that_may_return_none_documents_a_204(make_system):
    system = make_system(
        [WorkerSpec(name="eraser", agent=Eraser), WorkerSpec(name="board", agent=Board)]
    )
    paths = openapi(system)["paths"]
    erase = paths["/v1/agents/eraser/Erase"]["post"]["responses"]
    assert erase["204"] == {"description": "The agent's reply is None (no content)"}
    assert erase["200"]["content"]["application/json"]["schema"] == {
        "oneOf": [{"$ref": "#/components/schemas/Erased"}]
    }
    assert "204" in paths["/v1/agents/eraser/Forget"]["post"]["responses"]
    assert "204" not in paths["/v1/agents/board/Place"]["post"]["responses"]
    assert replies_none(system, "eraser", Erase) and replies_none(system, "eraser", Forget)
    assert not replies_none(system, "board", Place)
    assert not replies_none(system, "nobody", Place)
    assert (
        Catalog(system).openapi(secured=True, chaos=False)["paths"]["/v1/agents/eraser/Erase"][
            "post"
        ]
        == paths["/v1/agents/eraser/Erase"]["post"]
    )  # the gateway serves the same document
