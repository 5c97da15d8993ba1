"""Quota on a shared PostgreSQL store: one set of buckets for every replica.

Two ActorSystems on one database stand for two gateway replicas: together they
are granted at most ``burst + rate * elapsed``, not that much each.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from vibe_actors import ActorSystem, Ping, WorkerSpec
from vibe_actors.agents.quota import Acquire, Denied, Granted, Limit, Quota, QuotaConfig
from vibe_actors.store import StorageUnavailable

from tests.conftest import wait_until
from tests.postgres import agent_sql


def spec(*limits: Limit, **settings: Any) -> WorkerSpec:
    return WorkerSpec(
        name="quota", agent=Quota, config=QuotaConfig(limits=list(limits), **settings)
    )


def call(system: ActorSystem, msg: Any) -> Any:
    """The reply as data (error replies included), with a deadline."""
    return system.ref("quota").ask_future(msg, timeout=5.0).wait()


def test_two_replicas_share_one_bucket(make_system, tmp_path, postgres_url):
    limit = Limit(principal="*", rate=0.001, burst=3.0)
    a = make_system([spec(limit)], data_dir=str(tmp_path / "a"), store=postgres_url)
    b = make_system([spec(limit)], data_dir=str(tmp_path / "b"), store=postgres_url)
    assert call(a, Acquire(principal="alice", agent="kv", cost=2)).remaining == pytest.approx(1.0)
    assert call(b, Acquire(principal="alice", agent="kv")).remaining < 1e-3
    denied = call(a, Acquire(principal="alice", agent="kv"))
    assert isinstance(denied, Denied) and denied.limit == 0 and 900 < denied.retry_after <= 1000
    assert isinstance(call(b, Acquire(principal="bob", agent="kv", cost=3)), Granted)  # his own
    assert not (tmp_path / "a" / "quota.db").exists()  # nothing of it in the data directory


def test_together_replicas_admit_at_most_burst_plus_rate_times_elapsed(
    make_system, tmp_path, postgres_url
):
    rate, burst = 40.0, 10.0
    limit = Limit(agent="kv", rate=rate, burst=burst)
    replicas = [
        make_system([spec(limit)], data_dir=str(tmp_path / name), store=postgres_url)
        for name in ("a", "b")
    ]
    for system in replicas:  # opened (migrated) before the clock starts
        assert system.ask("quota", Ping()).incarnation == 1
    granted: list[int] = []
    lock = threading.Lock()
    go = threading.Barrier(5)
    stop = threading.Event()

    def hammer(system: ActorSystem) -> None:
        mine = 0
        go.wait(5)
        while not stop.is_set():
            mine += isinstance(call(system, Acquire(agent="kv")), Granted)
        with lock:
            granted.append(mine)

    threads = [threading.Thread(target=hammer, args=(s,)) for s in replicas for _ in range(2)]
    for thread in threads:
        thread.start()
    go.wait(5)
    started = time.monotonic()
    stop.wait(2.0)
    stop.set()
    for thread in threads:
        thread.join(10)
    elapsed = time.monotonic() - started
    allowed = burst + rate * elapsed
    assert len(granted) == 4
    # Each replica alone would admit `allowed`: together they admit it once, within 10%.
    assert 0.9 * allowed <= sum(granted) <= 1.1 * allowed, (granted, allowed)


def test_levels_survive_a_restart_of_the_agent(make_system, tmp_path, postgres_url):
    system = make_system(
        [spec(Limit(principal="*", rate=0.001, burst=2.0))], data_dir=str(tmp_path),
        store=postgres_url,
    )  # fmt: skip
    assert isinstance(call(system, Acquire(principal="alice", agent="kv", cost=2)), Granted)
    system.inject_fault("quota", "crash")
    assert system.ask("quota", Ping()).incarnation == 2
    # The bucket is the database's: unlike the in-memory one, a crash grants no new burst.
    assert isinstance(call(system, Acquire(principal="alice", agent="kv")), Denied)


def test_full_buckets_are_swept_and_spent_ones_kept(make_system, tmp_path, postgres_url):
    limits = (Limit(principal="*", rate=1000.0, burst=1.0), Limit(agent="kv", rate=0.001, burst=5))
    system = make_system([spec(*limits, sweep_interval=0.05)], data_dir=str(tmp_path),
                         store=postgres_url)  # fmt: skip
    for name in ("a", "b", "c"):
        assert isinstance(call(system, Acquire(principal=name, agent="kv")), Granted)

    def held() -> int:
        return int(agent_sql(tmp_path, postgres_url, "quota", "SELECT count(*) FROM buckets")[0][0])

    wait_until(lambda: held() == 1, what="the principals' full buckets swept")
    (kept,) = agent_sql(tmp_path, postgres_url, "quota", "SELECT tokens FROM buckets")
    assert kept[0] == pytest.approx(2.0, abs=1e-2)  # the agent's bucket, spent: not swept


def test_a_store_failure_answers_503_and_recovers(make_system, tmp_path, postgres_url):
    system = make_system(
        [spec(Limit(agent="kv", rate=0.001, burst=5.0))], data_dir=str(tmp_path),
        store=postgres_url,
    )  # fmt: skip
    assert isinstance(call(system, Acquire(agent="kv")), Granted)
    agent_sql(tmp_path, postgres_url, "quota", "ALTER FUNCTION acquire RENAME TO gone")
    failed = call(system, Acquire(agent="kv"))
    assert isinstance(failed, StorageUnavailable) and failed.http_status == 503
    assert failed.agent == "quota" and "#quota" in failed.path
    agent_sql(tmp_path, postgres_url, "quota", "ALTER FUNCTION gone RENAME TO acquire")
    assert call(system, Acquire(agent="kv")).remaining == pytest.approx(3.0, abs=1e-2)
    wait_until(lambda: system.cell("quota").impaired is None, what="the impairment cleared")


def test_an_unreachable_store_at_start_degrades_the_agent(make_system, tmp_path):
    url = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"
    system = make_system([spec(Limit(agent="kv", rate=1.0, burst=1.0))], data_dir=str(tmp_path),
                         store=url)  # fmt: skip
    reply = call(system, Acquire(agent="kv"))
    assert reply.http_status == 503 and "quota" in reply.reason


def test_a_failing_sweep_impairs_the_agent_until_the_store_is_back(
    make_system, tmp_path, postgres_url
):
    system = make_system(
        [spec(Limit(agent="kv", rate=1.0, burst=1.0), sweep_interval=0.05)],
        data_dir=str(tmp_path),
        store=postgres_url,
    )
    agent_sql(tmp_path, postgres_url, "quota", "ALTER TABLE buckets RENAME TO gone")
    wait_until(lambda: system.cell("quota").impaired is not None, what="the sweep failed")
    assert isinstance(call(system, Acquire(agent="kv")), StorageUnavailable)
    agent_sql(tmp_path, postgres_url, "quota", "ALTER TABLE gone RENAME TO buckets")
    wait_until(lambda: system.cell("quota").impaired is None, what="a probe or sweep succeeded")
    assert isinstance(call(system, Acquire(agent="kv")), Granted)
