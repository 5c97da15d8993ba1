"""Quota: token-bucket math with a fake clock (examples, properties), the agent, restarts."""

from __future__ import annotations

import threading

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibe_actors import AskError, Ping, WorkerSpec, decode_msgpack, encode_msgpack
from vibe_actors.agents.quota import (
    Acquire,
    CostExceedsBurst,
    Denied,
    Granted,
    Limit,
    Quota,
    QuotaBuckets,
    QuotaConfig,
)
from vibe_actors.ray._host import AgentHost


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def buckets(*limits: Limit, max_buckets: int = 100_000) -> tuple[QuotaBuckets, FakeClock]:
    clock = FakeClock()
    return QuotaBuckets(limits, clock=clock, max_buckets=max_buckets), clock


# -- examples -----------------------------------------------------------------------


def test_burst_then_denied_with_the_exact_wait_then_refilled():
    quota, clock = buckets(Limit(principal="*", rate=2.0, burst=3.0))
    assert [quota.acquire("alice", "kv").remaining for _ in range(3)] == [2.0, 1.0, 0.0]
    denied = quota.acquire("alice", "kv")
    assert isinstance(denied, Denied)
    assert (denied.retry_after, denied.limit, denied.http_status) == (0.5, 0, 429)
    clock.advance(0.25)
    assert isinstance(quota.acquire("alice", "kv"), Denied)  # half-way: still short
    clock.advance(0.25)
    assert quota.acquire("alice", "kv") == Granted(remaining=0.0)
    clock.advance(60)
    assert quota.acquire("alice", "kv", cost=3) == Granted(remaining=0.0)  # capped at burst


def test_wildcard_gives_each_principal_its_own_bucket_and_anonymous_one_more():
    quota, _ = buckets(Limit(principal="*", rate=1.0, burst=1.0))
    assert isinstance(quota.acquire("alice", "kv"), Granted)
    assert isinstance(quota.acquire("alice", "kv"), Denied)
    assert isinstance(quota.acquire("bob", "kv"), Granted)
    assert isinstance(quota.acquire(None, "kv"), Granted)
    assert isinstance(quota.acquire(None, "queue"), Denied)  # principal-only: across agents
    assert len(quota) == 3


def test_a_named_limit_overrides_the_wildcard_of_the_same_shape():
    quota, _ = buckets(
        Limit(principal="*", rate=1.0, burst=1.0), Limit(principal="vip", rate=1.0, burst=5.0)
    )
    assert [type(quota.acquire("vip", "kv")) for _ in range(6)] == [Granted] * 5 + [Denied]
    assert [type(quota.acquire("bob", "kv")) for _ in range(2)] == [Granted, Denied]


def test_limits_of_different_shapes_all_apply_and_take_all_or_nothing():
    quota, clock = buckets(
        Limit(principal="*", rate=1.0, burst=2.0), Limit(agent="kv", rate=1.0, burst=3.0)
    )
    assert quota.acquire("alice", "kv") == Granted(remaining=1.0)
    assert quota.acquire("alice", "kv") == Granted(remaining=0.0)  # alice's bucket is empty
    assert quota.acquire("bob", "kv") == Granted(remaining=0.0)  # kv's bucket is now empty
    denied = quota.acquire("carol", "kv")  # carol has tokens, kv has none: nothing taken
    assert isinstance(denied, Denied) and denied.limit == 1
    assert quota.acquire("carol", "queue") == Granted(remaining=1.0)  # carol still had 2
    assert quota.acquire("dave", "queue", cost=0) == Granted(remaining=2.0)
    clock.advance(1.0)
    assert isinstance(quota.acquire("carol", "kv"), Granted)


def test_no_applicable_limit_grants_without_a_bucket():
    quota, _ = buckets(Limit(agent="kv", rate=1.0, burst=1.0))
    assert quota.acquire("alice", "queue", cost=1e9) == Granted(remaining=None)
    assert len(quota) == 0


def test_a_cost_above_the_burst_can_never_be_granted():
    quota, _ = buckets(Limit(principal="*", rate=1.0, burst=2.0))
    reply = quota.acquire("alice", "kv", cost=3)
    assert isinstance(reply, CostExceedsBurst) and reply.http_status == 422
    assert quota.acquire("alice", "kv", cost=2) == Granted(remaining=0.0)  # nothing was taken


def test_limits_and_acquires_validate():
    for bad in (
        {"rate": 0, "burst": 1},
        {"rate": 1, "burst": -1},
        {"rate": float("inf"), "burst": 1},
    ):
        with pytest.raises(ValueError):
            Limit(**bad)
    with pytest.raises(ValueError):
        Acquire(agent="kv", cost=-1)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"rate": 1, "burst": 1, "who": "x"}, Limit)


def test_full_buckets_are_swept_above_max_buckets_and_partial_ones_kept():
    quota, clock = buckets(Limit(principal="*", rate=1.0, burst=2.0), max_buckets=3)
    for name in ("a", "b", "c"):
        quota.acquire(name, "kv")
    clock.advance(0.5)
    assert isinstance(quota.acquire("c", "kv", cost=1.5), Granted)  # c is empty
    clock.advance(0.6)  # a and b are full again, c is not
    quota.acquire("d", "kv")
    assert len(quota) == 2  # c and d
    assert isinstance(quota.acquire("c", "kv", cost=2), Denied)  # c's debt was not forgotten


def test_concurrent_acquires_never_overdraw():
    quota, _ = buckets(Limit(agent="kv", rate=1.0, burst=100.0))  # the clock stands still
    granted: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def run() -> None:
        start.wait(5)
        mine = sum(isinstance(quota.acquire(None, "kv"), Granted) for _ in range(50))
        with lock:
            granted.append(mine)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sum(granted) == 100


