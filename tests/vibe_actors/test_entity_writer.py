"""A durable kind's writer: one transaction carries the writes of every shard, commits
happen off the shards' threads, and a change that was not saved never reaches the
store through a later write."""

from __future__ import annotations

import threading
from collections.abc import Collection

import msgspec
import pytest
from prometheus_client import generate_latest

from vibe_actors import UnavailableError
from vibe_actors._entity_store import EntityStateStore, Write
from vibe_actors.store import StoreError

from tests.conftest import wait_until
from tests.vibe_actors.test_entities_durable import Bag, Put, Read, durable

WAIT = 10.0


class _Gate:
    """Wraps ``EntityStateStore.put_many``: its first call waits for ``release``
    (and then fails, with ``fail``); later calls go through."""

    def __init__(self, real, fail: bool = False) -> None:
        self.real = real
        self.fail = fail
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, store: EntityStateStore, writes: dict[str, Write]) -> Collection[str]:
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            assert self.release.wait(WAIT)
            if self.fail:
                raise StoreError(store.path, "database or disk is full")
        return self.real(store, writes)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def put_many(store: EntityStateStore, writes: dict[str, Write]) -> Collection[str]:
            return self(store, writes)

        monkeypatch.setattr(EntityStateStore, "put_many", put_many)


def _saved(path, entity_id: str) -> dict[str, int]:
    store = EntityStateStore(path)
    try:
        raw = store.get(entity_id)
    finally:
        store.close()
    assert raw is not None
    return msgspec.msgpack.decode(raw[0], type=Bag).values


def test_one_transaction_carries_the_writes_of_every_shard(make_system, tmp_path, monkeypatch):
    gate = _Gate(EntityStateStore.put_many)
    gate.install(monkeypatch)
    system = make_system([durable(shards=4)], data_dir=str(tmp_path))
    first = system.entity("bags", "first").ask_future(Put(key="k", value=0))
    assert gate.entered.wait(WAIT)  # the writer is in its first transaction
    futures = [system.entity("bags", f"id{i}").ask_future(Put(key="k", value=i)) for i in range(64)]
    shards = {system.entity_shard("bags", f"id{i}") for i in range(64)}
    assert len(shards) == 4  # the writes come from every shard
    commits = system.routes.entity_kind("bags").stats

    def all_handed_over() -> bool:  # every shard handled its messages: the writes wait
        cells = [system.cell(name) for name in shards]
        return all(c.mailbox.qsize() == 0 and c.host.current is None for c in cells)

    wait_until(all_handed_over, what="the 64 writes handed over")
    assert not any(f.done() for f in futures)  # none answered before its commit
    gate.release.set()
    assert first.result().values == {"k": 0}
    assert [f.result().values for f in futures] == [{"k": i} for i in range(64)]
    assert commits.commits == 2, commits.commits  # the first, then the 64 together
    assert commits.committed_writes == 65
    assert _saved(tmp_path / "entities.bags.db", "id63") == {"k": 63}
    text = generate_latest(system.registry).decode()
    assert f'vibe_entity_commits_total{{kind="bags"}} {float(commits.commits)}' in text
    assert 'vibe_entity_state_writes_total{kind="bags"} 65.0' in text


def test_a_change_that_was_not_saved_never_reaches_the_store(make_system, tmp_path, monkeypatch):
    system = make_system([durable(shards=1)], data_dir=str(tmp_path))
    bag = system.entity("bags", "a")
    bag.ask(Put(key="x", value=1))
    gate = _Gate(EntityStateStore.put_many, fail=True)
    gate.install(monkeypatch)
    lost = bag.ask_future(Put(key="y", value=2))
    assert gate.entered.wait(WAIT)  # y's transaction is under way (and will fail)
    built_on_it = bag.ask_future(Put(key="z", value=3))  # the entity holds y in memory
    system.entity("bags", "other").ask(Read())  # the shard handled z (one mailbox, in order)
    gate.release.set()
    for future in (lost, built_on_it):
        with pytest.raises(UnavailableError, match="state not saved"):
            future.result()
    assert system.cell("bags.1").impaired is not None
    assert bag.ask(Put(key="w", value=4)).values == {"x": 1, "w": 4}  # reloaded: no y, no z
    assert system.cell("bags.1").impaired is None  # a commit succeeded again
    assert _saved(tmp_path / "entities.bags.db", "a") == {"x": 1, "w": 4}
    info = system.entity_info("bags")
    assert info.passivations["save_failed"] == 1


def test_a_passivated_entity_is_reloaded_with_its_write_in_flight(
    make_system, tmp_path, monkeypatch
):
    gate = _Gate(EntityStateStore.put_many)
    gate.install(monkeypatch)
    spec = durable(shards=1, max_active=1, passivate_after=0)
    system = make_system([spec], data_dir=str(tmp_path))
    written = system.entity("bags", "a").ask_future(Put(key="x", value=1))
    assert gate.entered.wait(WAIT)  # a's write is not committed yet
    system.entity("bags", "b").ask_future(Read())  # a is passivated (max_active 1)
    reread = system.entity("bags", "a").ask_future(Read())  # and activated again
    wait_until(lambda: system.entity_info("bags").passivations["max_active"] >= 2, what="swaps")
    gate.release.set()
    assert written.result().values == {"x": 1}
    assert reread.result().values == {"x": 1}  # the write in flight, not the store's nothing


def test_the_writer_thread_ends_with_the_kind(make_system, tmp_path):
    system = make_system([durable(shards=3)], data_dir=str(tmp_path))
    system.entity("bags", "a").ask(Put(key="x", value=1))

    def writers() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name == "vibe:bags:writer"]

    assert writers() == ["vibe:bags:writer"]  # one for the kind, not one per shard
    system.shutdown()
    assert writers() == []
    assert _saved(tmp_path / "entities.bags.db", "a") == {"x": 1}


def test_writes_handed_over_before_a_shard_crash_are_written_and_acknowledged(
    make_system, tmp_path, monkeypatch
):
    gate = _Gate(EntityStateStore.put_many)
    gate.install(monkeypatch)
    system = make_system([durable(shards=1)], data_dir=str(tmp_path))
    first = system.entity("bags", "first").ask_future(Put(key="k", value=0))
    assert gate.entered.wait(WAIT)  # the writer is in its first transaction
    handed = system.entity("bags", "a").ask_future(Put(key="x", value=1))
    system.entity("bags", "other").ask(Read())  # the shard handed a's write over
    system.inject_fault("bags.1", "crash")  # its incarnation ends with the write queued
    wait_until(lambda: system.cell("bags.1").incarnation == 2, what="the shard restarted")
    wait_until(lambda: system.status("bags.1") == "running", what="the shard serving")
    reread = system.entity("bags", "a").ask_future(Read())  # reads the write in flight
    gate.release.set()
    assert first.result().values == {"k": 0}
    assert handed.result().values == {"x": 1}  # acknowledged: it was written
    assert reread.result().values == {"x": 1}
    assert _saved(tmp_path / "entities.bags.db", "a") == {"x": 1}
