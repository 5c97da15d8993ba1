"""State: protocol, errors, TTL, restarts, a model-based property test, corruption."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
import uuid
from typing import Any

import psycopg
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from psycopg import sql

from vibe_actors import (
    ActorSystem,
    CodecError,
    Ping,
    SupervisorSpec,
    SystemConfig,
    Unavailable,
    UnavailableError,
    WorkerSpec,
)
from vibe_actors.agents.quota import Acquire, Granted, Quota
from vibe_actors.agents.state import (
    MAX_KEY_LENGTH,
    Conflict,
    Delete,
    Deleted,
    Entry,
    Get,
    InvalidRequest,
    KeyList,
    Keys,
    NotFound,
    Put,
    State,
    StateConfig,
    Stored,
)
from vibe_actors.agents.state._store import prefix_bound
from vibe_actors.store._sqlite import database_path

from tests.conftest import wait_until
from tests.postgres import database_url


def spec(config: StateConfig | dict | None = None, name: str = "state") -> WorkerSpec:
    return WorkerSpec(name=name, agent=State, config=config)


def call(system: ActorSystem, msg: Any, name: str = "state") -> Any:
    """The reply as data (error replies included), with a deadline."""
    return system.ref(name).ask_future(msg, timeout=5.0).wait()


def stored_keys(data_dir: Any, store: str, agent: str = "state") -> list[str]:
    """The keys in the agent's table, read behind its back (expired rows included)."""
    if not store:
        db = sqlite3.connect(database_path(data_dir, agent))
        try:
            return [r[0] for r in db.execute("SELECT key FROM entries ORDER BY key")]
        finally:
            db.close()
    with psycopg.connect(store) as db:
        query = sql.SQL("SELECT key FROM {}.entries ORDER BY key").format(sql.Identifier(agent))
        return [r[0] for r in db.execute(query)]


def sample(system: ActorSystem, metric: str, **labels: str) -> float | None:
    return system.registry.get_sample_value(metric, {"agent": "state", **labels})


# -- protocol -------------------------------------------------------------------------


def test_put_get_versions_and_delete(make_system, tmp_path, store):
    system = make_system([spec()], data_dir=str(tmp_path), store=store)
    value = {"name": "ada", "tags": ["x", "y"], "n": 3, "f": 1.5, "ok": True, "none": None}
    assert call(system, Put(key="a", value=value)) == Stored(key="a", version=1)
    assert call(system, Get(key="a")) == Entry(key="a", value=value, version=1, expires_at=None)
    assert call(system, Put(key="a", value=[1, 2])) == Stored(key="a", version=2)
    assert call(system, Put(key="a", value="three")).version == 3
    assert call(system, Get(key="a")).value == "three"
    assert call(system, Delete(key="a")) == Deleted(key="a")
    missing = call(system, Get(key="a"))
    assert isinstance(missing, NotFound) and missing.key == "a" and missing.http_status == 404
    # After a delete the key starts again at version 1 (documented choice).
    assert call(system, Put(key="a", value=None)) == Stored(key="a", version=1)
    assert call(system, Get(key="a")).value is None
    assert sample(system, "vibe_state_writes_total", op="put") == 4
    assert sample(system, "vibe_state_writes_total", op="delete") == 1
    assert sample(system, "vibe_state_keys") == 1


def test_values_of_every_json_like_shape_round_trip(make_system, tmp_path, store):
    system = make_system([spec()], data_dir=str(tmp_path), store=store)
    values = [0, -(2**62), 2.25, "", "ünïcødé", [], {}, [[{"a": [None, False]}]], b"\x00raw"]
    for index, value in enumerate(values):
        call(system, Put(key=f"k{index}", value=value))
    for index, value in enumerate(values):
        assert call(system, Get(key=f"k{index}")).value == value


def test_expected_version_zero_means_create_only(make_system, tmp_path, store):
    system = make_system([spec()], data_dir=str(tmp_path), store=store)
    assert call(system, Put(key="k", value=1, expected_version=0)) == Stored(key="k", version=1)
    conflict = call(system, Put(key="k", value=2, expected_version=0))
    assert isinstance(conflict, Conflict) and conflict.http_status == 409
    assert (conflict.key, conflict.expected, conflict.actual) == ("k", 0, 1)
    assert call(system, Get(key="k")).value == 1  # nothing was written


def test_version_mismatch_is_a_conflict_naming_both_versions(make_system, tmp_path, store):
    system = make_system([spec()], data_dir=str(tmp_path), store=store)
    call(system, Put(key="k", value="a"))
    assert call(system, Put(key="k", value="b", expected_version=1)).version == 2
    stale = call(system, Put(key="k", value="c", expected_version=1))
    assert (stale.expected, stale.actual) == (1, 2)
    absent = call(system, Put(key="new", value="c", expected_version=4))
    assert isinstance(absent, Conflict) and (absent.expected, absent.actual) == (4, 0)
    assert isinstance(call(system, Get(key="new")), NotFound)
    assert sample(system, "vibe_state_conflicts_total") == 2


