"""Registry: protocol, errors, change notifications, death-watch, static entries, restarts."""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from vibe_actors import (
    ActorSystem,
    Agent,
    BackoffSpec,
    Ping,
    RestartType,
    SupervisorSpec,
    SystemConfig,
    UnavailableError,
    WorkerSpec,
    handler,
)
from vibe_actors.agents.registry import (
    Entry,
    Find,
    Found,
    InvalidRegistration,
    Lookup,
    NoSuchAgent,
    NotFound,
    NotSubscribed,
    Register,
    Registered,
    Registration,
    Registry,
    RegistryChanged,
    RegistryConfig,
    Subscribe,
    Subscribed,
    Unregister,
    Unregistered,
    Unsubscribe,
    Unsubscribed,
)

from tests.conftest import wait_until


class Changes:
    """The RegistryChanged notes each watcher agent received."""

    def __init__(self) -> None:
        self.notes: dict[str, list[RegistryChanged]] = {}
        self.changed = threading.Condition()

    def add(self, name: str, note: RegistryChanged) -> None:
        with self.changed:
            self.notes.setdefault(name, []).append(note)
            self.changed.notify_all()

    def of(self, name: str) -> list[tuple[str, list[str]]]:
        with self.changed:
            return [(n.capability, n.names) for n in self.notes.get(name, [])]

    def wait(self, name: str, count: int) -> list[tuple[str, list[str]]]:
        with self.changed:
            ok = self.changed.wait_for(lambda: len(self.notes.get(name, [])) >= count, 5.0)
        assert ok, f"{name} got {self.of(name)}, wanted {count} notes"
        return self.of(name)


class Member(Agent):
    """Any agent; records the RegistryChanged it is told (config: a Changes or None)."""

    @handler
    def changed(self, msg: RegistryChanged) -> None:
        if self.config is not None:
            self.config.add(self.name, msg)


def member(name: str, changes: Changes | None = None, **kw: Any) -> WorkerSpec:
    return WorkerSpec(name=name, agent=Member, config=changes, **kw)


def registry(**config: Any) -> WorkerSpec:
    config.setdefault("recheck_interval", 0.01)
    return WorkerSpec(name="registry", agent=Registry, config=RegistryConfig(**config))


def tree(*children: WorkerSpec) -> SupervisorSpec:
    """A root that restarts at once and does not give up (tests restart agents often)."""
    no_backoff = BackoffSpec(min=0.0, max=0.0, random_factor=0.0)
    return SupervisorSpec(name="root", children=children, intensity=1000, backoff=no_backoff)


def restart(system: ActorSystem, name: str) -> None:
    before = system.cell(name).incarnation
    system.inject_fault(name, "crash")
    wait_until(
        lambda: system.cell(name).incarnation == before + 1 and system.status(name) == "running",
        5.0,
        f"{name} restarted",
    )


def entries(system: ActorSystem) -> float:
    return system.registry.get_sample_value("vibe_registry_entries", {"agent": "registry"})


# -- protocol ---------------------------------------------------------------------------------


def test_register_lookup_find_unregister(make_system, tmp_path):
    system = make_system(tree(registry(), member("kv1"), member("kv2")), data_dir=str(tmp_path))
    assert system.ask("registry", Register(name="kv1", capabilities=["kv", "kv", "cache"])) == (
        Registered(name="kv1", capabilities=["cache", "kv"])
    )
    system.ask("registry", Register(name="kv2", capabilities=["kv"]))
    found = system.ask("registry", Lookup(name="kv1"))
    assert isinstance(found, Registration)
    assert (found.name, found.capabilities) == ("kv1", ["cache", "kv"])
    assert found.registered_at > 0
    assert system.ask("registry", Find(capability="kv")) == Found(
        capability="kv", names=["kv1", "kv2"]
    )
    assert system.ask("registry", Find(capability="none")).names == []
    assert entries(system) == 2
    # Registering again replaces the capabilities.
    system.ask("registry", Register(name="kv1", capabilities=["cache"]))
    assert system.ask("registry", Find(capability="kv")).names == ["kv2"]
    assert system.ask("registry", Unregister(name="kv2")) == Unregistered(name="kv2")
    assert system.ask("registry", Find(capability="kv")).names == []
    assert entries(system) == 1


