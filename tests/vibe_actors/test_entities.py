"""Entities: activation on first message, isolation, passivation, timers, routing, errors."""

from __future__ import annotations

import threading
from typing import Any

import msgspec
import pytest

from vibe_actors import (
    ActorSystem,
    AgentCrashedError,
    Entity,
    EntitySpec,
    Message,
    SystemConfig,
    UnavailableError,
    UnknownAgent,
    UnknownMessageError,
    WorkerSpec,
    handler,
)
from vibe_actors.testing import ManualClock

from tests.conftest import wait_until


class Add(Message):
    n: int


class Get(Message):
    pass


class Boom(Message):
    pass


class Block(Message):
    key: str


class Leave(Message):
    pass


class Tick(Message):
    pass


class Remind(Message):
    delay: float


class AskPeer(Message):
    peer: str


class Total(Message):
    id: str
    total: int
    ticks: int = 0


class CounterState(msgspec.Struct):
    total: int = 0
    ticks: int = 0


#: Test hooks (the entity classes are module-level: the runtime builds them).
EVENTS: list[tuple[str, str]] = []
GATES: dict[str, threading.Event] = {}


class Counter(Entity[CounterState]):
    def on_activate(self) -> None:
        EVENTS.append(("activate", self.id))
        if self.id == "bad-start":
            raise RuntimeError("cannot start")

    def on_passivate(self) -> None:
        EVENTS.append(("passivate", self.id))

    @handler
    def add(self, msg: Add) -> Total:
        self.state = CounterState(total=self.state.total + msg.n, ticks=self.state.ticks)
        return Total(id=self.id, total=self.state.total, ticks=self.state.ticks)

    @handler
    def get(self, msg: Get) -> Total:
        return Total(id=self.id, total=self.state.total, ticks=self.state.ticks)

    @handler
    def boom(self, msg: Boom) -> None:
        raise RuntimeError(f"boom in {self.id}")

    @handler
    def block(self, msg: Block) -> None:
        GATES[msg.key].wait(10)

    @handler
    def leave(self, msg: Leave) -> None:
        self.passivate()

    @handler
    def remind(self, msg: Remind) -> None:
        self.start_timer("tick", Tick(), msg.delay)

    @handler
    def ask_peer(self, msg: AskPeer) -> Total:
        return self.system.entity("counters", msg.peer).ask(Get(), timeout=30)

    @handler
    def tick(self, msg: Tick) -> None:
        self.state = CounterState(total=self.state.total, ticks=self.state.ticks + 1)


@pytest.fixture(autouse=True)
def _clean_hooks():
    EVENTS.clear()
    yield
    for gate in GATES.values():
        gate.set()
    GATES.clear()


def kind(name: str = "counters", **entity: Any) -> WorkerSpec:
    return WorkerSpec(name=name, agent=Counter, entity=EntitySpec(**entity))


def test_first_message_activates_and_state_lives_while_active(make_system):
    system = make_system([kind(shards=2)])
    cart = system.entity("counters", "a")
    assert cart.ask(Add(n=2)) == Total(id="a", total=2)
    assert cart.ask(Add(n=3)) == Total(id="a", total=5)
    assert system.ref("counters/b").ask(Get()) == Total(id="b", total=0)
    assert EVENTS == [("activate", "a"), ("activate", "b")]
    router = system.routes.entity_kind("counters")
    assert router is not None and router.stats.total_active() == 2
    assert sum(router.stats.activations) == 2


def test_a_crash_drops_that_entity_alone(make_system):
    system = make_system([kind(shards=1)])  # one shard: both ids share a thread
    a, b = system.entity("counters", "a"), system.entity("counters", "b")
    a.ask(Add(n=1))
    b.ask(Add(n=7))
    with pytest.raises(AgentCrashedError) as crashed:
        a.ask(Boom())
    assert crashed.value.reply.agent == "counters/a"
    assert "boom in a" in crashed.value.reply.error
    assert b.ask(Get()).total == 7  # the other entity kept its state
    assert a.ask(Get()).total == 0  # a fresh instance (memory state starts again)
    assert system.cell("counters.1").incarnation == 1  # the shard did not restart
    assert EVENTS.count(("activate", "a")) == 2


