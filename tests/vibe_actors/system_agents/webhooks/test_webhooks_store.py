"""Webhooks' subscriptions in the store: both backends, the old JSON file imported, a full
disk answered 503, and two systems on one PostgreSQL sharing their subscriptions."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path
from typing import Any

import msgspec
import pytest

from vibe_actors import Caller, Ping, SupervisorSpec, Unavailable, WorkerSpec
from vibe_actors.agents.webhooks import (
    Deliver,
    Deliveries,
    Queued,
    Subscribe,
    Subscribed,
    TooManySubscriptions,
    UnknownSubscription,
    Unsubscribe,
    Unsubscribed,
    Webhooks,
    WebhooksConfig,
    WebhooksNotSaved,
)
from vibe_actors.agents.webhooks._store import Subscription, legacy_file

from tests.conftest import wait_until
from tests.postgres import agent_sql
from tests.vibe_actors.store.test_postgres import _connections
from tests.vibe_actors.system_agents.test_full_disk import (
    fast_probe,
    fill_disk,
    free_disk,
    impaired,
)
from tests.vibe_actors.system_agents.webhooks.conftest import Hook
from tests.vibe_actors.system_agents.webhooks.test_webhooks import LOCAL, SECRET, final_records


def system_of(make_system, data_dir: Path, store: str = "", agent: type = Webhooks, **config: Any):
    config.setdefault("backoff_initial", 0.05)
    config.setdefault("backoff_jitter", 0.0)
    spec = WorkerSpec(name="hooks", agent=agent, config=WebhooksConfig(allow=LOCAL, **config))
    root = SupervisorSpec(name="root", children=[spec], intensity=10, period=60.0)
    return make_system(root, data_dir=str(data_dir), store=store)


def ask(system, message: Any, caller: Caller | None = None, timeout: float = 10.0) -> Any:
    """The reply as data (error replies included), with a deadline."""
    return system.ref("hooks").ask_future(message, caller=caller, timeout=timeout).wait()


def held(system) -> list[str]:
    """The ids of the subscriptions the agent holds (every one has a circuit)."""
    return list(system.ask("hooks", Deliveries()).circuits)


def write_legacy(data_dir: Path, subs: list[Subscription]) -> Path:
    """A subscriptions file as versions before the store wrote it."""
    path = legacy_file(data_dir, "hooks")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_bytes(msgspec.json.encode({"subscriptions": subs}))
    path.chmod(0o600)
    return path


def test_subscriptions_are_stored_and_read_again_at_start(make_system, tmp_path, store, hook):
    system = system_of(make_system, tmp_path, store)
    caller = Caller("alice")
    first = ask(system, Subscribe(topic="t", url=hook.url, secret=SECRET), caller)
    second = ask(system, Subscribe(topic="u", url=hook.url, secret="other"))
    assert isinstance(first, Subscribed) and isinstance(second, Subscribed)
    rows = agent_sql(
        tmp_path, store, "hooks", "SELECT id, topic, caller FROM subscriptions ORDER BY seq"
    )
    assert rows == [(first.id, "t", '{"principal":"alice"}'), (second.id, "u", None)]
    if not store:  # the SQLite file holds the secrets: owner only
        assert stat.S_IMODE(os.stat(tmp_path / "hooks.db").st_mode) == 0o600
    assert not (tmp_path / "webhooks").exists()
    system.inject_fault("hooks", "crash")
    assert system.ask("hooks", Ping()).incarnation == 2
    assert held(system) == [first.id, second.id]
    assert system.ask("hooks", Unsubscribe(id=first.id)) == Unsubscribed(id=first.id)
    system.inject_fault("hooks", "crash")
    assert system.ask("hooks", Ping()).incarnation == 3
    assert held(system) == [second.id]
    assert len(system.ask("hooks", Deliver(topic="u")).deliveries) == 1
    ((headers, body),) = hook.received(1)
    expected = hmac.new(b"other", body, hashlib.sha256).hexdigest()
    assert headers["X-Vibe-Signature"] == f"sha256={expected}"


def test_the_json_file_of_older_versions_is_imported_once(make_system, tmp_path, store, hook):
    mallory = Caller("mallory")
    old = [
        Subscription("a" * 32, "t", hook.url, SECRET, mallory),
        Subscription("b" * 32, "t", hook.url, SECRET, None),
    ]
    path = write_legacy(tmp_path, old)
    system = system_of(make_system, tmp_path, store, max_subscriptions_per_caller=1)
    assert held(system) == ["a" * 32, "b" * 32]  # in the file's order
    assert not path.exists()
    aside = path.with_name("hooks.json.migrated")
    assert stat.S_IMODE(os.stat(aside).st_mode) == 0o600
    assert msgspec.json.decode(aside.read_bytes())["subscriptions"][0]["id"] == "a" * 32
    rows = agent_sql(tmp_path, store, "hooks", "SELECT id, caller FROM subscriptions ORDER BY seq")
    assert rows == [("a" * 32, '{"principal":"mallory"}'), ("b" * 32, None)]
    # The imported caller still counts against its cap; the imported secret signs.
    refused = ask(system, Subscribe(topic="t", url=hook.url, secret=SECRET), mallory)
    assert isinstance(refused, TooManySubscriptions)
    assert len(system.ask("hooks", Deliver(topic="t")).deliveries) == 2
    for headers, body in hook.received(2):
        expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Vibe-Signature"] == f"sha256={expected}"
    # A file found again (an import interrupted before its rename) adds only what is new.
    system.ask("hooks", Unsubscribe(id="b" * 32))
    write_legacy(tmp_path, [old[0], Subscription("c" * 32, "u", hook.url, SECRET)])
    system.inject_fault("hooks", "crash")
    assert system.ask("hooks", Ping()).incarnation == 2
    assert held(system) == ["a" * 32, "c" * 32]
    assert not path.exists()


def test_an_unreadable_json_file_degrades_the_agent_and_is_kept(make_system, tmp_path):
    path = legacy_file(tmp_path, "hooks")
    path.parent.mkdir(mode=0o700)
    path.write_bytes(b'{"subscriptions": [{"id": 1}]}')
    system = system_of(make_system, tmp_path)
    reply = system.ref("hooks").ask_future(Deliveries()).wait()
    assert isinstance(reply, Unavailable) and str(path) in reply.reason
    assert "not a subscriptions file" in reply.reason
    assert path.exists() and system.running


def test_a_store_that_cannot_be_opened_degrades_only_the_agent(make_system, tmp_path, hook):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    system = system_of(make_system, blocker)
    reply = system.ref("hooks").ask_future(Subscribe(topic="t", url=hook.url, secret=SECRET))
    unavailable = reply.wait()
    assert isinstance(unavailable, Unavailable) and str(blocker) in unavailable.reason
    assert system.running


def test_a_full_disk_refuses_changes_with_503_and_the_agent_stays_up(make_system, tmp_path, hook):
    system = system_of(make_system, tmp_path, agent=fast_probe(Webhooks))
    kept = ask(system, Subscribe(topic="t", url=hook.url, secret=SECRET))
    # A long secret: the row needs new pages whatever the free list holds.
    big = "x" * 200_000
    fill_disk(system, "hooks")
    incarnation = system.cell("hooks").incarnation
    for _ in range(3):
        refused = ask(system, Subscribe(topic="u", url=hook.url, secret=big))
        assert isinstance(refused, WebhooksNotSaved) and refused.http_status == 503
        assert "hooks.db" in refused.detail and "nothing of this Subscribe" in refused.detail
        assert big not in refused.detail
    assert system.cell("hooks").incarnation == incarnation and impaired(system) == ["hooks"]
    # What it holds is still delivered to; nothing of the refused ones is held.
    assert held(system) == [kept.id]
    assert len(system.ask("hooks", Deliver(topic="t")).deliveries) == 1
    final_records(system)
    free_disk(system, "hooks")
    wait_until(lambda: not impaired(system), what="webhooks ready again")
    again = ask(system, Subscribe(topic="u", url=hook.url, secret=big))
    assert isinstance(again, Subscribed)
    assert held(system) == [kept.id, again.id]


@pytest.mark.timeout(90)
def test_while_postgresql_is_away_changes_are_503_and_deliveries_go_on(
    make_system, tmp_path, postgres_url, hook: Hook
):
    system = system_of(make_system, tmp_path, postgres_url, sync_interval=0.05)
    kept = ask(system, Subscribe(topic="t", url=hook.url, secret=SECRET))
    _connections(postgres_url, allowed=False)
    try:
        # Each waits for the pool's timeout (5 s), perhaps behind a sync or a probe.
        refused = ask(system, Subscribe(topic="u", url=hook.url, secret=SECRET), timeout=30)
        assert isinstance(refused, WebhooksNotSaved) and refused.http_status == 503
        assert "#hooks" in refused.detail and "postgresql://" in refused.detail
        not_removed = ask(system, Unsubscribe(id=kept.id), timeout=30)
        assert isinstance(not_removed, WebhooksNotSaved)
        assert system.cell("hooks").impaired is not None
        # What it holds is still delivered to (the failing syncs keep it).
        assert list(ask(system, Deliveries(), timeout=30).circuits) == [kept.id]
        assert len(ask(system, Deliver(topic="t"), timeout=30).deliveries) == 1
        hook.received(1, timeout=30)
    finally:
        _connections(postgres_url, allowed=True)
    wait_until(lambda: system.cell("hooks").impaired is None, 30.0, "the probe's recovery")
    assert ask(system, Unsubscribe(id=kept.id)) == Unsubscribed(id=kept.id)
    assert held(system) == []


@pytest.mark.timeout(60)
def test_two_systems_on_one_postgresql_share_subscriptions(
    make_system, tmp_path, postgres_url, hook: Hook
):
    a = system_of(make_system, tmp_path / "a", postgres_url, sync_interval=0.05)
    b = system_of(make_system, tmp_path / "b", postgres_url, sync_interval=0.05)
    sub = ask(a, Subscribe(topic="t", url=hook.url, secret=SECRET)).id
    wait_until(lambda: held(b) == [sub], 10.0, "B to read A's subscription")
    # Each replica delivers what is published on it.
    assert len(b.ask("hooks", Deliver(topic="t", data="from b")).deliveries) == 1
    assert len(a.ask("hooks", Deliver(topic="t", data="from a")).deliveries) == 1
    datas = sorted(msgspec.json.decode(body)["data"] for _, body in hook.received(2))
    assert datas == ["from a", "from b"]
    # One on B: A removes it before its sync has read it, and both stop delivering to it.
    slow = system_of(make_system, tmp_path / "c", postgres_url, sync_interval=3600)
    made_on_b = ask(b, Subscribe(topic="v", url=hook.url, secret=SECRET)).id
    assert slow.ask("hooks", Unsubscribe(id=made_on_b)) == Unsubscribed(id=made_on_b)
    assert isinstance(ask(slow, Unsubscribe(id="no-such-id")), UnknownSubscription)
    wait_until(lambda: held(b) == [sub], 10.0, "B to read the unsubscribe")
    other = ask(b, Subscribe(topic="u", url=hook.url, secret=SECRET)).id
    wait_until(lambda: held(a) == [sub, other], 10.0, "A to read B's subscription")
    assert a.ask("hooks", Unsubscribe(id=sub)) == Unsubscribed(id=sub)
    wait_until(lambda: held(b) == [other], 10.0, "B to read A's unsubscribe")
    assert b.ask("hooks", Deliver(topic="t")) == Queued(deliveries=[])
    assert a.ask("hooks", Deliver(topic="t")) == Queued(deliveries=[])
    assert b.ask("hooks", Unsubscribe(id=other)) == Unsubscribed(id=other)
    wait_until(lambda: held(a) == held(b) == [], 10.0, "both empty")
    assert agent_sql(tmp_path, postgres_url, "hooks", "SELECT count(*) FROM subscriptions") == [
        (0,)
    ]