def test_errors_are_typed(make_system, tmp_path):
    system = make_system(tree(registry(), member("a")), data_dir=str(tmp_path))
    ref = system.ref("registry")
    for message, kind, status in [
        (Register(name="ghost", capabilities=["x"]), NoSuchAgent, 404),
        (Register(name="", capabilities=["x"]), InvalidRegistration, 422),
        (Register(name="a", capabilities=["x", ""]), InvalidRegistration, 422),
        (Unregister(name="a"), NotFound, 404),
        (Lookup(name="a"), NotFound, 404),
        (Subscribe(capability="x", subscriber="ghost"), NoSuchAgent, 404),
        (Subscribe(capability="", subscriber="a"), InvalidRegistration, 422),
        (Unsubscribe(capability="x", subscriber="a"), NotSubscribed, 404),
    ]:
        reply = ref.ask_future(message).wait()
        assert isinstance(reply, kind) and reply.http_status == status, message
        assert reply.detail


def test_subscribers_are_told_each_change(make_system, tmp_path):
    changes = Changes()
    system = make_system(
        tree(registry(), member("w", changes), member("a"), member("b")), data_dir=str(tmp_path)
    )
    system.ask("registry", Register(name="a", capabilities=["kv"]))
    assert system.ask("registry", Subscribe(capability="kv", subscriber="w")) == Subscribed(
        capability="kv", names=["a"]
    )
    system.ask("registry", Register(name="b", capabilities=["kv", "other"]))
    system.ask("registry", Register(name="b", capabilities=["kv"]))  # kv unchanged: no note
    system.ask("registry", Unregister(name="a"))
    assert changes.wait("w", 2) == [("kv", ["a", "b"]), ("kv", ["b"])]
    assert system.ask("registry", Unsubscribe(capability="kv", subscriber="w")) == Unsubscribed(
        capability="kv", subscriber="w"
    )
    system.ask("registry", Unregister(name="b"))
    system.ask("w", Ping())
    assert len(changes.of("w")) == 2


# -- death-watch -------------------------------------------------------------------------------


def test_dead_agents_vanish_but_restarted_ones_stay(make_system, tmp_path):
    changes = Changes()
    system = make_system(
        tree(
            registry(),
            member("w", changes),
            member("stays"),
            member("dies", restart=RestartType.TEMPORARY),
            member("watcher", changes, restart=RestartType.TEMPORARY),
        ),
        data_dir=str(tmp_path),
    )
    for name in ("stays", "dies"):
        system.ask("registry", Register(name=name, capabilities=["kv"]))
    for name in ("w", "watcher"):
        system.ask("registry", Subscribe(capability="kv", subscriber=name))
    restart(system, "stays")
    system.inject_fault("watcher", "crash")  # a dead subscriber is dropped too
    system.inject_fault("dies", "crash")
    assert changes.wait("w", 1) == [("kv", ["stays"])]
    assert system.ask("registry", Find(capability="kv")).names == ["stays"]
    assert isinstance(system.ref("registry").ask_future(Lookup(name="dies")).wait(), NotFound)
    db = sqlite3.connect(tmp_path / "registry.db")
    assert [r[0] for r in db.execute("SELECT name FROM registrations")] == ["stays"]
    assert list(db.execute("SELECT * FROM subscriptions")) == [("kv", "w")]


# -- restarts and static entries ---------------------------------------------------------------


def test_registrations_survive_a_restart_and_the_dead_are_dropped(make_system, tmp_path):
    changes = Changes()
    system = make_system(
        tree(registry(), member("w", changes), member("a")), data_dir=str(tmp_path)
    )
    system.ask("registry", Register(name="a", capabilities=["kv"]))
    system.ask("registry", Subscribe(capability="kv", subscriber="w"))
    # A row for an agent that is gone, as if it died while the registry was down.
    with sqlite3.connect(tmp_path / "registry.db") as db:
        db.execute("INSERT INTO registrations VALUES ('ghost', '[\"kv\"]', 1.0)")
    restart(system, "registry")
    assert changes.wait("w", 1) == [("kv", ["a"])]  # told once: the ghost went
    assert system.ask("registry", Find(capability="kv")).names == ["a"]
    assert system.ask("registry", Lookup(name="a")).capabilities == ["kv"]
    system.ask("registry", Register(name="a", capabilities=["kv", "more"]))
    system.ask("w", Ping())
    assert changes.of("w") == [("kv", ["a"])]  # kv did not change
    db = sqlite3.connect(tmp_path / "registry.db")
    assert [r[0] for r in db.execute("SELECT name FROM registrations")] == ["a"]


def test_without_persistence_a_restart_rebuilds_from_config(make_system, tmp_path):
    system = make_system(
        tree(
            registry(persist=False, entries=[Entry(name="a", capabilities=["x"])]),
            member("a"),
            member("b"),
        ),  # fmt: skip
        data_dir=str(tmp_path),
    )
    system.ask("registry", Register(name="b", capabilities=["x"]))
    assert system.ask("registry", Find(capability="x")).names == ["a", "b"]
    restart(system, "registry")
    assert system.ask("registry", Find(capability="x")).names == ["a"]
    assert not (tmp_path / "registry.db").exists()


