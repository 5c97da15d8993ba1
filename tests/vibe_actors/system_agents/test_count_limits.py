"""Count limits of the durable agents: registry names, webhook subscriptions, ledger streams.

Each limit refuses a new item with a typed 429 naming the limit, lets existing items change,
frees a slot when an item goes (where the protocol can remove one) and is counted again from
the store after a restart of the agent.

The replies and settings are imported inside the tests: on a version without them each test
fails on its own instead of the whole module failing to import.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

from structlog.testing import capture_logs

from vibe_actors import Caller, Ping, WorkerSpec
from vibe_actors.agents.ledger import Append, Appended, Streams
from vibe_actors.agents.ledger import _store as _ledger_store
from vibe_actors.agents.registry import Lookup, Register, Registered, Unregister
from vibe_actors.agents.webhooks import (
    Deliveries,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Webhooks,
    WebhooksConfig,
)

from tests.postgres import agent_sql
from tests.vibe_actors.system_agents.ledger.test_ledger import ledger_spec
from tests.vibe_actors.system_agents.registry.test_registry import member, registry, restart, tree
from tests.vibe_actors.system_agents.webhooks.test_webhooks import LOCAL, SECRET


def refusals(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == event]


# -- registry: names --------------------------------------------------------------------------


def test_registry_names_are_capped_and_counted_again_after_a_restart(make_system, tmp_path):
    from vibe_actors.agents.registry import TooManyNames

    with capture_logs() as logs:  # around the start: the agent binds its logger there
        system = make_system(
            tree(registry(max_names=2), member("a"), member("b"), member("c")),
            data_dir=str(tmp_path),
        )
        ref = system.ref("registry")
        for name in ("a", "b"):
            assert isinstance(system.ask("registry", Register(name=name)), Registered)
        over = ref.ask_future(Register(name="c", capabilities=["kv"]), request_id="r-1").wait()
        assert isinstance(over, TooManyNames)
        assert (over.http_status, over.limit) == (429, 2)
        assert "2 names" in over.detail
        (logged,) = refusals(logs, "registry_limit_reached")
        assert (logged["log_level"], logged["name"], logged["limit"], logged["request_id"]) == (
            "warning",
            "c",
            "max_names",
            "r-1",
        )
        # At the limit a registered name still changes its capabilities.
        again = system.ask("registry", Register(name="a", capabilities=["cache"]))
        assert again == Registered(name="a", capabilities=["cache"])

        # A new incarnation counts the names in the store: still full.
        restart(system, "registry")
        assert system.ask("registry", Lookup(name="a")).capabilities == ["cache"]
        assert isinstance(ref.ask_future(Register(name="c")).wait(), TooManyNames)

        # Unregistering frees a slot, and the freed slot survives a restart too.
        system.ask("registry", Unregister(name="b"))
        restart(system, "registry")
        assert isinstance(system.ask("registry", Register(name="c")), Registered)
        assert isinstance(ref.ask_future(Register(name="b")).wait(), TooManyNames)

    sample = system.registry.get_sample_value
    refused = {"agent": "registry", "limit": "max_names"}
    assert sample("vibe_registry_refused_total", refused) == 3
    assert sample("vibe_registry_entries", {"agent": "registry"}) == 2


def test_registry_config_refuses_more_static_entries_than_max_names():
    import pytest

    from vibe_actors.agents.registry import Entry, RegistryConfig

    with pytest.raises(ValueError, match="max_names"):
        RegistryConfig(max_names=0)
    with pytest.raises(ValueError, match="more than max_names"):
        RegistryConfig(max_names=1, entries=[Entry(name="a"), Entry(name="b")])


# -- webhooks: subscriptions ------------------------------------------------------------------

#: An address the SSRF guard lets through (LOCAL) and that resolves without a network.
URL = "http://127.0.0.1:9/hook"


def hooks(make_system, tmp_path, agent: type[Webhooks] = Webhooks, store: str = "", **config: Any):
    spec = WorkerSpec(name="hooks", agent=agent, config=WebhooksConfig(allow=LOCAL, **config))
    return make_system(tree(spec), data_dir=str(tmp_path), store=store)


def subscribe(system, topic: str = "t", caller: Caller | None = None) -> Any:
    message = Subscribe(topic=topic, url=URL, secret=SECRET)
    return system.ref("hooks").ask_future(message, caller=caller).wait()


def test_webhook_subscriptions_are_capped_and_counted_again_after_a_restart(
    make_system, tmp_path, store
):
    from vibe_actors.agents.webhooks import TooManySubscriptions

    with capture_logs() as logs:
        system = hooks(make_system, tmp_path, store=store, max_subscriptions=2)
        first, second = subscribe(system, "t"), subscribe(system, "u")
        assert isinstance(first, Subscribed) and isinstance(second, Subscribed)
        over = subscribe(system, "t")
        assert isinstance(over, TooManySubscriptions)
        assert (over.http_status, over.limit) == (429, 2)
        assert "holds 2 subscriptions" in over.detail
        (logged,) = refusals(logs, "webhooks_limit_reached")
        assert (logged["log_level"], logged["limit"], logged["topic"]) == (
            "warning",
            "max_subscriptions",
            "t",
        )
        assert SECRET not in repr(logged)
        # The subscriptions held are untouched.
        assert set(system.ask("hooks", Deliveries()).circuits) == {first.id, second.id}

        restart(system, "hooks")  # the store is read again: still full
        assert isinstance(subscribe(system, "v"), TooManySubscriptions)

        assert system.ask("hooks", Unsubscribe(id=first.id)).id == first.id
        restart(system, "hooks")
        third = subscribe(system, "v")
        assert isinstance(third, Subscribed)
        assert set(system.ask("hooks", Deliveries()).circuits) == {second.id, third.id}

    sample = system.registry.get_sample_value
    refused = {"agent": "hooks", "limit": "max_subscriptions"}
    assert sample("vibe_webhooks_refused_total", refused) == 2
    assert sample("vibe_webhooks_subscriptions", {"agent": "hooks"}) == 2


def test_a_callers_webhook_subscriptions_are_capped_across_restarts(make_system, tmp_path, store):
    from vibe_actors.agents.webhooks import TooManySubscriptions

    mallory, eve = Caller("mallory"), Caller("eve")
    system = hooks(
        make_system, tmp_path, store=store, max_subscriptions=10, max_subscriptions_per_caller=2
    )
    mine = [subscribe(system, "t", mallory) for _ in range(2)]
    assert all(isinstance(reply, Subscribed) for reply in mine)
    over = subscribe(system, "t", mallory)
    assert isinstance(over, TooManySubscriptions)
    assert over.limit == 2 and "'mallory' holds 2" in over.detail
    # Other principals and trusted code (no caller) have their own room.
    assert isinstance(subscribe(system, "t", eve), Subscribed)
    assert isinstance(subscribe(system, "t"), Subscribed)
    assert isinstance(subscribe(system, "t"), Subscribed)
    stored = agent_sql(tmp_path, store, "hooks", "SELECT caller FROM subscriptions")
    callers = sorted(str(row[0] and json.loads(row[0])) for row in stored)
    assert callers == [
        "None",
        "None",
        "{'principal': 'eve'}",
        "{'principal': 'mallory'}",
        "{'principal': 'mallory'}",
    ]

    restart(system, "hooks")  # whose each subscription is was saved with it
    assert isinstance(subscribe(system, "t", mallory), TooManySubscriptions)
    assert isinstance(subscribe(system, "t", eve), Subscribed)
    system.ask("hooks", Unsubscribe(id=mine[0].id))
    assert isinstance(subscribe(system, "t", mallory), Subscribed)
    refused = {"agent": "hooks", "limit": "max_subscriptions_per_caller"}
    assert system.registry.get_sample_value("vibe_webhooks_refused_total", refused) == 2


class Gated(Webhooks):
    """Its URL checks wait for ``gate``: several Subscribes are let through before any ends."""

    gate = threading.Event()
    entered = threading.Event()

    @staticmethod
    def resolver(host, port, type=0, **_: Any):
        Gated.entered.set()
        Gated.gate.wait(5)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]


def test_checks_in_flight_cannot_overshoot_the_webhook_limit(make_system, tmp_path):
    from vibe_actors.agents.webhooks import TooManySubscriptions

    Gated.gate, Gated.entered = threading.Event(), threading.Event()
    system = hooks(make_system, tmp_path, agent=Gated, max_subscriptions=1, workers=2)
    ref = system.ref("hooks")
    try:
        pending = [
            ref.ask_future(Subscribe(topic="t", url="http://hooks.invalid/", secret=SECRET))
            for _ in range(2)
        ]
        assert Gated.entered.wait(5)
        system.ask("hooks", Ping())  # both Subscribes were handled (and let through)
    finally:
        Gated.gate.set()
    replies = sorted((reply.wait() for reply in pending), key=lambda r: type(r).__name__)
    assert [type(reply) for reply in replies] == [Subscribed, TooManySubscriptions]
    assert list(system.ask("hooks", Deliveries()).circuits) == [replies[0].id]


# -- ledger: streams --------------------------------------------------------------------------


def test_ledger_streams_are_capped_and_counted_again_after_a_restart(make_system, tmp_path):
    from vibe_actors.agents.ledger import TooManyStreams

    with capture_logs() as logs:
        system = make_system(tree(ledger_spec(max_streams=2)), data_dir=str(tmp_path))
        ledger = system.ref("ledger")
        for stream in ("a", "b"):
            assert ledger.ask(Append(stream=stream, data=1)).seq == 1
        over = ledger.ask_future(Append(stream="c", data=1), request_id="r-2").wait()
        assert isinstance(over, TooManyStreams)
        assert (over.http_status, over.limit) == (429, 2)
        assert "2 streams" in over.detail
        (logged,) = refusals(logs, "ledger_limit_reached")
        assert (logged["log_level"], logged["stream"], logged["limit"], logged["request_id"]) == (
            "warning",
            "c",
            "max_streams",
            "r-2",
        )
        # Existing streams go on at the limit.
        assert ledger.ask(Append(stream="a", data=2)).seq == 2

        restart(system, "ledger")  # the heads are loaded from the file: still full
        assert isinstance(ledger.ask_future(Append(stream="c", data=1)).wait(), TooManyStreams)
        assert ledger.ask(Append(stream="b", data=2)).seq == 2
        listed = ledger.ask(Streams()).streams
        assert [(s.stream, s.count) for s in listed] == [("a", 2), ("b", 2)]

    sample = system.registry.get_sample_value
    assert sample("vibe_ledger_refused_total", {"agent": "ledger"}) == 2
    assert sample("vibe_ledger_streams", {"agent": "ledger"}) == 2


def test_new_streams_of_an_uncommitted_batch_count_toward_the_ledger_limit(
    make_system, tmp_path, monkeypatch
):
    from vibe_actors.agents.ledger import TooManyStreams

    system = make_system([ledger_spec(max_streams=3)], data_dir=str(tmp_path))
    ledger = system.ref("ledger")
    assert ledger.ask(Append(stream="first", data=0)).seq == 1
    real_commit = _ledger_store.LedgerStore.commit
    entered, gate = threading.Event(), threading.Event()

    def held_commit(self, rows, heads, rechain=None):
        # The first commit waits, so the appends sent meanwhile form one batch after it.
        if not entered.is_set():
            entered.set()
            gate.wait(5)
        return real_commit(self, rows, heads, rechain)

    monkeypatch.setattr(_ledger_store.LedgerStore, "commit", held_commit)
    try:
        plug = ledger.ask_future(Append(stream="first", data=1))
        assert entered.wait(5)
        batch = [ledger.ask_future(Append(stream=f"new{n}", data=n)) for n in range(4)]
        batch.append(ledger.ask_future(Append(stream="first", data=2)))
    finally:
        gate.set()
    assert plug.wait().seq == 2
    kinds = [type(reply.wait()) for reply in batch]
    # new0 and new1 are pending, not committed, when new2 arrives: 3 streams are held.
    assert kinds == [Appended, Appended, TooManyStreams, TooManyStreams, Appended]
    assert [s.stream for s in ledger.ask(Streams()).streams] == ["first", "new0", "new1"]
