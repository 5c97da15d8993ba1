"""Durable entities on either backend, and on one PostgreSQL database shared by replicas:
writes fenced by a version, so a stale activation never overwrites a newer state (its
message is answered EntityConflict, 409) and no acknowledged increment is ever lost."""

from __future__ import annotations

import threading
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
import psycopg
import pytest
from prometheus_client import generate_latest
from psycopg import sql

from vibe_actors import (
    Entity,
    EntityConflict,
    EntityConflictError,
    EntitySpec,
    EntityState,
    Message,
    UnavailableError,
    WorkerSpec,
    handler,
)
from vibe_actors import _entity_store as entity_store
from vibe_actors._entity_store import SCHEMA, EntityStateStore, Write
from vibe_actors.store import (
    PostgresDatabase,
    SqliteDatabase,
    StoreRejected,
    database_path,
    parse_store_url,
)

from tests.postgres import agent_sql
from tests.vibe_actors.test_entity_writer import WAIT, _Gate

KIND = "tallies"
NAMESPACE = f"entities.{KIND}"


class Inc(Message):
    pass


class Peek(Message):
    pass


class Tally(Message):
    value: int


class Count(msgspec.Struct):
    value: int = 0


class Counter(Entity[Count]):
    @handler
    def inc(self, msg: Inc) -> Tally:
        self.state.value += 1
        return Tally(value=self.state.value)

    @handler
    def peek(self, msg: Peek) -> Tally:
        return Tally(value=self.state.value)


def kind(shards: int = 2) -> WorkerSpec:
    spec = EntitySpec(shards=shards, state=EntityState.DURABLE, passivate_after=0)
    return WorkerSpec(name=KIND, agent=Counter, entity=spec)


def open_states(data_dir: Any, store: str) -> EntityStateStore:
    """The kind's store, opened behind the systems' backs."""
    if not store:
        return EntityStateStore(SqliteDatabase(database_path(data_dir, NAMESPACE), SCHEMA))
    return EntityStateStore(PostgresDatabase(parse_store_url(store), NAMESPACE, SCHEMA))


def saved(data_dir: Any, store: str) -> dict[str, tuple[int, int]]:
    """id -> (counter, version) as stored (version 0 on SQLite, which keeps none)."""
    if store:
        rows = agent_sql(data_dir, store, NAMESPACE, "SELECT id, state, version FROM entity_state")
    else:
        rows = [(*r, 0) for r in agent_sql(data_dir, "", NAMESPACE, "SELECT * FROM entity_state")]
    return {
        str(i): (msgspec.msgpack.decode(bytes(s), type=Count).value, int(v))  # type: ignore[arg-type]
        for i, s, v in rows
    }


# -- the store, on both backends ---------------------------------------------------------


def _encoded(value: int) -> bytes:
    return msgspec.msgpack.encode(Count(value=value))


def test_the_store_saves_and_reads_states(tmp_path, store):
    states = open_states(tmp_path, store)
    try:
        assert states.get("a") is None
        assert states.put_many({"a": (_encoded(1), 0, 1), "b": (_encoded(5), 0, 1)}) == set()
        assert states.put_many({"a": (_encoded(2), 1, 2)}) == set()
        found = states.get("a")
        assert found is not None and found[0] == _encoded(2)
        assert found[1] == (2 if store else 0)  # SQLite keeps no version: one writer
        assert states.count() == 2
        assert states.backend == ("postgresql" if store else "sqlite")
    finally:
        states.close()


def test_a_write_built_on_an_old_version_is_a_conflict_and_spares_the_others(
    tmp_path, postgres_url
):
    states = open_states(tmp_path, postgres_url)
    try:
        states.put_many({"a": (_encoded(1), 0, 1), "b": (_encoded(1), 0, 1)})
        batch = {
            "a": (_encoded(9), 0, 1),  # "new", but a row exists: created by another replica
            "b": (_encoded(2), 1, 2),  # current: written
            "c": (_encoded(1), 0, 1),  # new: written
        }
        assert states.put_many(batch) == {"a"}
        assert states.put_many({"b": (_encoded(7), 1, 2)}) == {"b"}  # b is at 2 now
        assert states.get("a") == (_encoded(1), 1)
        assert states.get("b") == (_encoded(2), 2)
        assert states.get("c") == (_encoded(1), 1)
    finally:
        states.close()


