"""Scheduler: protocol, errors, intervals, cancel, timers vs reminders across restarts,
missed-fire-once, corruption."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from vibe_actors import (
    ActorSystem,
    Agent,
    Message,
    Ping,
    SupervisorSpec,
    Unavailable,
    WorkerSpec,
    handler,
)
from vibe_actors.agents.quota import Acquire, Granted, Quota
from vibe_actors.agents.scheduler import (
    Cancel,
    Cancelled,
    InvalidSchedule,
    InvalidScheduledMessage,
    List,
    NotFound,
    Schedule,
    Scheduled,
    Scheduler,
    SchedulerConfig,
    TooManySchedules,
    UnknownTarget,
)
from vibe_actors.store._sqlite import database_path

from tests.conftest import wait_until
from tests.postgres import agent_sql

DEADLINE = 10.0


# -- the target -------------------------------------------------------------------------


class Note(Message):
    text: str
    n: int = 0


class Inbox:
    """What the recorder received (message, sender), safe to read from the test thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.items: list[tuple[Note, str | None]] = []

    def add(self, item: tuple[Note, str | None]) -> None:
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()

    def texts(self) -> list[str]:
        with self._cond:
            return [note.text for note, _ in self.items]

    def count(self, text: str) -> int:
        return self.texts().count(text)

    def wait_for(self, text: str, count: int = 1, timeout: float = DEADLINE) -> None:
        with self._cond:
            ok = self._cond.wait_for(
                lambda: sum(n.text == text for n, _ in self.items) >= count, timeout
            )
        assert ok, f"{text!r} x{count} not received in {timeout}s; got {self.texts()}"


class Recorder(Agent):
    """Records every Note (its config is the test's Inbox)."""

    @handler
    def note(self, msg: Note) -> None:
        env = self.envelope
        self.config.add((msg, env.sender if env is not None else None))


def note(text: str, n: int = 0) -> dict[str, Any]:
    return {"type": "Note", "text": text, "n": n}


def specs(inbox: Inbox, config: SchedulerConfig | None = None) -> SupervisorSpec:
    # The target comes first, so reminders due at start find it (see the docstring).
    return SupervisorSpec(
        name="root",
        children=(
            WorkerSpec(name="recorder", agent=Recorder, config=inbox),
            WorkerSpec(name="scheduler", agent=Scheduler, config=config),
        ),
        intensity=5,
        period=30.0,
    )


def call(system: ActorSystem, msg: Any) -> Any:
    return system.ref("scheduler").ask_future(msg, timeout=5.0).wait()


def drained(system: ActorSystem) -> None:
    """Everything the scheduler told the recorder so far has been handled."""
    call(system, List())
    system.ask("recorder", Ping())


def sample(system: ActorSystem, metric: str, **labels: str) -> float | None:
    return system.registry.get_sample_value(metric, {"agent": "scheduler", **labels})


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


# -- protocol -----------------------------------------------------------------------------


def test_an_at_schedule_fires_once_with_the_scheduler_as_sender(
    make_system, tmp_path, store, inbox
):
    system = make_system(specs(inbox), data_dir=str(tmp_path), store=store)
    at = time.time() + 0.05
    reply = call(system, Schedule(name="once", target="recorder", message=note("hi", 7), at=at))
    assert reply == Scheduled(name="once", next_at=at, durable=True)
    inbox.wait_for("hi")
    drained(system)
    assert inbox.items == [(Note(text="hi", n=7), "scheduler")]
    assert call(system, List()).items == []  # removed after firing
    assert _rows(tmp_path, store) == []  # from the database too
    assert sample(system, "vibe_scheduler_fired_total", kind="reminder", outcome="delivered") == 1
    assert sample(system, "vibe_scheduler_schedules", kind="reminder") == 0


