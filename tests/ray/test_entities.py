"""An entity kind placed on Ray: local router and supervision, entities in the shards' Ray actors.

Each test uses its own kind name, so tests never share a Ray actor (a shard's
actor is named after the shard, ``kind.N``, in the session's namespace). The
entities' hooks append to a journal file (they run in Ray's worker processes).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import ray

import phoenix
from vibe_actors import (
    ActorSystem,
    AgentCrashedError,
    AskError,
    EntitySnapshot,
    EntitySpec,
    EntityState,
    InspectEntity,
    StartFailed,
    SystemConfig,
    UnknownMessageError,
    WorkerSpec,
)
from vibe_actors.agents.introspect import Introspect
from vibe_actors.ray import RaySettings, placed
from vibe_actors.ray._entity_proxy import RayShard
from vibe_actors.testing import ManualClock

from tests.conftest import wait_until
from tests.gateway.conftest import serving
from tests.ray.agents import Read
from tests.ray.conftest import NAMESPACE
from tests.ray.entities import (
    Deposit,
    Explode,
    Overdrawn,
    Peek,
    Remote,
    Rest,
    Wallet,
    WalletConfig,
)


def _kind(name: str, settings: RaySettings, journal: Path, **entity: Any) -> WorkerSpec:
    return WorkerSpec(
        name=name,
        agent=placed(Wallet, settings),
        config=WalletConfig(journal=str(journal), limit=100),
        entity=EntitySpec(**entity),
    )


def _journal(path: Path) -> list[str]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [" ".join(line.split()[:2]) for line in lines]


def _pids(path: Path) -> set[int]:
    return {int(line.split()[2]) for line in path.read_text().splitlines()}


def test_entities_live_in_the_shards_ray_actors(
    ray_settings: RaySettings, make_system: Any, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    system = make_system([_kind("wallets-life", ray_settings, journal, shards=2)])
    assert all(isinstance(cell.agent, RayShard) for cell in _shards(system, "wallets-life"))
    ann, bob = system.entity("wallets-life", "ann"), system.entity("wallets-life", "bob")
    assert ann.ask(Deposit(amount=4), timeout=20).balance == 4
    reply = ann.ask(Deposit(amount=3), timeout=20)
    assert reply.balance == 7 and reply.id == "ann" and reply.pid != os.getpid()
    assert bob.ask(Peek(), timeout=20).balance == 0
    for _ in range(5):  # tells cross too, in order, before the ask behind them
        bob.tell(Deposit(amount=2))
    assert bob.ask(Peek(), timeout=20).balance == 10
    with pytest.raises(AskError) as raised:  # a typed error reply crosses as itself
        ann.ask(Deposit(amount=500), timeout=20)
    assert raised.value.reply == Overdrawn(limit=100)
    snapshot = ann.ask(InspectEntity(), timeout=20)
    assert snapshot == EntitySnapshot(id="ann", active=True, state={"balance": 7})
    unseen = system.entity("wallets-life", "nobody").ask(InspectEntity(), timeout=20)
    assert unseen == EntitySnapshot(id="nobody", active=False)
    info = system.entity_info("wallets-life")  # reported with the replies: no waiting
    assert (info.active, info.activations, info.crashes) == (2, 2, 0)
    with pytest.raises(UnknownMessageError):  # not a Wallet message: refused locally
        ann.ask(Read(), timeout=20)
    assert system.shutdown(timeout=30)
    assert sorted(_journal(journal)) == [
        "activate ann",
        "activate bob",
        "passivate ann",
        "passivate bob",
    ]
    assert os.getpid() not in _pids(journal)
    after = system.entity_info("wallets-life")
    assert after.passivations["shutdown"] == 2 and after.active == 0


def test_an_entity_crash_is_that_entitys_alone(
    ray_settings: RaySettings, make_system: Any, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    system = make_system([_kind("wallets-crash", ray_settings, journal, shards=1)])
    ann, bob = system.entity("wallets-crash", "ann"), system.entity("wallets-crash", "bob")
    ann.ask(Deposit(amount=5), timeout=20)
    bob.ask(Deposit(amount=6), timeout=20)
    with pytest.raises(AgentCrashedError) as raised:
        ann.ask(Explode(), timeout=20)
    assert raised.value.reply.agent == "wallets-crash/ann"
    assert "wallet ann exploded" in raised.value.reply.error
    assert bob.ask(Peek(), timeout=20).balance == 6  # same shard, untouched
    assert ann.ask(Peek(), timeout=20).balance == 0  # a fresh instance (memory kind)
    assert system.cell("wallets-crash.1").incarnation == 1  # the shard did not restart
    info = system.entity_info("wallets-crash")
    assert (info.crashes, info.activations, info.active) == (1, 3, 2)
    with pytest.raises(AgentCrashedError) as unavailable:
        ann.ask(Remote(what="timer"), timeout=20)
    assert "RemoteFeatureUnavailable" in unavailable.value.reply.error
    assert "entity timers" in unavailable.value.reply.error


def test_a_killed_ray_actor_restarts_the_shard_and_its_entities_reactivate(
    ray_settings: RaySettings, make_system: Any, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    system = make_system([_kind("wallets-kill", ray_settings, journal, shards=2)])
    ids = [f"w{i}" for i in range(8)]
    for entity_id in ids:
        system.entity("wallets-kill", entity_id).ask(Deposit(amount=1), timeout=20)
    victim = system.entity_shard("wallets-kill", "w0")
    survivors = [i for i in ids if system.entity_shard("wallets-kill", i) != victim]
    assert survivors, "every id hashed to one shard"
    ray.kill(ray.get_actor(victim, namespace=NAMESPACE), no_restart=True)

    def finds_it_gone() -> bool:  # ray.kill returns before the actor is dead: ask until then
        try:
            system.entity("wallets-kill", "w0").ask(Peek(), timeout=20)
        except AgentCrashedError:
            return True
        return False

    wait_until(finds_it_gone, timeout=30, what="an ask that finds the actor gone")
    wait_until(
        lambda: system.cell(victim).incarnation == 2 and system.status(victim) == "running",
        timeout=30,
        what=f"{victim} restarted",
    )
    assert system.entity("wallets-kill", "w0").ask(Peek(), timeout=20).balance == 0
    for entity_id in survivors:  # the other shard kept its entities and their state
        assert system.entity("wallets-kill", entity_id).ask(Peek(), timeout=20).balance == 1
    assert _journal(journal).count("activate w0") == 2
    info = system.entity_info("wallets-kill")
    assert info.activations == len(ids) + 1


def test_passivation_by_idle_time_by_count_and_on_request(
    ray_settings: RaySettings, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    clock = ManualClock()
    kind = _kind("wallets-idle", ray_settings, journal, shards=1, passivate_after=10, max_active=2)
    system = ActorSystem([kind], SystemConfig(serialize_messages=True), clock=clock).start()
    try:
        wallet = system.entity  # ("wallets-idle", id)
        wallet("wallets-idle", "old").ask(Deposit(amount=1), timeout=20)
        clock.advance(6)
        wallet("wallets-idle", "new").ask(Deposit(amount=1), timeout=20)
        clock.advance(6)  # old: idle 12 s > 10 s (the system's clock); new: 6 s
        wait_until(
            lambda: system.entity_info("wallets-idle").passivations["idle"] == 1,
            timeout=20,
            what="old passivated",
        )
        assert _journal(journal)[-1] == "passivate old"
        assert system.entity_info("wallets-idle").active == 1
        assert wallet("wallets-idle", "old").ask(Peek(), timeout=20).balance == 0
        wallet("wallets-idle", "third").ask(Peek(), timeout=20)  # over max_active 2
        assert _journal(journal)[-1] == "passivate new"
        assert wallet("wallets-idle", "third").ask(Rest(), timeout=20).balance == 0
        assert _journal(journal)[-1] == "passivate third"
        info = system.entity_info("wallets-idle")
        assert info.passivations | {"shutdown": 0} == {
            "idle": 1,
            "max_active": 1,
            "requested": 1,
            "save_failed": 0,
            "conflict": 0,
            "shutdown": 0,
        }
        assert info.active == 1
    finally:
        assert system.shutdown(timeout=30)


def test_a_durable_kind_is_refused_on_ray(
    ray_settings: RaySettings, make_system: Any, tmp_path: Path
) -> None:
    kind = _kind("wallets-durable", ray_settings, tmp_path / "j", state=EntityState.DURABLE)
    with pytest.raises(StartFailed) as raised:
        make_system([kind], data_dir=str(tmp_path))
    assert "state: durable is not available with placement: ray" in str(raised.value)


def test_http_routes_reach_entities_on_ray(
    ray_settings: RaySettings, make_system: Any, tmp_path: Path
) -> None:
    system = make_system(
        [
            _kind("wallets-http", ray_settings, tmp_path / "journal", shards=2),
            WorkerSpec(name="introspect", agent=Introspect),
        ]
    )
    with serving(system) as client:
        first = client.post("/v1/entities/wallets-http/ann/Deposit", json={"amount": 5})
        assert first.status_code == 200, first.text
        assert first.json()["balance"] == 5 and first.json()["type"] == "Balance"
        over = client.post("/v1/entities/wallets-http/ann/Deposit", json={"amount": 500})
        assert over.status_code == 409, over.text
        assert over.json()["reply"] == {"type": "Overdrawn", "limit": 100, "detail": ""}
        crashed = client.post("/v1/entities/wallets-http/bob/Explode", json={})
        assert crashed.status_code == 503, crashed.text  # as for a local entity
        assert crashed.json()["reply"]["agent"] == "wallets-http/bob"
        kind = client.get("/v1/entities/wallets-http").json()
        assert (kind["active"], kind["activations"], kind["crashes"]) == (1, 2, 1)
        view = client.get("/v1/entities/wallets-http/ann").json()
        assert view == {
            "type": "EntitySnapshot",
            "id": "ann",
            "active": True,
            "state": {"balance": 5},
        }
        agents = {a["name"]: a for a in client.get("/v1/agents").json()}
        assert agents["wallets-http.1"]["placement"] == "ray"


def test_a_wiring_places_an_entity_kind_on_ray(ray_settings: RaySettings, tmp_path: Path) -> None:
    text = (Path(__file__).parents[1] / "phoenix" / "ray_wirings" / "ray_entities.yaml").read_text()
    text = text.split("    - name: vaults")[0].replace("vibe-phoenix", NAMESPACE)
    root, _ = phoenix.build(phoenix.load_text(text))
    (kind,) = root.children
    assert kind.agent.shard_agent.__mro__[1] is RayShard  # type: ignore[union-attr]
    system = ActorSystem(root, SystemConfig(data_dir=str(tmp_path), serialize_messages=True))
    system.start()
    try:
        wallet = system.entity("wallets", "ann")
        assert wallet.ask(Deposit(amount=60), timeout=20).balance == 60
        with pytest.raises(AskError):  # the wiring's config: limit 100
            wallet.ask(Deposit(amount=60), timeout=20)
    finally:
        assert system.shutdown(timeout=30)


def _shards(system: ActorSystem, kind: str) -> list[Any]:
    return list(system.cell(kind).children.values())


def test_placing_an_entity_class(ray_settings: RaySettings) -> None:
    cls = placed(Wallet, ray_settings)
    assert placed(Wallet, ray_settings) is cls  # cached: equal specs for live reload
    assert issubclass(cls, Wallet) and cls.__qualname__ == "Wallet" and cls.State is Wallet.State
    assert cls.message_types() == Wallet.message_types()
    with pytest.raises(TypeError, match="already placed on Ray"):
        placed(cls, ray_settings)
    with pytest.raises(TypeError, match="not an Agent class"):
        placed(int, ray_settings)  # type: ignore[call-overload]
