"""Scheduler: a schedule is delivered on behalf of whoever scheduled it (no confused deputy)."""

from __future__ import annotations

import sqlite3
import time

from vibe_actors import Caller, DeadLetterReason, Forbidden, SupervisorSpec, WorkerSpec
from vibe_actors.agents.policy import (
    Policy,
    PolicyConfig,
    PolicyDenied,
    Reload,
    Rule,
    Snapshot,
)
from vibe_actors.agents.scheduler import (
    InvalidSchedule,
    List,
    Schedule,
    Scheduled,
    Scheduler,
    SchedulerConfig,
    TooManySchedules,
)
from vibe_actors.store._sqlite import database_path

from tests.conftest import wait_until
from tests.vibe_actors.system_agents.scheduler.test_scheduler import Inbox, Recorder, note

MALLORY = Caller("mallory")
#: mallory may use the scheduler and send Note to the recorder, nothing else.
RULES = [
    Rule(principal="mallory", agent="scheduler", message="*"),
    Rule(principal="mallory", agent="recorder", message="Note"),
]


def specs(
    inbox: Inbox, rules: list[Rule] = RULES, config: SchedulerConfig | None = None
) -> SupervisorSpec:
    return SupervisorSpec(
        name="root",
        children=(
            WorkerSpec(
                name="policy",
                agent=Policy,
                config=PolicyConfig(enabled=True, rules=rules, persist=False),
            ),
            WorkerSpec(name="recorder", agent=Recorder, config=inbox),
            WorkerSpec(
                name="scheduler",
                agent=Scheduler,
                config=config or SchedulerConfig(caller_min_interval=0.05),
            ),
        ),
    )


def schedule(system, caller, **fields):
    return system.ref("scheduler").ask_future(Schedule(**fields), caller=caller).wait()


def test_scheduling_what_the_caller_may_not_send_is_refused_with_403(make_system, tmp_path):
    system = make_system(specs(Inbox()), data_dir=str(tmp_path))
    reload = {"type": "Reload", "rules": [], "enabled": False}
    reply = schedule(
        system, MALLORY, name="takeover", target="policy", message=reload, at=time.time()
    )
    assert isinstance(reply, Forbidden)
    assert (reply.agent, reply.message_type, reply.http_status) == ("policy", "Reload", 403)
    # Nothing was kept, and the policy is still on.
    assert system.ask("scheduler", List()).items == []
    assert system.ask("policy", Snapshot()).enabled is True


def test_trusted_code_may_schedule_anything(make_system, tmp_path):
    inbox = Inbox()
    system = make_system(specs(inbox, rules=[]), data_dir=str(tmp_path))
    reply = schedule(system, None, name="n", target="recorder", message=note("hi"), at=time.time())
    assert isinstance(reply, Scheduled)
    inbox.wait_for("hi")


def test_a_delivery_the_policy_no_longer_allows_is_a_forbidden_dead_letter(make_system, tmp_path):
    inbox = Inbox()
    system = make_system(specs(inbox), data_dir=str(tmp_path))
    denials: list[PolicyDenied] = []
    system.events.subscribe(lambda e: denials.append(e) if isinstance(e, PolicyDenied) else None)
    reply = schedule(
        system, MALLORY, name="tick", target="recorder", message=note("tick"), every=0.05
    )
    assert isinstance(reply, Scheduled)
    inbox.wait_for("tick")
    # The operator revokes mallory's right to send Note: the next ticks are denied.
    system.ask("policy", Reload(rules=RULES[:1], enabled=True))
    wait_until(
        lambda: any(x.reason is DeadLetterReason.FORBIDDEN for x in system.dead_letters.recent()),
        what="a forbidden delivery",
    )
    letter = next(x for x in system.dead_letters.recent() if x.reason is DeadLetterReason.FORBIDDEN)
    assert (letter.recipient, letter.sender, letter.message_type) == (
        "recorder",
        "scheduler",
        "Note",
    )
    denial = next(d for d in denials if d.agent == "recorder")
    assert (denial.principal, denial.sender, denial.message) == ("mallory", "scheduler", "Note")