def test_static_entries_wait_for_agents_that_start_later(make_system, tmp_path):
    static = [Entry(name="later", capabilities=["x"]), Entry(name="never", capabilities=["x"])]
    with capture_logs() as logs:
        system = make_system(
            tree(registry(entries=static), member("later")), data_dir=str(tmp_path)
        )
        wait_until(lambda: system.ask("registry", Find(capability="x")).names == ["later"], 5.0)
        wait_until(lambda: any(e["event"] == "registry_entry_skipped" for e in logs), 5.0)
    (skipped,) = [e for e in logs if e["event"] == "registry_entry_skipped"]
    assert (skipped["name"], skipped["log_level"]) == ("never", "warning")
    # A dynamic registration overrides the static one; unregistering lasts until a restart.
    system.ask("registry", Register(name="later", capabilities=["y"]))
    assert system.ask("registry", Find(capability="y")).names == ["later"]
    system.ask("registry", Unregister(name="later"))
    assert system.ask("registry", Find(capability="x")).names == []
    restart(system, "registry")
    assert system.ask("registry", Find(capability="x")).names == ["later"]


def test_a_new_process_keeps_what_still_exists(make_system, tmp_path):
    first = make_system(tree(registry(), member("a"), member("gone")), data_dir=str(tmp_path))
    for name in ("a", "gone"):
        first.ask("registry", Register(name=name, capabilities=["kv"]))
    first.ask("registry", Subscribe(capability="kv", subscriber="gone"))
    first.shutdown()
    second = make_system(tree(registry(), member("a")), data_dir=str(tmp_path))
    wait_until(lambda: second.ask("registry", Find(capability="kv")).names == ["a"], 5.0)
    db = sqlite3.connect(tmp_path / "registry.db")
    wait_until(lambda: list(db.execute("SELECT * FROM subscriptions")) == [], 5.0, "cleanup")
    assert [r[0] for r in db.execute("SELECT name FROM registrations")] == ["a"]


def test_an_unusable_database_degrades_the_agent(make_system, tmp_path):
    (tmp_path / "registry.db").write_bytes(b"not a database" * 200)
    system = make_system(tree(registry(), member("a")), data_dir=str(tmp_path))
    assert system.ask("registry", Ping()).agent == "registry"
    with pytest.raises(UnavailableError, match="registry.db"):
        system.ask("registry", Find(capability="x"))


def test_config_validates():
    with pytest.raises(ValueError, match="recheck_interval"):
        RegistryConfig(recheck_interval=0)


# -- a model of Find and the notifications ------------------------------------------------------

NAMES = ["a", "b", "c"]
CAPS = ["x", "y"]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("reg"), st.sampled_from(NAMES), st.sets(st.sampled_from(CAPS))),
        st.tuples(st.just("unreg"), st.sampled_from(NAMES), st.just(frozenset())),
        st.tuples(st.just("restart"), st.just(""), st.just(frozenset())),
    ),
    max_size=20,
)


@settings(max_examples=25, deadline=None)
@given(ops)
def test_property_find_and_notes_follow_the_model(operations):
    changes = Changes()
    with tempfile.TemporaryDirectory() as data_dir:
        specs = tree(registry(), member("w", changes), *[member(n) for n in NAMES])
        with ActorSystem(specs, SystemConfig(serialize_messages=True, data_dir=data_dir)) as system:
            for cap in CAPS:
                system.ask("registry", Subscribe(capability=cap, subscriber="w"))
            model: dict[str, set[str]] = {}
            expected: list[tuple[str, list[str]]] = []

            def names(cap: str) -> list[str]:
                return sorted(n for n, caps in model.items() if cap in caps)

            for op, name, caps in operations:
                if op == "restart":
                    restart(system, "registry")
                    continue
                before = {cap: names(cap) for cap in CAPS}
                if op == "reg":
                    system.ask("registry", Register(name=name, capabilities=sorted(caps)))
                    model[name] = set(caps)
                else:
                    reply = system.ref("registry").ask_future(Unregister(name=name)).wait()
                    assert isinstance(reply, NotFound) == (name not in model)
                    model.pop(name, None)
                for cap in sorted(CAPS):
                    if names(cap) != before[cap]:
                        expected.append((cap, names(cap)))
            for cap in CAPS:
                assert system.ask("registry", Find(capability=cap)).names == names(cap)
            system.ask("w", Ping())
            got = changes.wait("w", len(expected)) if expected else changes.of("w")
            for cap in CAPS:
                assert [n for c, n in got if c == cap] == [n for c, n in expected if c == cap]