# -- properties ---------------------------------------------------------------------

rates = st.floats(min_value=0.01, max_value=1000.0)
bursts = st.floats(min_value=0.5, max_value=1000.0)
steps = st.lists(
    st.tuples(st.floats(min_value=0.0, max_value=5.0), st.floats(min_value=0.0, max_value=1.0)),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(rates, bursts, steps)
def test_property_never_more_than_burst_plus_rate_times_elapsed(rate, burst, ops):
    quota, clock = buckets(Limit(agent="kv", rate=rate, burst=burst))
    start = clock.now
    granted = 0.0
    for dt, fraction in ops:
        clock.advance(dt)
        cost = fraction * burst
        if isinstance(quota.acquire(None, "kv", cost), Granted):
            granted += cost
        allowed = burst + rate * (clock.now - start)
        assert granted <= allowed * (1 + 1e-9) + 1e-9 * len(ops)


@settings(max_examples=300, deadline=None)
@given(rates, bursts, steps, st.floats(min_value=0.01, max_value=1.0))
def test_property_retry_after_is_exactly_enough(rate, burst, ops, fraction):
    quota, clock = buckets(Limit(principal="*", rate=rate, burst=burst))
    for dt, spend in ops:
        clock.advance(dt)
        quota.acquire("p", "kv", spend * burst)
    cost = fraction * burst
    reply = quota.acquire("p", "kv", cost)
    if isinstance(reply, Granted):
        return
    assert isinstance(reply, Denied) and reply.retry_after > 0
    if reply.retry_after > 1e-6:
        clock.advance(reply.retry_after * 0.5)
        assert isinstance(quota.acquire("p", "kv", cost), Denied)  # not earlier
        clock.advance(reply.retry_after * 0.5)
    else:
        clock.advance(reply.retry_after)
    assert isinstance(quota.acquire("p", "kv", cost), Granted)


@settings(max_examples=200, deadline=None)
@given(rates, bursts, steps)
def test_property_a_bucket_refills_to_burst_and_no_further(rate, burst, ops):
    quota, clock = buckets(Limit(principal="*", rate=rate, burst=burst))
    for dt, spend in ops:
        clock.advance(dt)
        quota.acquire("p", "kv", spend * burst)
    clock.advance(burst / rate)
    reply = quota.acquire("p", "kv", burst)
    assert isinstance(reply, Granted) and reply.remaining == pytest.approx(0.0, abs=1e-6 * burst)
    clock.advance(10 * burst / rate)
    assert quota.acquire("p", "kv", 0) == Granted(remaining=pytest.approx(burst))


# -- the agent ----------------------------------------------------------------------

SLOW = QuotaConfig(limits=[Limit(principal="*", rate=0.001, burst=2.0)])


def test_agent_grants_then_denies_with_429(make_system, tmp_path, store):
    system = make_system(
        [WorkerSpec(name="quota", agent=Quota, config=SLOW)], data_dir=str(tmp_path), store=store
    )
    first = system.ask("quota", Acquire(principal="alice", agent="kv"))
    assert first.remaining == pytest.approx(1.0, abs=1e-3)  # the real clock refills a little
    assert system.ask("quota", Acquire(principal="alice", agent="kv")).remaining < 1e-3
    with pytest.raises(AskError) as caught:
        system.ask("quota", Acquire(principal="alice", agent="kv"))
    reply = caught.value.reply
    assert isinstance(reply, Denied) and reply.http_status == 429
    assert 900 < reply.retry_after <= 1000
    too_much = system.ref("quota").ask_future(Acquire(principal="bob", agent="kv", cost=5)).wait()
    assert isinstance(too_much, CostExceedsBurst)


def test_agent_restart_rebuilds_full_buckets_from_config(make_system):
    system = make_system([WorkerSpec(name="quota", agent=Quota, config=SLOW)])
    system.ask("quota", Acquire(principal="alice", agent="kv", cost=2))
    denied = system.ref("quota").ask_future(Acquire(principal="alice", agent="kv")).wait()
    assert isinstance(denied, Denied)
    system.inject_fault("quota", "crash")
    assert system.ask("quota", Ping()).incarnation == 2
    # Levels are not kept (a full burst again); the limits are.
    assert isinstance(system.ask("quota", Acquire(principal="alice", agent="kv", cost=2)), Granted)
    again = system.ref("quota").ask_future(Acquire(principal="alice", agent="kv")).wait()
    assert isinstance(again, Denied)


def test_agent_defaults_and_mapping_config(make_system, tmp_path, store):
    system = make_system(
        [
            WorkerSpec(name="open", agent=Quota),
            WorkerSpec(
                name="mapped",
                agent=Quota,
                config={"limits": [{"agent": "kv", "rate": 1, "burst": 1}]},
            ),
        ],
        data_dir=str(tmp_path),
        store=store,
    )
    assert system.ask("open", Acquire(agent="kv", cost=1e6)) == Granted(remaining=None)
    assert system.ask("mapped", Acquire(agent="kv")).remaining < 1e-3
    assert isinstance(system.ref("mapped").ask_future(Acquire(agent="kv")).wait(), Denied)


def test_placed_on_ray_the_agent_keeps_its_buckets_in_memory():
    # A Ray-placed agent's host offers self.system.clock only (no config, no metrics, no
    # store): the agent must start and answer from memory there. No Ray needed for its host.
    host = AgentHost("vibe_actors.agents.quota:Quota", "quota", encode_msgpack(SLOW), 1)
    replies = [
        decode_msgpack(
            host.handle(encode_msgpack(Acquire(principal="alice", agent="kv"))),
            Granted | Denied | CostExceedsBurst,
        )
        for _ in range(3)
    ]
    assert [type(r) for r in replies] == [Granted, Granted, Denied]