def test_a_reminder_keeps_its_caller_across_a_restart(make_system, tmp_path):
    inbox = Inbox()
    system = make_system(specs(inbox), data_dir=str(tmp_path))
    at = time.time() + 3600
    schedule(system, MALLORY, name="later", target="recorder", message=note("x"), at=at)
    rows = _callers(tmp_path)
    assert rows == [("later", '{"principal":"mallory"}')]
    system.shutdown()
    with sqlite3.connect(database_path(tmp_path, "scheduler")) as db:
        db.execute("UPDATE reminders SET next_at = ?", (time.time(),))  # due at the next start
    inbox2 = Inbox()
    # Restarted with mallory no longer allowed to send Note: the reminder is denied.
    again = make_system(specs(inbox2, rules=RULES[:1]), data_dir=str(tmp_path))
    wait_until(
        lambda: any(x.reason is DeadLetterReason.FORBIDDEN for x in again.dead_letters.recent()),
        what="the reloaded reminder denied for mallory",
    )
    assert inbox2.texts() == []


def test_a_reminder_from_before_callers_were_recorded_is_delivered_as_anonymous(
    make_system, tmp_path
):
    path = database_path(tmp_path, "scheduler")
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE reminders (name TEXT PRIMARY KEY, target TEXT NOT NULL,"
            " message TEXT NOT NULL, at REAL, every REAL, next_at REAL NOT NULL,"
            " fired INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID"
        )
        db.execute(
            "INSERT INTO reminders VALUES ('old', 'recorder', ?, ?, NULL, ?, 0)",
            ('{"type":"Note","text":"old","n":0}', time.time(), time.time()),
        )
    inbox = Inbox()
    # Anonymous callers may not send Note: the old reminder is not delivered.
    system = make_system(specs(inbox), data_dir=str(tmp_path))
    wait_until(
        lambda: any(x.reason is DeadLetterReason.FORBIDDEN for x in system.dead_letters.recent()),
        what="the legacy reminder denied as anonymous",
    )
    assert inbox.texts() == []


def test_a_callers_schedules_are_bounded_in_rate_and_number(make_system, tmp_path):
    config = SchedulerConfig(caller_min_interval=1.0, max_schedules_per_caller=3)
    rules = [*RULES, Rule(principal="eve", agent="*", message="*")]
    system = make_system(specs(Inbox(), rules, config), data_dir=str(tmp_path))
    fast = schedule(system, MALLORY, name="f", target="recorder", message=note("x"), every=0.01)
    assert isinstance(fast, InvalidSchedule) and fast.field == "every"
    for n in range(3):
        reply = schedule(
            system, MALLORY, name=f"m{n}", target="recorder", message=note("x"), at=1e10
        )
        assert isinstance(reply, Scheduled)
    over = schedule(system, MALLORY, name="m3", target="recorder", message=note("x"), at=1e10)
    assert isinstance(over, TooManySchedules) and "'mallory' holds 3" in over.detail
    # Replacing one of its own is no new schedule; other callers and trusted code have their own.
    again = schedule(system, MALLORY, name="m0", target="recorder", message=note("y"), at=1e10)
    assert isinstance(again, Scheduled)
    eve = schedule(system, Caller("eve"), name="e", target="recorder", message=note("x"), at=1e10)
    assert isinstance(eve, Scheduled)
    trusted = schedule(system, None, name="t", target="recorder", message=note("x"), every=0.01)
    assert isinstance(trusted, Scheduled)


# -- helpers --------------------------------------------------------------------------


def _callers(tmp_path):
    with sqlite3.connect(database_path(tmp_path, "scheduler")) as db:
        return db.execute("SELECT name, caller FROM reminders").fetchall()