def test_delete_errors_and_conditional_delete(make_system, tmp_path, store):
    system = make_system([spec()], data_dir=str(tmp_path), store=store)
    assert isinstance(call(system, Delete(key="nope")), NotFound)
    assert isinstance(call(system, Delete(key="nope", expected_version=1)), NotFound)
    call(system, Put(key="k", value=1))
    call(system, Put(key="k", value=2))
    conflict = call(system, Delete(key="k", expected_version=1))
    assert isinstance(conflict, Conflict) and (conflict.expected, conflict.actual) == (1, 2)
    assert call(system, Get(key="k")).version == 2
    assert call(system, Delete(key="k", expected_version=2)) == Deleted(key="k")
    assert isinstance(call(system, Get(key="k")), NotFound)


def test_keys_by_prefix_in_order_with_limit(make_system, tmp_path, store):
    system = make_system([spec()], data_dir=str(tmp_path), store=store)
    for key in ["user/b", "user/a", "users", "user/c", "other", "user\U0010ffff", "usez"]:
        call(system, Put(key=key, value=1))
    assert call(system, Keys(prefix="user/")) == KeyList(
        keys=["user/a", "user/b", "user/c"], truncated=False
    )
    assert call(system, Keys(prefix="user/", limit=2)) == KeyList(
        keys=["user/a", "user/b"], truncated=True
    )
    assert call(system, Keys(prefix="user")).keys == [
        "user/a",
        "user/b",
        "user/c",
        "users",
        "user\U0010ffff",
    ]
    assert call(system, Keys(limit=1)) == KeyList(keys=["other"], truncated=True)
    assert call(system, Keys(prefix="zzz")) == KeyList(keys=[], truncated=False)


def test_prefix_bound_orders_like_sqlite():
    assert prefix_bound("") is None
    assert prefix_bound("ab") == "ac"
    assert prefix_bound("a\U0010ffff") == "b"
    assert prefix_bound("\U0010ffff") is None
    assert prefix_bound("a\ud7ff") == "a\ue000"


# -- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        (Put(key="", value=1), "key"),
        (Put(key="k" * (MAX_KEY_LENGTH + 1), value=1), "key"),
        (Put(key="k", value=1, ttl=0.0), "ttl"),
        (Put(key="k", value=1, ttl=float("inf")), "ttl"),
        (Put(key="k", value=1, expected_version=-1), "expected_version"),
        (Get(key=""), "key"),
        (Delete(key="k", expected_version=-2), "expected_version"),
        (Keys(limit=0), "limit"),
        (Keys(limit=10**6), "limit"),
    ],
)
def test_bad_fields_built_in_process_get_a_typed_422(make_system, tmp_path, store, msg, field):
    system = make_system([spec()], data_dir=str(tmp_path), store=store, serialize_messages=False)
    reply = call(system, msg)
    assert isinstance(reply, InvalidRequest), reply
    assert reply.field == field and reply.http_status == 422
    assert field in reply.detail


def test_bad_fields_are_refused_at_decoding_when_serialized(make_system, tmp_path, store):
    system = make_system([spec()], data_dir=str(tmp_path), store=store)
    with pytest.raises(CodecError, match="key"):
        system.ref("state").ask_future(Put(key="", value=1))


def test_values_that_cannot_be_stored(make_system, tmp_path, store):
    config = StateConfig(max_value_bytes=64)
    system = make_system(
        [spec(config)], data_dir=str(tmp_path), store=store, serialize_messages=False
    )
    big = call(system, Put(key="k", value="x" * 100))
    assert isinstance(big, InvalidRequest) and big.field == "value" and "64" in big.detail
    odd = call(system, Put(key="k", value=object()))
    assert isinstance(odd, InvalidRequest) and odd.field == "value"
    assert isinstance(call(system, Get(key="k")), NotFound)


def test_config_is_validated():
    with pytest.raises(ValueError, match="sweep_interval"):
        StateConfig(sweep_interval=0)
    with pytest.raises(ValueError, match="max_value_bytes"):
        StateConfig(max_value_bytes=0)


# -- TTL ------------------------------------------------------------------------------