def test_two_writers_committing_the_same_ids_in_any_order_never_deadlock(tmp_path, postgres_url):
    ids = [f"id{i:03d}" for i in range(200)]
    first = open_states(tmp_path, postgres_url)
    first.put_many({i: (_encoded(0), 0, 1) for i in ids})
    stores = [first, open_states(tmp_path, postgres_url)]
    start = threading.Barrier(2)

    def write(index: int) -> list[set[str]]:
        states, order = stores[index], (ids if index == 0 else list(reversed(ids)))
        start.wait(10)
        results = []
        for version in range(1, 21):  # each writer thinks it is the only one: most conflict
            writes = {i: (_encoded(version), version, version + 1) for i in order}
            results.append(set(states.put_many(writes)))
        return results

    try:
        with ThreadPoolExecutor(2) as pool:
            outcomes = list(pool.map(write, (0, 1)))  # a deadlock would raise StoreError
        for entity_id in ids:
            value, version = first.get(entity_id)  # type: ignore[misc]
            written = sum(entity_id not in c for outcome in outcomes for c in outcome)
            assert version == 1 + written  # each write that was not a conflict moved it once
    finally:
        for states in stores:
            states.close()


# -- a durable kind on both backends -------------------------------------------------------


def test_a_durable_kind_keeps_its_states_on_the_systems_store(make_system, tmp_path, store):
    system = make_system([kind()], data_dir=str(tmp_path / "one"), store=store)
    for _ in range(3):
        system.entity(KIND, "a").ask(Inc())
    system.entity(KIND, "b").ask(Inc())
    system.shutdown()
    assert saved(tmp_path / "one", store) == {
        "a": (3, 3 if store else 0),
        "b": (1, 1 if store else 0),
    }
    data_dir = tmp_path / ("two" if store else "one")  # PostgreSQL: another replica's disk
    again = make_system([kind()], data_dir=str(data_dir), store=store)
    assert again.entity(KIND, "a").ask(Peek()).value == 3
    assert again.entity(KIND, "a").ask(Inc()).value == 4


# -- replicas on one PostgreSQL database ---------------------------------------------------


def _replicas(make_system: Any, tmp_path: Any, url: str, shards: int = 2) -> list[Any]:
    return [
        make_system([kind(shards)], data_dir=str(tmp_path / f"r{i}"), store=url, ask_timeout=60.0)
        for i in range(2)
    ]


def test_a_stale_activation_is_refused_409_and_reloads_the_newer_state(
    make_system, tmp_path, postgres_url
):
    a, b = _replicas(make_system, tmp_path, postgres_url)
    assert a.entity(KIND, "x").ask(Inc()).value == 1  # a holds x at version 1
    assert b.entity(KIND, "x").ask(Inc()).value == 2  # b read version 1, wrote 2
    with pytest.raises(EntityConflictError) as raised:
        a.entity(KIND, "x").ask(Inc())  # a's activation is stale: its 2 is not written
    reply = raised.value.reply
    assert isinstance(reply, EntityConflict) and reply.agent == f"{KIND}/x"
    assert EntityConflict.http_status == 409
    assert a.entity(KIND, "x").ask(Inc()).value == 3  # dropped, reloaded: built on b's 2
    assert saved(tmp_path, postgres_url) == {"x": (3, 3)}
    info = a.entity_info(KIND)
    assert info.passivations["conflict"] == 1
    text = generate_latest(a.registry).decode()
    assert f'vibe_entity_conflicts_total{{kind="{KIND}"}} 1.0' in text
    assert f'vibe_entity_state_writes_total{{kind="{KIND}"}} 2.0' in text  # 1 and 3


