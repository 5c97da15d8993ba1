"""Every system agent's messages are tagged ``<agent>.<ClassName>`` on the wire; over HTTP
they keep their class names; persisted messages written before namespacing still load."""

from __future__ import annotations

import importlib
import sqlite3
import time
from pathlib import Path

import msgspec
import pytest

import phoenix
from vibe_actors import ErrorReply, Message, RuntimeEvent, SupervisorSpec, WorkerSpec
from vibe_actors.agents.ledger import Ledger, Records, Tail
from vibe_actors.agents.pubsub import PubSub, Subscribe
from vibe_actors.agents.registry import Registry
from vibe_actors.agents.registry import Subscribe as RegistrySubscribe
from vibe_actors.agents.scheduler import List, Schedule, Scheduler, Schedules
from vibe_actors.agents.schema import http_json, http_name, retagged
from vibe_actors.agents.webhooks import Subscribe as WebhookSubscribe
from vibe_actors.store import database_path

from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[3]


def _protocol_types() -> dict[str, list[type]]:
    """Agent package -> the Message types its protocol module defines."""
    found: dict[str, list[type]] = {}
    for node in phoenix.load(ROOT / "wiring.yaml").agents.values():
        package = ".".join(node.__module__.split(".")[:3])  # JobWorker is in jobs._worker
        if not package.startswith("vibe_actors.agents."):
            continue
        protocol = importlib.import_module(f"{package}.protocol")
        found[package.rsplit(".", 1)[1]] = [
            value
            for value in vars(protocol).values()
            if isinstance(value, type)
            and issubclass(value, Message)
            and value.__module__ == protocol.__name__
            and not value.__name__.startswith("_")
        ]
    return found


def test_every_system_agent_message_is_tagged_by_its_agent_and_no_two_share_a_tag():
    found = _protocol_types()
    assert len(found) == 13, sorted(found)
    tags: dict[str, type] = {}
    for agent, types in found.items():
        for message_type in types:
            tag = message_type.__struct_config__.tag
            if issubclass(message_type, RuntimeEvent):  # the system's event stream: by name
                assert tag == message_type.__name__
            else:
                assert tag == f"{agent}.{message_type.__name__}", message_type
                assert http_name(tag) == message_type.__name__
            assert tag not in tags, (message_type, tags.get(tag))
            tags[tag] = message_type
    subscribes = {Subscribe, RegistrySubscribe, WebhookSubscribe}
    assert {t.__struct_config__.tag for t in subscribes} == {
        "pubsub.Subscribe",
        "registry.Subscribe",
        "webhooks.Subscribe",
    }
    assert any(issubclass(t, ErrorReply) for t in found["pubsub"])


def test_http_json_shows_http_names_and_leaves_data_alone():
    reply = Records(stream="s", records=[])
    assert msgspec.json.decode(msgspec.json.encode(reply))["type"] == "ledger.Records"
    assert msgspec.json.decode(http_json(reply))["type"] == "Records"
    # A free-form value that merely contains a tag's text is data: not rewritten.
    assert b"ledger.Records" in http_json({"text": '{"type":"ledger.Records"}'})


def test_a_body_naming_the_http_name_is_retagged_and_any_other_is_not():
    body = b'{"topic": "t", "type": "Subscribe", "subscriber": "a"}'
    decoded = msgspec.json.decode(retagged(Subscribe, body), type=Subscribe)
    assert decoded == Subscribe(topic="t", subscriber="a")
    assert retagged(Subscribe, b'{"type": "Publish", "topic": "t"}') is None
    assert retagged(Subscribe, b"[1, 2]") is None
    assert retagged(Subscribe, b"{not json") is None


# -- reminders written before tags were namespaced ----------------------------------------


def _tree() -> SupervisorSpec:
    return SupervisorSpec(
        name="root",
        children=(
            WorkerSpec(name="ledger", agent=Ledger),
            WorkerSpec(name="registry", agent=Registry),
            WorkerSpec(name="pubsub", agent=PubSub),
            WorkerSpec(name="scheduler", agent=Scheduler, depends_on=("ledger", "registry")),
        ),
    )


def _old_reminders(data_dir: Path) -> None:
    """The reminders table as the scheduler of the last release wrote it: each message
    stored with its class-name tag, the only tag there was (raw SQL, no code of ours)."""
    path = database_path(data_dir, "scheduler")
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE reminders (name TEXT PRIMARY KEY, target TEXT NOT NULL, message TEXT"
        " NOT NULL, at REAL, every REAL, next_at REAL NOT NULL, fired INTEGER NOT NULL"
        " DEFAULT 0, caller TEXT) WITHOUT ROWID"
    )
    past = time.time() - 60
    rows = [
        ("append", "ledger", '{"type":"Append","stream":"old","data":{"n":1}}'),
        # A name three agents share: the target says which one it is.
        ("watch", "registry", '{"type":"Subscribe","capability":"kv","subscriber":"pubsub"}'),
    ]
    db.executemany(
        "INSERT INTO reminders VALUES (?, ?, ?, ?, NULL, ?, 0, NULL)",
        [(name, target, message, past, past) for name, target, message in rows],
    )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()


def test_reminders_stored_with_class_name_tags_load_and_fire(make_system, tmp_path):
    _old_reminders(tmp_path)
    system = make_system(_tree(), data_dir=str(tmp_path))
    ledger = system.ref("ledger")
    wait_until(
        lambda: len(ledger.ask(Tail(stream="old", limit=10)).records) == 1,
        what="the old Append reminder fired",
    )
    assert ledger.ask(Tail(stream="old", limit=10)).records[0].data == {"n": 1}
    wait_until(lambda: _rows(tmp_path) == [], what="both at-only reminders fired and went")


def test_a_schedule_takes_the_http_name_or_the_wire_tag_and_keeps_the_http_name(
    make_system, tmp_path
):
    system = make_system(_tree(), data_dir=str(tmp_path))
    scheduler = system.ref("scheduler")
    later = time.time() + 3600
    for name, tag in (("by-name", "Subscribe"), ("by-tag", "registry.Subscribe")):
        message = {"type": tag, "capability": "kv", "subscriber": "pubsub"}
        scheduler.ask(Schedule(name=name, target="registry", message=message, at=later))
    listed: Schedules = scheduler.ask(List())
    assert {item.name: item.message_type for item in listed.items} == {
        "by-name": "Subscribe",
        "by-tag": "Subscribe",
    }
    stored = {row: msgspec.json.decode(message)["type"] for row, message in _messages(tmp_path)}
    assert stored == {"by-name": "Subscribe", "by-tag": "Subscribe"}


def _rows(data_dir: Path) -> list[str]:
    return [name for name, _ in _messages(data_dir)]


def _messages(data_dir: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(database_path(data_dir, "scheduler"))
    try:
        return list(db.execute("SELECT name, message FROM reminders ORDER BY name"))
    finally:
        db.close()


@pytest.mark.parametrize("tag", ["Subscribe", "pubsub.Subscribe"])
def test_http_names_and_wire_tags_both_name_the_type_for_the_scheduler(tag, make_system, tmp_path):
    system = make_system(_tree(), data_dir=str(tmp_path))
    message = {"type": tag, "topic": "t", "subscriber": "registry"}
    reply = system.ref("scheduler").ask(
        Schedule(name="s", target="pubsub", message=message, at=time.time() + 3600)
    )
    assert reply.name == "s"