def test_an_interval_fires_repeatedly_until_cancelled(make_system, tmp_path, store, inbox):
    system = make_system(specs(inbox), data_dir=str(tmp_path), store=store)
    started = time.time()
    reply = call(
        system,
        Schedule(name="tick", target="recorder", message=note("tick"), every=0.02, durable=False),
    )
    assert reply.durable is False and started + 0.02 <= reply.next_at <= time.time() + 0.02
    inbox.wait_for("tick", 3)
    assert call(system, Cancel(name="tick")) == Cancelled(name="tick")
    drained(system)
    ticks = inbox.count("tick")
    # A probe due after many more intervals: when it arrives, no tick may have followed.
    call(system, Schedule(name="probe", target="recorder", message=note("probe"), every=0.2))
    inbox.wait_for("probe")
    assert inbox.count("tick") == ticks
    assert isinstance(call(system, Cancel(name="tick")), NotFound)


def test_at_and_every_together_start_at_at(make_system, tmp_path, store, inbox):
    system = make_system(specs(inbox), data_dir=str(tmp_path), store=store)
    at = time.time() + 0.05
    call(system, Schedule(name="both", target="recorder", message=note("b"), at=at, every=0.05))
    inbox.wait_for("b", 3)
    info = call(system, List()).items[0]
    assert info.fired >= 3 and info.every == 0.05 and info.next_at > at


def test_an_at_in_the_past_fires_at_once(make_system, tmp_path, store, inbox):
    system = make_system(specs(inbox), data_dir=str(tmp_path), store=store)
    call(system, Schedule(name="late", target="recorder", message=note("late"), at=1.0))
    inbox.wait_for("late")


def test_list_describes_every_schedule_soonest_first(make_system, tmp_path, store, inbox):
    system = make_system(specs(inbox), data_dir=str(tmp_path), store=store)
    now = time.time()
    call(system, Schedule(name="b", target="recorder", message=note("x"), at=now + 200))
    call(
        system,
        Schedule(name="a", target="recorder", message=note("y"), every=100, durable=False),
    )
    items = call(system, List()).items
    assert [(i.name, i.target, i.message_type, i.durable, i.fired) for i in items] == [
        ("a", "recorder", "Note", False, 0),
        ("b", "recorder", "Note", True, 0),
    ]
    assert items[0].every == 100 and items[1].every is None
    assert sample(system, "vibe_scheduler_schedules", kind="reminder") == 1
    assert sample(system, "vibe_scheduler_schedules", kind="timer") == 1


def test_rescheduling_a_name_replaces_it(make_system, tmp_path, store, inbox):
    system = make_system(specs(inbox), data_dir=str(tmp_path), store=store)
    far = time.time() + 3600
    call(system, Schedule(name="job", target="recorder", message=note("old"), at=far))
    assert _rows(tmp_path, store) == ["job"]
    call(
        system,
        Schedule(name="job", target="recorder", message=note("new"), at=1.0, durable=False),
    )
    inbox.wait_for("new")
    drained(system)
    assert inbox.texts() == ["new"]
    assert _rows(tmp_path, store) == []  # the reminder it replaced is gone from the database
    assert call(system, List()).items == []


def test_thousands_of_schedules_share_one_timer(make_system, tmp_path, store, inbox):
    system = make_system(specs(inbox), data_dir=str(tmp_path), store=store)

    def schedule_all(at: float) -> None:
        for n in range(2000):
            message = note("many", n)
            call(system, Schedule(name=f"s{n}", target="recorder", message=message, at=at,
                                  durable=False))  # fmt: skip

    schedule_all(time.time() + 3600)
    # One runtime timer, not one per schedule (and on a shared store the periodic sync).
    assert system._timers.pending() == (2 if store else 1)
    schedule_all(time.time())  # replaces each one: now due, each fires once
    inbox.wait_for("many", 2000)
    assert sorted(n.n for n, _ in inbox.items) == list(range(2000))


# -- errors -------------------------------------------------------------------------------


def test_unknown_target_and_unacceptable_messages(make_system, tmp_path, store, inbox):
    system = make_system(specs(inbox), data_dir=str(tmp_path), store=store)
    unknown = call(system, Schedule(name="x", target="nobody", message=note("a"), every=1))
    assert isinstance(unknown, UnknownTarget) and unknown.http_status == 404
    assert unknown.target == "nobody"
    for message in (
        {"type": "Nope"},
        {"type": "Note"},  # text missing
        {"type": "Note", "text": 3},
        {"type": "Note", "text": "t", "colour": "red"},
        {"text": "untagged"},
    ):
        bad = call(system, Schedule(name="x", target="recorder", message=message, every=1))
        assert isinstance(bad, InvalidScheduledMessage), message
        assert bad.http_status == 422 and bad.target == "recorder" and bad.detail
    assert call(system, List()).items == []