def test_expired_keys_are_absent_and_swept(make_system, tmp_path, store):
    system = make_system(
        [spec(StateConfig(sweep_interval=0.02))], data_dir=str(tmp_path), store=store
    )
    before = time.time()
    call(system, Put(key="short", value=1, ttl=0.2))
    call(system, Put(key="long", value=2, ttl=3600))
    call(system, Put(key="forever", value=3))
    entry = call(system, Get(key="short"))
    assert before + 0.2 <= entry.expires_at <= time.time() + 0.2
    assert call(system, Keys()).keys == ["forever", "long", "short"]
    wait_until(lambda: isinstance(call(system, Get(key="short")), NotFound), 5.0, "expiry")
    assert call(system, Keys()).keys == ["forever", "long"]
    wait_until(lambda: sample(system, "vibe_state_keys") == 2, 5.0, "the sweep")
    assert sample(system, "vibe_state_expired_total") == 1
    assert stored_keys(tmp_path, store) == ["forever", "long"]


def test_expired_key_is_purged_lazily_and_counts_as_absent(make_system, tmp_path, store):
    system = make_system(
        [spec(StateConfig(sweep_interval=3600))], data_dir=str(tmp_path), store=store
    )
    call(system, Put(key="k", value="old", ttl=0.05))
    call(system, Put(key="k", value="older", ttl=0.05))
    wait_until(lambda: not call(system, Keys()).keys, 5.0, "expiry")
    assert sample(system, "vibe_state_keys") == 1  # not yet purged: no sweep ran
    conflict = call(system, Put(key="k", value="x", expected_version=2))
    assert isinstance(conflict, Conflict) and conflict.actual == 0
    assert call(system, Put(key="k", value="new", expected_version=0)) == Stored(key="k", version=1)
    assert sample(system, "vibe_state_keys") == 1
    call(system, Put(key="gone", value=1, ttl=0.05))
    wait_until(lambda: isinstance(call(system, Get(key="gone")), NotFound), 5.0, "expiry")
    assert sample(system, "vibe_state_keys") == 1  # the Get purged it
    assert isinstance(call(system, Delete(key="gone")), NotFound)


def test_a_put_without_ttl_clears_the_expiry(make_system, tmp_path, store):
    system = make_system([spec()], data_dir=str(tmp_path), store=store)
    call(system, Put(key="k", value=1, ttl=60))
    assert call(system, Get(key="k")).expires_at is not None
    call(system, Put(key="k", value=2))
    assert call(system, Get(key="k")).expires_at is None


# -- restarts -------------------------------------------------------------------------


def test_an_agent_restart_keeps_data_versions_and_expiry(make_system, tmp_path, store):
    system = make_system([spec()], data_dir=str(tmp_path), store=store)
    call(system, Put(key="a", value=1))
    call(system, Put(key="a", value=2))
    call(system, Put(key="t", value="ttl", ttl=3600))
    expires = call(system, Get(key="t")).expires_at
    system.inject_fault("state", "crash")
    assert system.ask("state", Ping()).incarnation == 2
    assert call(system, Get(key="a")) == Entry(key="a", value=2, version=2)
    assert call(system, Get(key="t")).expires_at == expires
    assert call(system, Put(key="a", value=3, expected_version=2)).version == 3
    assert sample(system, "vibe_state_keys") == 2


def test_a_new_system_on_the_same_directory_sees_everything(make_system, tmp_path, store):
    first = make_system([spec()], data_dir=str(tmp_path), store=store)
    for n in range(5):
        call(first, Put(key=f"k{n}", value={"n": n}))
    call(first, Put(key="k0", value="again"))
    call(first, Delete(key="k4"))
    first.shutdown()
    second = make_system([spec()], data_dir=str(tmp_path), store=store)
    assert call(second, Keys()).keys == ["k0", "k1", "k2", "k3"]
    assert call(second, Get(key="k0")) == Entry(key="k0", value="again", version=2)
    assert call(second, Get(key="k3")).value == {"n": 3}
    assert sample(second, "vibe_state_keys") == 4


# -- corruption -----------------------------------------------------------------------


def test_a_corrupt_database_degrades_only_the_state_agent(make_system, tmp_path):
    path = database_path(tmp_path, "state")
    path.write_bytes(b"definitely not sqlite " * 400)
    system = make_system(
        [spec(), spec(name="healthy"), WorkerSpec(name="quota", agent=Quota)],
        data_dir=str(tmp_path),
    )
    reply = call(system, Get(key="k"))
    assert isinstance(reply, Unavailable) and str(path) in reply.reason
    with pytest.raises(UnavailableError):
        system.ask("state", Put(key="k", value=1))
    assert system.ask("state", Ping()).agent == "state"  # alive, but refusing work
    assert system.cell("state").degraded is not None
    node = next(n for n in system.walk() if n.name == "state")
    assert node.degraded and str(path) in node.degraded
    assert call(system, Put(key="k", value=1), name="healthy") == Stored(key="k", version=1)
    assert isinstance(system.ask("quota", Acquire(agent="kv")), Granted)


