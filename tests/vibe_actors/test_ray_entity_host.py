"""The Ray side of an entity kind without Ray: EntityHost runs one shard's entities itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibe_actors import (
    AgentCrashed,
    EntitySnapshot,
    InspectEntity,
    UnknownMessage,
    decode_msgpack,
    encode_msgpack,
)
from vibe_actors._entity_table import activation_bucket, idle_ids, over_limit, short_error
from vibe_actors._stats import DURATION_BUCKETS
from vibe_actors.ray import RemoteFeatureUnavailable
from vibe_actors.ray._entity_host import (
    EntityHost,
    EntityHostSettings,
    ShardReport,
    import_entity,
    is_error,
)
from vibe_actors.ray._host import reply_targets

from tests.ray.agents import Read
from tests.ray.entities import (
    Balance,
    Deposit,
    Explode,
    Overdrawn,
    Peek,
    Remote,
    Rest,
    Wallet,
    WalletConfig,
)

TARGETS = reply_targets(Wallet)  # type: ignore[arg-type]


def _host(
    tmp_path: Path, *, max_active: int = 100, passivate_after: float = 10.0, limit: int = 100
) -> EntityHost:
    config = WalletConfig(journal=str(tmp_path / "journal"), limit=limit)
    settings = EntityHostSettings(
        kind="wallets",
        index=0,
        passivate_after=passivate_after,
        max_active=max_active,
        config=encode_msgpack(config),
    )
    return EntityHost("tests.ray.entities:Wallet", "wallets.1", encode_msgpack(settings), 2)


def _call(host: EntityHost, entity_id: str, message: Any, at: float = 0.0) -> Any:
    (result,), _ = host.handle((entity_id, at, encode_msgpack(message)))
    if is_error(result):
        return decode_msgpack(result[0], AgentCrashed | UnknownMessage)
    target = TARGETS.get(type(message), EntitySnapshot | UnknownMessage)
    return decode_msgpack(result, target)


def _journal(tmp_path: Path) -> list[str]:
    path = tmp_path / "journal"
    lines = path.read_text().splitlines() if path.exists() else []
    return [" ".join(line.split()[:2]) for line in lines]


def test_activation_handlers_and_typed_error_replies(tmp_path: Path) -> None:
    host = _host(tmp_path, limit=10)
    assert host.ping() == 2
    assert _call(host, "a", Deposit(amount=4)).balance == 4
    assert _call(host, "a", Deposit(amount=3)).balance == 7
    assert _call(host, "a", Deposit(amount=30)) == Overdrawn(limit=10)
    assert _call(host, "b", Peek()).balance == 0
    assert _journal(tmp_path) == ["activate a", "activate b"]
    results, report = host.handle_batch(
        [("a", 1.0, encode_msgpack(Peek())), ("b", 1.0, encode_msgpack(Deposit(amount=1)))]
    )
    assert [decode_msgpack(r, Balance).balance for r in results] == [7, 1]
    assert report is None  # nothing activated or passivated since the last report


def test_a_crash_drops_that_entity_only(tmp_path: Path) -> None:
    host = _host(tmp_path)
    _call(host, "a", Deposit(amount=5))
    _call(host, "b", Deposit(amount=6))
    crashed = _call(host, "a", Explode())
    assert crashed == AgentCrashed(agent="wallets/a", error="RuntimeError: wallet a exploded")
    assert _call(host, "b", Peek()).balance == 6  # the other entity kept its state
    assert _call(host, "a", Peek()).balance == 0  # a fresh instance, State() (memory kind)
    (_, report) = host.handle(("b", 0.0, encode_msgpack(Peek())))
    assert report is None
    final = host.stop()
    assert (final.activations, final.crashes, final.active) == (3, 1, 0)


def test_a_failed_activation_is_the_askers_crash_and_is_retried(tmp_path: Path) -> None:
    host = _host(tmp_path)
    first = _call(host, "cursed", Peek())
    assert isinstance(first, AgentCrashed)
    assert first.error == "activation failed: RuntimeError: cursed wallets never open"
    assert isinstance(_call(host, "cursed", Peek()), AgentCrashed)
    assert _journal(tmp_path) == ["activate cursed", "activate cursed"]
    assert host.active == {}


def test_passivation_requested_by_count_and_by_idle_time(tmp_path: Path) -> None:
    host = _host(tmp_path, max_active=2, passivate_after=10.0)
    _call(host, "a", Deposit(amount=1), at=0.0)
    assert _call(host, "a", Rest(), at=1.0).balance == 1
    assert list(host.active) == []
    for at, entity_id in enumerate(["b", "c", "d"], start=2):
        _call(host, entity_id, Peek(), at=float(at))
    assert list(host.active) == ["c", "d"]  # b, the least recently used, over max_active
    _call(host, "c", Peek(), at=20.0)
    report = host.sweep(now=15.0)  # d idle since 4: over 10 s; c used at 20
    assert list(host.active) == ["c"]
    assert report is not None
    assert report.passivations == {"requested": 1, "max_active": 1, "idle": 1}
    assert host.sweep(now=16.0) is None
    assert _journal(tmp_path) == [
        "activate a",
        "passivate a",
        "activate b",
        "activate c",
        "activate d",
        "passivate b",
        "passivate d",
    ]
    final = host.stop()
    assert final.passivations["shutdown"] == 1 and final.active == 0
    assert final.seq > report.seq
    assert _journal(tmp_path)[-1] == "passivate c"


def test_a_raising_on_passivate_is_logged_and_the_passivation_completes(tmp_path: Path) -> None:
    host = _host(tmp_path)
    _call(host, "grumpy", Peek())
    report = host.stop()
    assert report.passivations == {"shutdown": 1} and host.active == {}


def test_inspect_does_not_activate(tmp_path: Path) -> None:
    host = _host(tmp_path)
    assert _call(host, "a", InspectEntity()) == EntitySnapshot(id="a", active=False)
    assert host.active == {}
    _call(host, "a", Deposit(amount=2))
    assert _call(host, "a", InspectEntity()) == EntitySnapshot(
        id="a", active=True, state={"balance": 2}
    )


def test_a_message_the_class_does_not_handle_is_refused(tmp_path: Path) -> None:
    host = _host(tmp_path)
    (result,), _ = host.handle(("a", 0.0, encode_msgpack(Read())))
    assert is_error(result)
    refused = decode_msgpack(result[0], UnknownMessage)
    assert refused.agent == "wallets/a" and refused.message_type.startswith("undecodable")
    assert host.active == {}


@pytest.mark.parametrize(
    ("what", "needle"),
    [("timer", "entity timers"), ("ref", "self.system.ref"), ("caller", "envelope")],
)
def test_what_the_ray_side_does_not_offer_crashes_the_entity(
    tmp_path: Path, what: str, needle: str
) -> None:
    host = _host(tmp_path)
    crashed = _call(host, "a", Remote(what=what))
    assert isinstance(crashed, AgentCrashed)
    assert crashed.error.startswith(RemoteFeatureUnavailable.__name__)
    assert needle in crashed.error
    assert _call(host, "a", Remote(what="nothing")).balance == 0  # the clock is there


def test_reports_are_totals_numbered_in_order(tmp_path: Path) -> None:
    host = _host(tmp_path)
    (_, first) = host.handle(("a", 0.0, encode_msgpack(Peek())))
    assert isinstance(first, ShardReport)
    assert (first.seq, first.active, first.activations) == (1, 1, 1)
    assert sum(first.buckets) == 1 and first.seconds >= 0
    assert len(first.buckets) == len(DURATION_BUCKETS) + 1


def test_import_entity_refuses_what_is_not_an_entity() -> None:
    assert import_entity("tests.ray.entities:Wallet") is Wallet
    with pytest.raises(TypeError, match="not a vibe_actors.Entity subclass"):
        import_entity("tests.ray.agents:Tally")


def test_table_helpers() -> None:
    assert short_error(ValueError("x" * 600)).endswith("...")
    assert len(short_error(ValueError("x" * 600))) == 500
    assert short_error(KeyError("k")) == "KeyError: 'k'"
    assert activation_bucket(0.0) == 0
    assert activation_bucket(1e9) == len(DURATION_BUCKETS)
    assert idle_ids({}, 1.0) == [] and over_limit({}, 0) is None


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("deposit"), st.sampled_from("abcdef"), st.integers(0, 4)),
        st.tuples(st.just("rest"), st.sampled_from("abcdef"), st.integers(0, 4)),
        st.tuples(st.just("sweep"), st.just(""), st.integers(0, 12)),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(ops=_OPS, max_active=st.integers(1, 4))
def test_the_active_table_follows_the_lru_model(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, str, int]], max_active: int
) -> None:
    """Activation, LRU order, max_active, passivate() and idle sweeps against a plain model."""
    host = _host(tmp_path_factory.mktemp("lru"), max_active=max_active, passivate_after=5.0)
    model: dict[str, tuple[int, float]] = {}  # id -> (balance, last used), LRU first
    now = 0.0
    for op, entity_id, step in ops:
        now += step
        if op == "sweep":
            host.sweep(now)
            model = {i: v for i, v in model.items() if v[1] > now - 5.0}
            continue
        balance = model.pop(entity_id, (0, now))[0] + (1 if op == "deposit" else 0)
        message = Deposit(amount=1) if op == "deposit" else Rest()
        assert _call(host, entity_id, message, at=now).balance == balance
        if op == "deposit":
            model[entity_id] = (balance, now)
        while len(model) > max_active:
            del model[next(iter(model))]
        assert list(host.active) == list(model)
        assert {i: e.state.balance for i, e in host.active.items()} == {
            i: v[0] for i, v in model.items()
        }
    report = host.stop()
    assert report.active == 0 and host.active == {}
    assert report.activations == sum(report.passivations.values())