def test_replicas_hammering_the_same_ids_lose_no_acknowledged_increment(
    make_system, tmp_path, postgres_url
):
    replicas = _replicas(make_system, tmp_path, postgres_url, shards=4)
    ids = [f"c{i}" for i in range(4)]
    per_thread, threads = 60, 8

    def hammer(index: int) -> tuple[list[tuple[str, int]], int]:
        system = replicas[index % 2]
        acked, conflicts = [], 0
        for n in range(per_thread):  # one at a time: the replicas' writes interleave
            entity_id = ids[(index + n) % len(ids)]
            reply = system.entity(KIND, entity_id).ask_future(Inc()).wait()
            if isinstance(reply, EntityConflict):
                conflicts += 1
            else:
                assert isinstance(reply, Tally), reply
                acked.append((entity_id, reply.value))
        return acked, conflicts

    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(hammer, range(threads)))
    acked = [ack for batch, _ in outcomes for ack in batch]
    refused = sum(conflicts for _, conflicts in outcomes)
    assert len(acked) + refused == per_thread * threads
    assert refused > 0  # the replicas did collide
    final = saved(tmp_path, postgres_url)
    for entity_id in ids:
        values = sorted(value for i, value in acked if i == entity_id)
        # Every acknowledged increment is in the final value, once: the acknowledged values
        # are exactly 1..final (each built on the one before it, none overwritten).
        assert values == list(range(1, final[entity_id][0] + 1)), entity_id
        assert final[entity_id] == (len(values), len(values))
    counted = sum(r.routes.entity_kind(KIND).stats.conflicts for r in replicas)
    assert counted >= 1


def test_what_a_stale_activation_handled_behind_its_conflict_is_refused_too(
    make_system, tmp_path, postgres_url, monkeypatch
):
    a, b = _replicas(make_system, tmp_path, postgres_url, shards=1)
    a.entity(KIND, "x").ask(Inc())
    b.entity(KIND, "x").ask(Inc())  # a's activation of x is stale from here
    gate = _Gate(EntityStateStore.put_many)
    gate.install(monkeypatch)
    stale = a.entity(KIND, "x").ask_future(Inc())
    assert gate.entered.wait(WAIT)  # its commit is under way (and will conflict)
    built_on_it = a.entity(KIND, "x").ask_future(Inc())  # handed over behind it
    read_of_it = a.entity(KIND, "x").ask_future(Peek())  # held behind the write in flight
    a.entity(KIND, "other").ask(Peek())  # the shard handled both (one mailbox, in order)
    gate.release.set()
    replies = [future.wait(WAIT) for future in (stale, built_on_it, read_of_it)]
    assert all(isinstance(reply, EntityConflict) for reply in replies), replies
    assert "earlier change" in replies[1].reason  # refused without being written
    assert a.entity(KIND, "x").ask(Inc()).value == 3  # reloaded: b's 2, then this one
    assert saved(tmp_path, postgres_url)["x"] == (3, 3)


def test_a_write_the_database_refuses_is_not_saved_and_the_writer_goes_on(
    make_system, tmp_path, store, monkeypatch
):
    system = make_system([kind(shards=1)], data_dir=str(tmp_path), store=store)
    counter = system.entity(KIND, "x")
    assert counter.ask(Inc()).value == 1
    real = EntityStateStore.put_many

    def refuse(states: EntityStateStore, writes: dict[str, Write]) -> Collection[str]:
        monkeypatch.setattr(EntityStateStore, "put_many", real)  # once
        raise StoreRejected(states.path, "value too long for type")

    monkeypatch.setattr(EntityStateStore, "put_many", refuse)
    with pytest.raises(UnavailableError, match="state not saved"):
        counter.ask(Inc())
    assert counter.ask(Inc()).value == 2  # reloaded from 1; the writer still writes
    assert counter.ask(Peek()).value == 2


def test_a_row_another_replica_keeps_locked_fails_the_commit_in_time(
    make_system, tmp_path, postgres_url, monkeypatch
):
    monkeypatch.setattr(entity_store, "LOCK_TIMEOUT_MS", 200)
    system = make_system([kind(shards=1)], data_dir=str(tmp_path), store=postgres_url)
    counter = system.entity(KIND, "x")
    assert counter.ask(Inc()).value == 1
    with psycopg.connect(postgres_url) as stalled:  # a replica stopped in the middle of its commit
        stalled.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(NAMESPACE)))
        stalled.execute("SELECT 1 FROM entity_state WHERE id = 'x' FOR UPDATE")
        with pytest.raises(UnavailableError, match="state not saved"):
            counter.ask(Inc())  # 503 after the lock timeout, not a writer stuck behind it
        assert system.cell(f"{KIND}.1").impaired is not None
        stalled.rollback()
    assert counter.ask(Inc()).value == 2  # reloaded from 1: the failed write was not kept
    assert system.cell(f"{KIND}.1").impaired is None
