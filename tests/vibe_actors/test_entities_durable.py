"""Durable entities: state saved before the reply, reloaded on activation, group commit,
storage failures answered and recovered, and nothing acknowledged lost to kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import msgspec
import pytest

from vibe_actors import (
    AgentCrashedError,
    Entity,
    EntitySpec,
    EntityState,
    Message,
    UnavailableError,
    WorkerSpec,
    handler,
)
from vibe_actors._entity_store import EntityStateStore
from vibe_actors.store import StoreError
from vibe_actors.testing import hang

from tests.conftest import wait_until


class Put(Message):
    key: str
    value: int


class Read(Message):
    pass


class Fail(Message):
    pass


class Snapshot(Message):
    values: dict[str, int]


class Bag(msgspec.Struct):
    values: dict[str, int] = {}


class Store(Entity[Bag]):
    @handler
    def put(self, msg: Put) -> Snapshot:
        self.state.values[msg.key] = msg.value  # mutated in place: still saved
        return Snapshot(values=dict(self.state.values))

    @handler
    def read(self, msg: Read) -> Snapshot:
        return Snapshot(values=dict(self.state.values))

    @handler
    def fail(self, msg: Fail) -> None:
        self.state.values["lost"] = 1
        raise RuntimeError("after a change")


def durable(**entity) -> WorkerSpec:
    entity.setdefault("state", EntityState.DURABLE)
    return WorkerSpec(name="bags", agent=Store, entity=EntitySpec(**entity))


def test_state_survives_a_restart_of_the_system(make_system, tmp_path):
    system = make_system([durable(shards=2)], data_dir=str(tmp_path))
    system.entity("bags", "a").ask(Put(key="x", value=1))
    system.entity("bags", "b").ask(Put(key="y", value=2))
    system.shutdown()
    again = make_system([durable(shards=2)], data_dir=str(tmp_path))
    assert again.entity("bags", "a").ask(Read()).values == {"x": 1}
    assert again.entity("bags", "b").ask(Read()).values == {"y": 2}


def test_a_crash_reloads_the_last_saved_state(make_system, tmp_path):
    system = make_system([durable(shards=1)], data_dir=str(tmp_path))
    bag = system.entity("bags", "a")
    bag.ask(Put(key="x", value=1))
    with pytest.raises(AgentCrashedError):
        bag.ask(Fail())
    assert bag.ask(Read()).values == {"x": 1}  # the change before the raise was not kept


def test_passivation_then_activation_reads_the_store(make_system, tmp_path):
    system = make_system(
        [durable(shards=1, max_active=1, passivate_after=0)], data_dir=str(tmp_path)
    )
    system.entity("bags", "a").ask(Put(key="x", value=1))
    system.entity("bags", "b").ask(Put(key="y", value=2))  # a is passivated (max_active)
    assert system.entity("bags", "a").ask(Read()).values == {"x": 1}


def test_concurrent_writers_share_commits(make_system, tmp_path):
    system = make_system([durable(shards=1)], data_dir=str(tmp_path))
    # Hold the shard while 64 writes queue, then release: they commit in groups.
    with hang(system, "bags.1") as held:
        held.wait_hung(5)
        futures = [
            system.entity("bags", f"id{i}").ask_future(Put(key="k", value=i)) for i in range(64)
        ]
    assert [f.result().values for f in futures] == [{"k": i} for i in range(64)]
    commits = system.cell("bags.1").agent.durable_commits
    assert 1 <= commits <= 4, commits
    store = EntityStateStore(tmp_path / "entities.bags.db")
    try:
        assert store.count() == 64
    finally:
        store.close()


def test_a_failed_commit_answers_unavailable_and_recovers(make_system, tmp_path, monkeypatch):
    system = make_system([durable(shards=1)], data_dir=str(tmp_path))
    bag = system.entity("bags", "a")
    bag.ask(Put(key="x", value=1))
    real = EntityStateStore.put_many

    def full_disk(self, writes):
        raise StoreError(self.path, "database or disk is full")

    monkeypatch.setattr(EntityStateStore, "put_many", full_disk)
    with pytest.raises(UnavailableError, match="state not saved"):
        bag.ask(Put(key="y", value=2))
    assert system.cell("bags.1").impaired is not None
    monkeypatch.setattr(EntityStateStore, "put_many", real)
    assert bag.ask(Read()).values == {"x": 1}  # reloaded: the failed write is not visible
    bag.ask(Put(key="z", value=3))
    assert system.cell("bags.1").impaired is None


_CHILD = textwrap.dedent(
    """
    import sys
    from vibe_actors import ActorSystem, SystemConfig
    from tests.vibe_actors.test_entities_durable import Put, durable

    config = SystemConfig(data_dir=sys.argv[1], store=sys.argv[2])
    with ActorSystem([durable(shards=4)], config) as system:
        futures = []
        for i in range(100000):
            futures.append((i, system.entity("bags", f"e{i % 97}").ask_future(Put(key=str(i), value=i))))
            if len(futures) >= 32:
                i0, f0 = futures.pop(0)
                f0.result()
                print("ack", i0, flush=True)
    """
)


@pytest.mark.timeout(120)
def test_kill_9_loses_no_acknowledged_write(make_system, tmp_path, store):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path), store],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    acknowledged: list[int] = []
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("ack "):
            acknowledged.append(int(line.split()[1]))
            if len(acknowledged) >= 2000:
                break
    assert len(acknowledged) >= 2000, "the child stopped before it was killed"
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    for line in child.stdout:  # what it printed before it died was acknowledged too
        # A line the kill cut short (its write split at the pipe buffer's edge) is not counted.
        if line.startswith("ack ") and line.endswith("\n"):
            acknowledged.append(int(line.split()[1]))
    system = make_system([durable(shards=4)], data_dir=str(tmp_path), store=store)
    missing = []
    by_entity: dict[str, dict[str, int]] = {}
    for i in acknowledged:
        entity_id = f"e{i % 97}"
        if entity_id not in by_entity:
            by_entity[entity_id] = system.entity("bags", entity_id).ask(Read()).values
        if by_entity[entity_id].get(str(i)) != i:
            missing.append(i)
    assert missing == []


def test_a_reminder_wakes_a_passivated_entity(make_system, tmp_path):
    from vibe_actors.agents.scheduler import Schedule, Scheduled, Scheduler

    spec = durable(shards=1, max_active=1, passivate_after=0)
    scheduler = WorkerSpec(name="scheduler", agent=Scheduler)
    system = make_system([spec, scheduler], data_dir=str(tmp_path))
    system.entity("bags", "a").ask(Put(key="x", value=1))
    system.entity("bags", "b").ask(Read())  # a is passivated (max_active 1)
    assert system.entity_info("bags").passivations["max_active"] == 1
    message = {"type": "Put", "key": "woken", "value": 2}
    reply = system.ask("scheduler", Schedule(name="wake", target="bags/a", message=message, at=1.0))
    assert isinstance(reply, Scheduled)  # an entity address is a valid target

    def woken() -> bool:
        return system.entity("bags", "a").ask(Read()).values.get("woken") == 2

    wait_until(woken, what="the reminder's Put reached bags/a")
    assert system.entity("bags", "a").ask(Read()).values == {"x": 1, "woken": 2}
