"""Pools behind one name: round-robin, least-loaded, consistent-hash."""

from __future__ import annotations

import collections

from vibe_actors import Ping, PoolSpec, Routing, WorkerSpec

from tests.vibe_actors.agents import Add, Block, Boom, Echo, Worker


def pool(routing, size=3, **kwargs):
    return WorkerSpec(name="p", agent=Worker, pool=PoolSpec(size=size, routing=routing, **kwargs))


def test_round_robin_spreads_evenly(make_system):
    system = make_system([pool(Routing.ROUND_ROBIN)])
    by = collections.Counter(system.ask("p", Echo(text="x")).by for _ in range(9))
    assert by == {"p.1": 3, "p.2": 3, "p.3": 3}


def test_consistent_hash_sends_a_key_to_the_same_worker(make_system):
    system = make_system([pool(Routing.CONSISTENT_HASH, size=4, hash_key="key")])
    owners = {}
    for key in [f"k{i}" for i in range(40)]:
        first = system.cell("p.1").stats.total() + system.cell("p.2").stats.total()
        system.ask("p", Add(n=1, key=key))
        owners[key] = first
    # Same key, same worker, every time:
    for key in ("k1", "k7", "k33"):
        totals = {system.ask("p", Add(n=0, key=key)).total for _ in range(5)}
        assert len(totals) == 1
    used = {n for n in ("p.1", "p.2", "p.3", "p.4") if system.cell(n).stats.total() > 0}
    assert len(used) >= 3  # 40 keys on 4 workers do not all land on one


def test_least_loaded_avoids_a_busy_worker(make_system, journal):
    spec = WorkerSpec(
        name="p", agent=Worker, config=journal, pool=PoolSpec(size=2, routing=Routing.LEAST_LOADED)
    )
    system = make_system([spec])
    system.ref("p.1").tell(Block())
    assert journal.entered.wait(5)
    system.ref("p.1").tell(Add(n=1))  # p.1 now has a queue
    replies = {system.ask("p", Echo(text="x")).by for _ in range(5)}
    assert replies == {"p.2"}
    journal.gate.set()


def test_a_crashed_worker_is_restarted_by_the_pool(make_system):
    system = make_system([pool(Routing.ROUND_ROBIN, size=2)])
    system.ref("p.1").tell(Boom())
    assert system.ask("p.1", Ping()).incarnation == 2
    assert system.ask("p.2", Ping()).incarnation == 1
    kinds = {node.name: node.kind for node in system.walk()}
    assert kinds["p"] == "pool" and kinds["p.1"] == "worker"


def test_message_types_of_a_pool_and_a_worker(make_system):
    from vibe_actors import UnknownAgent

    system = make_system([pool(Routing.ROUND_ROBIN, size=2), WorkerSpec(name="w", agent=Worker)])
    assert Echo in system.message_types("p") and Ping in system.message_types("p")
    assert system.message_types("w") == system.message_types("p")
    try:
        system.message_types("nope")
    except UnknownAgent as exc:
        assert exc.name == "nope"
    else:
        raise AssertionError("expected UnknownAgent")


def test_least_loaded_prefers_an_idle_worker_to_one_busy_with_an_empty_queue(make_system, journal):
    """The message in progress counts: a quick job never waits behind a long one."""
    spec = WorkerSpec(
        name="p", agent=Worker, config=journal, pool=PoolSpec(size=3, routing=Routing.LEAST_LOADED)
    )
    system = make_system([spec])
    try:
        system.ref("p.2").tell(Block())  # p.2 busy with a long job, nothing queued
        assert journal.entered.wait(5)
        replies = set()
        for i in range(6):  # one quick job at a time: p.1 and p.3 are idle at each send
            future = system.ref("p").ask_future(Echo(text=str(i)), timeout=10)
            assert system.cell("p.2").mailbox.qsize() == 0, "routed behind the long job"
            replies.add(future.result().by)
        assert replies == {"p.1", "p.3"}  # the idle ones, ties broken round-robin
    finally:
        journal.gate.set()