def test_timing_errors_and_the_limit(make_system, tmp_path, store, inbox):
    config = SchedulerConfig(max_schedules=2, min_interval=0.5)
    system = make_system(specs(inbox, config), data_dir=str(tmp_path), store=store)
    neither = call(system, Schedule(name="x", target="recorder", message=note("a")))
    assert isinstance(neither, InvalidSchedule) and neither.field == "at"
    fast = call(system, Schedule(name="x", target="recorder", message=note("a"), every=0.1))
    assert isinstance(fast, InvalidSchedule) and fast.field == "every"
    endless = call(
        system, Schedule(name="x", target="recorder", message=note("a"), at=float("inf"))
    )
    assert isinstance(endless, InvalidSchedule) and endless.field == "at"
    for name in ("one", "two"):
        call(system, Schedule(name=name, target="recorder", message=note("a"), every=60))
    full = call(system, Schedule(name="three", target="recorder", message=note("a"), every=60))
    assert isinstance(full, TooManySchedules) and full.http_status == 429 and full.limit == 2
    again = call(system, Schedule(name="two", target="recorder", message=note("b"), every=60))
    assert isinstance(again, Scheduled)  # replacing does not need room


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        (Schedule(name="", target="recorder", message=note("a"), every=1), "name"),
        (Schedule(name="x", target="", message=note("a"), every=1), "target"),
        (Schedule(name="x", target="recorder", message=note("a"), every=-1.0), "every"),
        (Cancel(name=""), "name"),
    ],
)
def test_bad_fields_built_in_process_get_a_typed_422(
    make_system, tmp_path, store, inbox, msg, field
):
    system = make_system(
        specs(inbox), data_dir=str(tmp_path), store=store, serialize_messages=False
    )
    reply = call(system, msg)
    assert isinstance(reply, InvalidSchedule) and reply.field == field


def test_config_is_validated():
    with pytest.raises(ValueError, match="max_schedules"):
        SchedulerConfig(max_schedules=0)
    with pytest.raises(ValueError, match="min_interval"):
        SchedulerConfig(min_interval=float("nan"))


# -- restarts -----------------------------------------------------------------------------


def _schedule_both(system: ActorSystem) -> None:
    far = time.time() + 3600
    call(system, Schedule(name="rem", target="recorder", message=note("r"), at=far))
    call(
        system,
        Schedule(name="tim", target="recorder", message=note("t"), at=far, durable=False),
    )


def test_a_scheduler_crash_loses_timers_and_keeps_reminders(make_system, tmp_path, store, inbox):
    system = make_system(specs(inbox), data_dir=str(tmp_path), store=store)
    _schedule_both(system)
    call(system, Schedule(name="r2", target="recorder", message=note("r2"), every=0.05))
    inbox.wait_for("r2", 2)
    system.inject_fault("scheduler", "crash")
    wait_until(
        lambda: (
            system.cell("scheduler").incarnation == 2 and system.status("scheduler") == "running"
        ),
        DEADLINE,
        "the scheduler's restart",
    )
    items = {i.name: i for i in call(system, List()).items}
    assert set(items) == {"rem", "r2"} and items["r2"].fired >= 2
    assert sample(system, "vibe_scheduler_schedules", kind="timer") == 0
    fired = inbox.count("r2")
    inbox.wait_for("r2", fired + 2)  # the reloaded reminder keeps firing


def test_a_new_system_keeps_reminders_only(make_system, tmp_path, store, inbox):
    first = make_system(specs(inbox), data_dir=str(tmp_path), store=store)
    _schedule_both(first)
    call(first, Schedule(name="soon", target="recorder", message=note("soon"), every=0.05))
    first.shutdown()
    second_inbox = Inbox()
    second = make_system(specs(second_inbox), data_dir=str(tmp_path), store=store)
    assert sorted(i.name for i in call(second, List()).items) == ["rem", "soon"]
    second_inbox.wait_for("soon", 2)


