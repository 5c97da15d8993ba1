"""Introspect: the tree and per-agent views, with rates, failures and pools."""

from __future__ import annotations

import msgspec
import pytest

from vibe_actors import AskError, PoolSpec, SupervisorSpec, WorkerSpec, decode_json, encode_json
from vibe_actors._cell import _frames
from vibe_actors.agents.introspect import (
    AgentList,
    Agents,
    Describe,
    Description,
    Introspect,
    IntrospectConfig,
    NoSuchAgent,
    Tree,
    TreeReply,
    describe,
    tree,
)

from tests.conftest import wait_until, worker
from tests.vibe_actors.agents import Add, Boom, Echo

INTROSPECT = WorkerSpec(
    name="introspect", agent=Introspect, config=IntrospectConfig(sample_interval=0.05)
)


def system_with(make_system, *children):
    return make_system(
        SupervisorSpec(
            name="root",
            children=(
                SupervisorSpec(name="group", children=children),
                WorkerSpec(name="pool", agent=worker("x").agent, pool=PoolSpec(size=2)),
                INTROSPECT,
            ),
        )
    )


def test_agents_lists_workers_and_pools_with_their_protocol(make_system):
    system = system_with(make_system, worker("a"), worker("b"))
    reply = system.ask("introspect", Agents())
    assert isinstance(reply, AgentList)
    names = [view.name for view in reply.agents]
    assert names == ["a", "b", "pool", "pool.1", "pool.2", "introspect"]
    a = reply.agents[0]
    assert (a.kind, a.status, a.restarts, a.incarnation, a.degraded) == (
        "worker", "running", 0, 1, None
    )  # fmt: skip
    assert {"Add", "Echo", "Ping"} <= set(a.messages)
    assert a.agent == "tests.vibe_actors.agents:Worker"
    assert reply.agents[2].kind == "pool"


def test_failures_restarts_and_handled_counts_show(make_system):
    system = system_with(make_system, worker("a"))
    for n in range(5):
        system.ask("a", Add(n=n))
    system.inject_fault("a", "crash")
    wait_until(lambda: system.cell("a").incarnation == 2 and system.status("a") == "running")
    reply = system.ask("introspect", Describe(name="a"))
    assert isinstance(reply, Description)
    view = reply.agent
    assert view.restarts == 1 and view.incarnation == 2
    assert view.last_failure.startswith("InjectedCrash") and view.last_failure_at > 0
    assert view.last_traceback.startswith("Traceback (most recent call last)")
    assert view.last_traceback.rstrip().endswith(view.last_failure)  # the raise, last
    assert view.handled >= 5


def test_a_crash_traceback_names_the_raise_and_stays_bounded(make_system):
    system = system_with(make_system, worker("a"))
    with pytest.raises(AskError):
        system.ask("a", Boom(why="x" * 20_000))
    wait_until(lambda: system.cell("a").incarnation == 2)
    view = system.ask("introspect", Describe(name="a")).agent
    trace = view.last_traceback
    assert trace.startswith("Traceback (most recent call last):\n")
    assert "in boom\n    raise RuntimeError(msg.why)\n" in trace  # the handler's line
    assert trace.endswith(view.last_failure + "\n") and len(view.last_failure) == 1000
    assert len(trace) < 8003


def test_a_deep_crash_keeps_its_innermost_frames():
    def down(n: int) -> None:
        if n == 0:
            raise RuntimeError("bottom")
        down(n - 1)

    with pytest.raises(RuntimeError) as caught:
        down(200)
    frames = _frames(caught.value)
    assert len(frames) == 50 and frames[-1][2] == "down"
    assert frames[-1][1] == down.__code__.co_firstlineno + 2  # the raise


def test_rates_come_from_sampled_windows_and_pools_sum_their_workers(make_system):
    system = system_with(make_system, worker("a"))
    for _ in range(200):
        system.ask("pool", Echo(text="x"))

    def pool_rate() -> float:
        (view,) = [v for v in system.ask("introspect", Agents()).agents if v.name == "pool"]
        return view.rate

    wait_until(lambda: pool_rate() > 0, what="a pool rate after a window with traffic")
    views = {v.name: v for v in system.ask("introspect", Agents()).agents}
    assert views["pool"].handled == views["pool.1"].handled + views["pool.2"].handled >= 200
    wait_until(lambda: pool_rate() == 0, what="the rate falling back to 0 when idle")


def test_unknown_agent_is_a_typed_404(make_system):
    system = system_with(make_system, worker("a"))
    with pytest.raises(AskError) as raised:
        system.ask("introspect", Describe(name="nobody"))
    assert isinstance(raised.value.reply, NoSuchAgent)
    assert raised.value.reply.http_status == 404
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"type": "Describe", "name": ""}', type=Describe)


def test_tree_nests_supervisors_and_round_trips_json(make_system):
    system = system_with(make_system, worker("a"))
    reply = system.ask("introspect", Tree())
    assert isinstance(reply, TreeReply)
    root = reply.root
    assert (root.name, root.kind, root.strategy) == ("root", "supervisor", "one_for_one")
    assert [child.name for child in root.children] == ["group", "pool", "introspect"]
    assert [c.name for c in root.children[1].children] == ["pool.1", "pool.2"]
    assert decode_json(encode_json(reply), TreeReply) == reply


def test_pure_functions_work_without_the_agent(make_system):
    system = make_system([worker("a")])
    assert [view.name for view in describe(system)] == ["a"]
    assert tree(system).children[0].name == "a"


def test_it_serves_again_after_its_own_restart_and_reports_it(make_system):
    system = system_with(make_system, worker("a"))
    system.inject_fault("introspect", "crash")
    wait_until(lambda: system.cell("introspect").incarnation == 2)
    wait_until(lambda: system.status("introspect") == "running")
    reply = system.ask("introspect", Describe(name="introspect"))
    assert (reply.agent.restarts, reply.agent.incarnation) == (1, 2)


def test_an_entity_kind_sums_its_shards(make_system):
    from vibe_actors import EntitySpec

    from tests.vibe_actors.test_entities import Counter, Get

    kind = WorkerSpec(name="counters", agent=Counter, entity=EntitySpec(shards=3))
    system = system_with(make_system, kind)
    for i in range(12):
        system.entity("counters", f"id{i}").ask(Get())
    views = {view.name: view for view in system.ask("introspect", Agents()).agents}
    shards = [views[f"counters.{i}"].handled for i in (1, 2, 3)]
    assert views["counters"].kind == "entities"
    assert views["counters"].handled == sum(shards) >= 12
    (node,) = [n for n in tree(system).children[0].children if n.name == "counters"]
    assert node.handled == sum(shards)
