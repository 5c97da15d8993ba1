"""Scheduler replicas on one PostgreSQL database: each reminder fires once per due time
across replicas, whichever replica scheduled it, and a replica that stops leaves its
reminders to the others."""

from __future__ import annotations

import time

from vibe_actors.agents.scheduler import List, Schedule, SchedulerConfig

from tests.conftest import wait_until
from tests.vibe_actors.system_agents.scheduler.test_scheduler import (
    Inbox,
    call,
    drained,
    note,
    specs,
)

FAST = SchedulerConfig(sync_interval=0.05)


def test_each_due_time_fires_once_across_replicas(make_system, tmp_path, postgres_url):
    inboxes = [Inbox(), Inbox(), Inbox()]
    replicas = [
        make_system(specs(inbox, FAST), data_dir=str(tmp_path / f"r{i}"), store=postgres_url)
        for i, inbox in enumerate(inboxes)
    ]
    due = time.time() + 0.5
    for n in range(30):  # scheduled on every replica in turn, all due at once
        replica = replicas[n % 3]
        call(replica, Schedule(name=f"r{n}", target="recorder", message=note("at", n), at=due))
    call(replicas[0], Schedule(name="tick", target="recorder", message=note("tick"), every=0.1))
    wait_until(lambda: sum(i.count("at") for i in inboxes) >= 30, 15.0, "the 30 reminders")
    wait_until(lambda: sum(i.count("tick") for i in inboxes) >= 10, 15.0, "ten ticks")
    for replica in replicas:
        drained(replica)
    fired = sorted(note_.n for inbox in inboxes for note_, _ in inbox.items if note_.text == "at")
    assert fired == list(range(30))  # each once, none twice
    for replica in replicas:  # every replica sees them gone, and the tick still held
        wait_until(lambda r=replica: [s.name for s in call(r, List()).items] == ["tick"], 5.0)
    ticks = [sum(i.count("tick") for i in inboxes)]
    held = {s.name: s for s in call(replicas[1], List()).items}
    assert held["tick"].fired >= ticks[0] - 1  # each delivery was a recorded, claimed fire


def test_a_stopped_replicas_reminders_fire_on_another(make_system, tmp_path, postgres_url):
    first_inbox, second_inbox = Inbox(), Inbox()
    first = make_system(specs(first_inbox, FAST), data_dir=str(tmp_path / "a"), store=postgres_url)
    second = make_system(
        specs(second_inbox, FAST), data_dir=str(tmp_path / "b"), store=postgres_url
    )
    due = time.time() + 1.0
    call(first, Schedule(name="later", target="recorder", message=note("later"), at=due))
    wait_until(lambda: [s.name for s in call(second, List()).items] == ["later"], 5.0, "sync")
    first.shutdown()
    second_inbox.wait_for("later")
    drained(second)
    assert second_inbox.count("later") == 1 and first_inbox.count("later") == 0
    assert call(second, List()).items == []