def test_missed_reminders_fire_once_at_start(make_system, tmp_path, store, inbox):
    first = make_system(specs(inbox), data_dir=str(tmp_path), store=store)
    call(first, Schedule(name="hourly", target="recorder", message=note("h"), every=3600))
    far = time.time() + 3600
    call(first, Schedule(name="once", target="recorder", message=note("o"), at=far))
    first.shutdown()
    # Down for three hours: three intervals of "hourly" and the time of "once" passed.
    agent_sql(tmp_path, store, "scheduler", "UPDATE reminders SET next_at = ?", (
        time.time() - 3 * 3600,
    ))  # fmt: skip
    second_inbox = Inbox()
    started = time.time()
    second = make_system(specs(second_inbox), data_dir=str(tmp_path), store=store)
    second_inbox.wait_for("h")
    second_inbox.wait_for("o")
    drained(second)
    assert sorted(second_inbox.texts()) == ["h", "o"]  # once each, not once per interval
    (hourly,) = call(second, List()).items
    assert hourly.name == "hourly" and hourly.fired == 1
    assert started + 3600 <= hourly.next_at <= time.time() + 3600  # resumes from now
    assert _rows(tmp_path, store) == ["hourly"]
    assert _next_at(tmp_path, "hourly", store) == hourly.next_at  # the firing was recorded


def test_a_reloaded_reminder_the_target_no_longer_accepts_is_dropped(
    make_system, tmp_path, store, inbox
):
    first = make_system(specs(inbox), data_dir=str(tmp_path), store=store)
    far = time.time() + 3600
    call(first, Schedule(name="stale", target="recorder", message=note("s"), at=far))
    call(first, Schedule(name="fine", target="recorder", message=note("f"), at=far))
    first.shutdown()
    # As if the target's protocol changed while the process was down.
    gone = "UPDATE reminders SET message = '{\"type\": \"Gone\"}' WHERE name = 'stale'"
    agent_sql(tmp_path, store, "scheduler", gone)
    agent_sql(tmp_path, store, "scheduler", "UPDATE reminders SET next_at = 1.0")
    second_inbox = Inbox()
    second = make_system(specs(second_inbox), data_dir=str(tmp_path), store=store)
    second_inbox.wait_for("f")
    drained(second)
    assert second_inbox.texts() == ["f"]
    assert call(second, List()).items == [] and _rows(tmp_path, store) == []
    undeliverable = sample(
        second, "vibe_scheduler_fired_total", kind="reminder", outcome="undeliverable"
    )
    assert undeliverable == 1


# -- corruption -----------------------------------------------------------------------------


def test_a_corrupt_database_degrades_only_the_scheduler(make_system, tmp_path, inbox):
    path = database_path(tmp_path, "scheduler")
    path.write_bytes(b"garbage, not a database " * 300)
    root = SupervisorSpec(
        name="root", children=(*specs(inbox).children, WorkerSpec(name="quota", agent=Quota))
    )
    system = make_system(root, data_dir=str(tmp_path))
    reply = call(system, List())
    assert isinstance(reply, Unavailable) and str(path) in reply.reason
    assert system.cell("scheduler").degraded is not None
    assert isinstance(system.ask("quota", Acquire(agent="kv")), Granted)
    system.tell("recorder", Note(text="direct"))
    inbox.wait_for("direct")


# -- helpers --------------------------------------------------------------------------------


def _rows(data_dir, store: str = "") -> list[str]:
    rows = agent_sql(data_dir, store, "scheduler", "SELECT name FROM reminders ORDER BY name")
    return [str(r[0]) for r in rows]


def _next_at(data_dir, name: str, store: str = "") -> float:
    statement = "SELECT next_at FROM reminders WHERE name = ?"
    return float(agent_sql(data_dir, store, "scheduler", statement, (name,))[0][0])  # type: ignore[arg-type]