def test_a_truncated_database_degrades(make_system, tmp_path):
    first = make_system([spec()], data_dir=str(tmp_path))
    for n in range(300):
        call(first, Put(key=f"key-{n:04d}", value="x" * 200))
    first.shutdown()
    path = database_path(tmp_path, "state")
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    second = make_system([spec()], data_dir=str(tmp_path))
    assert isinstance(call(second, Keys()), Unavailable)


# -- the model --------------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c", "d/1", "d/2"])
VALUES = st.one_of(
    st.none(),
    st.integers(-(2**53), 2**53),
    st.text(max_size=8),
    st.lists(st.integers(0, 9), max_size=3),
    st.dictionaries(st.text(max_size=3), st.booleans(), max_size=3),
)
EXPECTATIONS = st.one_of(st.none(), st.integers(0, 4))


class StateModel(RuleBasedStateMachine):
    """The agent against a dict of key -> (value, version), across crash restarts."""

    #: A PostgreSQL server's URL: each example gets a database of its own there ("": SQLite).
    server = ""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="vibe-state-model-")
        self.database = f"model_{uuid.uuid4().hex[:12]}" if self.server else ""
        store = ""
        if self.database:
            with psycopg.connect(self.server, autocommit=True) as admin:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
            store = database_url(self.server, self.database)
        root = SupervisorSpec(name="root", children=(spec(),), intensity=10, period=60.0)
        config = SystemConfig(data_dir=self.dir, serialize_messages=True, store=store)
        self.system = ActorSystem(root, config).start()
        self.model: dict[str, tuple[Any, int]] = {}
        self.incarnation = 1

    def teardown(self) -> None:
        self.system.shutdown(timeout=5.0)
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.database:
            with psycopg.connect(self.server, autocommit=True) as admin:
                drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                admin.execute(drop.format(sql.Identifier(self.database)))

    def _version(self, key: str) -> int:
        return self.model[key][1] if key in self.model else 0

    @rule(key=KEYS, value=VALUES, expected=EXPECTATIONS)
    def put(self, key: str, value: Any, expected: int | None) -> None:
        reply = call(self.system, Put(key=key, value=value, expected_version=expected))
        current = self._version(key)
        if expected is not None and expected != current:
            assert reply == Conflict(
                key=key, expected=expected, actual=current, detail=reply.detail
            )
        else:
            assert reply == Stored(key=key, version=current + 1)
            self.model[key] = (value, current + 1)

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        reply = call(self.system, Get(key=key))
        if key in self.model:
            value, version = self.model[key]
            assert reply == Entry(key=key, value=value, version=version)
        else:
            assert isinstance(reply, NotFound)

    @rule(key=KEYS, expected=EXPECTATIONS)
    def delete(self, key: str, expected: int | None) -> None:
        reply = call(self.system, Delete(key=key, expected_version=expected))
        current = self._version(key)
        if current == 0:
            assert isinstance(reply, NotFound)
        elif expected is not None and expected != current:
            assert isinstance(reply, Conflict) and reply.actual == current
        else:
            assert reply == Deleted(key=key)
            del self.model[key]

    @precondition(lambda self: self.incarnation < 5)
    @rule()
    def crash(self) -> None:
        self.system.inject_fault("state", "crash")
        self.incarnation += 1
        assert self.system.ask("state", Ping()).incarnation == self.incarnation

    @invariant()
    def keys_match(self) -> None:
        assert call(self.system, Keys(prefix="d/")).keys == sorted(
            k for k in self.model if k.startswith("d/")
        )


TestStateModel = StateModel.TestCase
TestStateModel.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)


def test_the_model_holds_on_postgresql(postgres_server):
    class OnPostgres(StateModel):
        server = postgres_server

    run_state_machine_as_test(
        OnPostgres, settings=settings(max_examples=15, stateful_step_count=20, deadline=None)
    )


def test_keys_are_capped(make_system, tmp_path, store):
    from vibe_actors import WorkerSpec
    from vibe_actors.agents.state import Put, State, StateConfig, Stored, TooManyKeys

    spec = WorkerSpec(name="state", agent=State, config=StateConfig(max_keys=2))
    system = make_system([spec], data_dir=str(tmp_path), store=store)
    ref = system.ref("state")
    assert isinstance(ref.ask(Put(key="a", value=1)), Stored)
    assert isinstance(ref.ask(Put(key="b", value=1)), Stored)
    over = ref.ask_future(Put(key="c", value=1)).wait()
    assert isinstance(over, TooManyKeys) and over.http_status == 429 and over.limit == 2
    assert ref.ask(Put(key="a", value=2)).version == 2  # existing keys may still change
    assert system.registry.get_sample_value("vibe_state_refused_total", {"agent": "state"}) == 1