def test_failed_activation_answers_the_asker_and_the_next_message_retries(make_system):
    system = make_system([kind(shards=1)])
    with pytest.raises(AgentCrashedError, match="activation failed"):
        system.entity("counters", "bad-start").ask(Get())
    with pytest.raises(AgentCrashedError):
        system.entity("counters", "bad-start").ask(Get())
    assert EVENTS.count(("activate", "bad-start")) == 2
    assert system.entity("counters", "fine").ask(Get()).total == 0


def test_unknown_message_is_refused_and_dead_lettered(make_system):
    system = make_system([kind(shards=1)])
    with pytest.raises(UnknownMessageError):
        system.entity("counters", "a").ask(Total(id="x", total=1))
    letters = system.dead_letters.recent()
    assert letters[-1].recipient == "counters/a" and letters[-1].reason == "unhandled"


def test_ids_are_checked_and_kinds_must_exist(make_system):
    system = make_system([kind(shards=1)])
    with pytest.raises(ValueError, match="invalid entity id"):
        system.entity("counters", "")
    with pytest.raises(ValueError, match="invalid entity id"):
        system.entity("counters", "x" * 257)
    assert system.entity("counters", "x" * 256).ask(Get()).total == 0
    with pytest.raises(UnknownAgent):
        system.entity("nope", "1")
    with pytest.raises(UnavailableError):  # a kind/id ref to a name that is not a kind
        system.ref("nope/1").ask(Get(), timeout=1)


def test_idle_entities_passivate_after_the_configured_time():
    clock = ManualClock()
    system = ActorSystem(
        [kind(shards=1, passivate_after=10)], SystemConfig(serialize_messages=True), clock=clock
    ).start()
    try:
        system.entity("counters", "old").ask(Add(n=1))
        clock.advance(6)
        system.entity("counters", "new").ask(Add(n=1))
        clock.advance(6)  # old: idle 12 s > 10 s; new: 6 s
        router = system.routes.entity_kind("counters")
        wait_until(lambda: router.stats.total_active() == 1, what="old passivated")
        assert ("passivate", "old") in EVENTS and ("passivate", "new") not in EVENTS
        assert router.stats.passivation_counts() == {"idle": 1}
        assert system.entity("counters", "old").ask(Get()).total == 0  # reactivated, fresh
    finally:
        system.shutdown()


def test_max_active_passivates_the_least_recently_used(make_system):
    system = make_system([kind(shards=1, max_active=2, passivate_after=0)])
    for entity_id in ("a", "b"):
        system.entity("counters", entity_id).ask(Add(n=1))
    system.entity("counters", "a").ask(Get())  # a is now more recent than b
    system.entity("counters", "c").ask(Get())  # over max_active: b goes
    assert EVENTS[-1] == ("passivate", "b")
    router = system.routes.entity_kind("counters")
    assert router.stats.total_active() == 2
    assert router.stats.passivation_counts() == {"max_active": 1}


def test_an_entity_can_passivate_itself(make_system):
    system = make_system([kind(shards=1)])
    entity = system.entity("counters", "a")
    entity.ask(Add(n=4))
    entity.ask(Leave())
    assert EVENTS[-1] == ("passivate", "a")
    assert system.routes.entity_kind("counters").stats.total_active() == 0


def test_shutdown_passivates_every_active_entity(make_system):
    system = make_system([kind(shards=2)])
    for entity_id in "abc":
        system.entity("counters", entity_id).ask(Get())
    system.shutdown()
    assert sorted(e for e in EVENTS if e[0] == "passivate") == [
        ("passivate", "a"),
        ("passivate", "b"),
        ("passivate", "c"),
    ]


def test_entity_timers_fire_and_end_with_the_activation():
    clock = ManualClock()
    system = ActorSystem(
        [kind(shards=1, passivate_after=0)], SystemConfig(serialize_messages=True), clock=clock
    ).start()
    try:
        entity = system.entity("counters", "a")
        entity.ask(Remind(delay=5))
        clock.advance(5)
        wait_until(lambda: entity.ask(Get()).ticks == 1, what="the timer's tick")
        entity.ask(Remind(delay=5))
        entity.ask(Leave())  # passivation cancels the timer
        clock.advance(10)
        assert entity.ask(Get()).ticks == 0  # fresh instance, and no tick arrived
    finally:
        system.shutdown()


def test_one_sender_order_is_kept_per_entity(make_system):
    system = make_system([kind(shards=3)])
    refs = [system.entity("counters", str(i)) for i in range(10)]
    futures = [ref.ask_future(Add(n=1)) for _ in range(20) for ref in refs]
    totals: dict[str, list[int]] = {}
    for future in futures:
        reply = future.result()
        totals.setdefault(reply.id, []).append(reply.total)
    assert all(seen == list(range(1, 21)) for seen in totals.values())


def test_a_hung_shard_is_replaced_and_other_entities_messages_are_kept(make_system):
    system = make_system([kind(shards=1)], leak_ok=True)
    GATES["h"] = threading.Event()
    system.entity("counters", "a").tell(Block(key="h"))
    wait_until(lambda: system.cell("counters.1").host.current is not None, what="blocked")
    queued = system.entity("counters", "b").ask_future(Add(n=5), timeout=10)
    assert system.replace_hung("counters.1", "test") is not None
    assert queued.result().total == 5  # served by the next incarnation
    assert system.cell("counters.1").incarnation == 2


def test_a_plain_send_to_the_kind_router_is_refused(make_system):
    system = make_system([kind(shards=1)])
    from vibe_actors._ref import Ref

    with pytest.raises(UnavailableError, match="entity kind"):
        Ref(system, "counters/").ask(Get(), timeout=1)


def test_the_tree_and_agent_lists_show_the_kind(make_system):
    system = make_system([kind(shards=2)])
    (node,) = system.tree().children
    assert node.kind == "entities" and node.agent.endswith(":Counter")
    assert [child.name for child in node.children] == ["counters.1", "counters.2"]
    assert Add in system.message_types("counters")


def test_an_entity_kind_needs_an_entity_class():
    from tests.vibe_actors.agents import Worker

    with pytest.raises(TypeError, match="Entity subclass"):
        ActorSystem([WorkerSpec(name="x", agent=Worker, entity=EntitySpec())])


def test_state_type_must_be_a_struct_with_defaults():
    with pytest.raises(TypeError, match="msgspec.Struct"):

        class Bad(Entity[int]):  # type: ignore[type-var]
            pass

    class NoDefaults(msgspec.Struct):
        x: int

    with pytest.raises(TypeError, match="defaults"):

        class Worse(Entity[NoDefaults]):
            pass


def test_entities_cannot_be_constructed_by_hand():
    with pytest.raises(TypeError, match="created by the runtime"):
        Counter()


def test_metrics_count_activations_passivations_and_crashes(make_system):
    from prometheus_client import generate_latest

    system = make_system([kind(shards=2, max_active=2, passivate_after=0)])
    for entity_id in "abc":
        system.entity("counters", entity_id).ask(Get())
    with pytest.raises(AgentCrashedError):
        system.entity("counters", "c").ask(Boom())
    text = generate_latest(system.registry).decode()
    assert 'vibe_entity_activations_total{kind="counters"} 3.0' in text
    assert 'vibe_entity_crashes_total{kind="counters"} 1.0' in text
    assert 'vibe_entity_passivations_total{kind="counters",reason="idle"} 0.0' in text
    assert 'vibe_entity_activation_seconds_count{kind="counters"} 3.0' in text
    active = system.routes.entity_kind("counters").stats.total_active()
    assert f'vibe_entities_active{{kind="counters"}} {float(active)}' in text


def test_an_entity_probe_records_what_each_entity_receives(make_system):
    from vibe_actors.testing import entity_probe_spec, probes

    system = make_system([entity_probe_spec("carts")])
    probe = probes(system)["carts"].reply_with(Get, Total(id="?", total=42))
    system.entity("carts", "a").tell(Add(n=1))
    assert probe.expect(Add(n=1)) == Add(n=1) and probe.last_entity == "a"
    assert system.entity("carts", "b").ask(Get()) == Total(id="?", total=42)
    assert probe.last_entity == "b"


def test_live_reload_keeps_an_unchanged_kind_and_rebuilds_a_changed_one(make_system):
    from vibe_actors import SupervisorSpec

    system = make_system(SupervisorSpec(name="root", children=(kind(shards=2),)))
    system.entity("counters", "a").ask(Add(n=3))
    other = WorkerSpec(name="other", agent=Counter, entity=EntitySpec(shards=1))
    report = system.apply(SupervisorSpec(name="root", children=(kind(shards=2), other)))
    assert report.added == ("other",) and "counters" in report.unchanged
    assert system.entity("counters", "a").ask(Get()).total == 3  # kept, in memory
    assert system.entity("other", "z").ask(Add(n=1)).total == 1
    report = system.apply(SupervisorSpec(name="root", children=(kind(shards=3), other)))
    assert report.changed == ("counters",)
    assert [c.name for c in system.tree().children[0].children] == [
        "counters.1",
        "counters.2",
        "counters.3",
    ]
    assert system.entity("counters", "a").ask(Get()).total == 0  # a new kind: memory state gone
    assert ("passivate", "a") in EVENTS  # the old shards passivated their entities on stop
    removed = system.apply(SupervisorSpec(name="root", children=(kind(shards=3),)))
    assert removed.removed == ("other",)
    with pytest.raises(UnknownAgent):
        system.entity("other", "z")


def test_a_ref_follows_its_entity_when_the_shard_count_changes(make_system):
    from vibe_actors import SupervisorSpec

    system = make_system(SupervisorSpec(name="root", children=(kind(shards=2),)))
    ids = [str(i) for i in range(20)]
    refs = {entity_id: system.entity("counters", entity_id) for entity_id in ids}
    for ref in refs.values():
        ref.ask(Add(n=1))
    system.apply(SupervisorSpec(name="root", children=(kind(shards=5),)))
    for entity_id, ref in refs.items():  # the old refs: their shard routes are gone
        assert ref.ask(Add(n=2)).total == 2  # reached, once, on the shard it hashes to now
        shard = system.entity_shard("counters", entity_id)
        assert entity_id in system.cell(shard).agent.active
    router = system.routes.entity_kind("counters")
    assert router.stats.total_active() == len(ids)  # one instance per id


def test_an_entity_asking_one_of_its_own_shard_is_refused_at_once(make_system):
    from vibe_actors import AgentCrashedError

    system = make_system([kind(shards=1)])
    with pytest.raises(AgentCrashedError, match="SelfAsk"):  # not a 30 s wait for a deadlock
        system.entity("counters", "a").ask(AskPeer(peer="b"), timeout=10)
    assert system.entity("counters", "b").ask(Get()).total == 0  # the shard kept serving


def test_a_ref_made_before_the_start_reaches_its_shard(tmp_path):
    system = ActorSystem([kind(shards=3)], SystemConfig(data_dir=str(tmp_path)))
    ref = system.entity("counters", "early")
    system.start()
    try:
        assert ref.ask(Add(n=5)).total == 5
        assert ref.ask(Get()).total == 5
    finally:
        system.shutdown()
