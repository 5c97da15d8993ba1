"""Scheduler: send a message to an agent later, once or repeatedly.

Protocol:

* ``Schedule{name, target, message, at=None, every=None, durable=True}`` ->
  ``Scheduled{name, next_at, durable}``. ``message`` is the tagged JSON
  object of a message ``target`` accepts (``{"type": "Append", ...}``: its
  type's HTTP name, or its wire tag ``ledger.Append``; a reminder keeps the
  HTTP name, so reminders stored before tags were namespaced fire as ever); it
  is checked against the target's protocol now: an unknown target ->
  ``UnknownTarget`` (404), a message it does not accept ->
  ``InvalidScheduledMessage`` (422). Timing: ``at`` only fires once at
  ``at`` (unix seconds); ``every`` only fires every ``every`` seconds, the
  first time ``every`` seconds from now; both fire first at ``at`` and then
  every ``every`` seconds; neither, an ``every`` below ``min_interval`` or a
  non-finite time -> ``InvalidSchedule`` (422). An ``at`` in the past fires
  at once. Scheduling an existing name replaces that schedule (its fired
  count starts again). Beyond ``max_schedules`` a new name gets
  ``TooManySchedules`` (429).
* ``Cancel{name}`` -> ``Cancelled{name}`` or ``NotFound`` (404).
* ``List{}`` -> ``Schedules{items}``, soonest first.

Kinds: ``durable=True`` is a *reminder*: kept in ``<data_dir>/<name>.db``
and reloaded after a restart of the agent or of the process.
``durable=False`` is a *timer*: in memory only, **lost** when the agent
restarts or the process ends.

Authority: a schedule is delivered on behalf of whoever scheduled it. The
caller of ``Schedule`` (the principal of the HTTP request; none for trusted
code) is kept with it (persisted for a reminder), and each delivery is sent
with that caller, so the system's policy decides it as the caller's own
request: a message the caller may not send to ``target`` is refused when
scheduled (``Forbidden``, 403) and, if the policy changed since, denied when
due (a dead letter with reason ``forbidden``, and a ``PolicyDenied`` naming
the principal and this scheduler). Reminders stored before callers were
recorded are delivered as an anonymous caller's. A caller's schedules are
bounded: ``every`` at least ``caller_min_interval`` (1 s) and at most
``max_schedules_per_caller`` (100) held per principal (``InvalidSchedule``
422, ``TooManySchedules`` 429); a delivery to a target whose bounded mailbox
is full is refused by the mailbox (a dead letter, counted), never queued
without bound.

Delivery: when due, the message is told to the target with the scheduler
as sender; the scheduler does not wait for or retry anything. A target that
is restarting, stopped or unknown at that moment turns the message into a
dead letter (the runtime's rule); the schedule still counts as fired. An
``at``-only schedule is removed once it fired (a reminder's row is deleted
in the same step). An interval keeps a fixed rate (due times ``t``,
``t+every``, ...) but never bursts to catch up: if a due time has already
passed when the previous one fires, the next is ``every`` from now.

Replicas (``store: postgresql://...``): every replica's scheduler of this
name holds the same reminders, reads what the others wrote every
``sync_interval`` seconds, and fires a reminder only by moving its stored due
time on in one conditional write, so each due time fires once across
replicas (at most once: a replica that dies between that write and the tell
loses that fire), and a replica that dies leaves its reminders to the others
(see :mod:`vibe_actors.agents.scheduler._shared`). Timers stay per replica.

Missed while down: on start, every reminder whose time passed while the
agent was not running fires **once**, immediately (not once per missed
interval), then resumes its interval from now. A reminder's firing is
recorded in the database after the message was told; if the process dies in
between, that reminder fires again at the next start (at least once). Put
the scheduler after the agents it targets in the tree (or make it
``depends_on`` them) so that reminders due at start find their targets.

All schedules are held in one heap with a single runtime timer set for the
earliest due time, so thousands of schedules cost one timer. A database
that cannot be opened degrades the agent (``Unavailable`` with the reason).
A failing write at run time (disk full, I/O error) is answered
``StorageUnavailable`` (503, naming the file) and changes nothing; the agent
stays up and is reported impaired until a write succeeds again
(:mod:`vibe_actors.store._health`). Fires that could not be recorded
are kept in memory and recorded with the next write that succeeds: until
then a process crash would fire those reminders again (at least once).
"""

# Past ~400 lines only by the docstring above: it is the agent's whole contract (its
# reference page), and the code it describes is about 300 lines.

from __future__ import annotations

import math
import time
from typing import ClassVar

import msgspec

from vibe_actors import Agent, Caller, Forbidden, Message, UnknownAgent, _tracing, handler
from vibe_actors.agents.scheduler._metrics import build_metrics
from vibe_actors.agents.scheduler._shared import claim, sync
from vibe_actors.agents.scheduler._store import Entry, ScheduleBook, SchedulerStore
from vibe_actors.agents.scheduler.protocol import (
    Cancel,
    Cancelled,
    InvalidSchedule,
    InvalidScheduledMessage,
    List,
    NotFound,
    Schedule,
    Scheduled,
    ScheduleInfo,
    SchedulerConfig,
    Schedules,
    TooManySchedules,
    UnknownTarget,
    decode_for,
    invalid_field,
    schedule_info,
    stored_form,
)
from vibe_actors.store import (
    ClosesStore,
    GuardedWrites,
    StorageUnavailable,
    StoreError,
    degrade_for,
    open_store,
)

__all__ = [
    "Cancel",
    "Cancelled",
    "InvalidSchedule",
    "InvalidScheduledMessage",
    "List",
    "NotFound",
    "Schedule",
    "ScheduleInfo",
    "Scheduled",
    "Scheduler",
    "SchedulerConfig",
    "Schedules",
    "TooManySchedules",
    "UnknownTarget",
]

#: A due time may run this late behind the wall clock and still count as due now
#: (the runtime's timers and ``time.time()`` are different clocks).
_SLACK = 0.001


# -- internal -----------------------------------------------------------------------


class _Fire(msgspec.Struct, frozen=True):
    """Fire what is due (a plain Struct: outside the public protocol)."""


class _Sync(msgspec.Struct, frozen=True):
    """Read the reminders other replicas wrote (a shared store only)."""


_KINDS = ("timer", "reminder")


# -- the agent ------------------------------------------------------------------------


class Scheduler(GuardedWrites, ClosesStore, Agent[Schedule | Cancel | List]):
    """Timers and reminders; see the module docstring for the guarantees.

    Protocol: ``Schedule`` -> ``Scheduled | UnknownTarget |
    InvalidScheduledMessage | InvalidSchedule | TooManySchedules | Forbidden``; ``Cancel`` ->
    ``Cancelled | NotFound``; ``List`` -> ``Schedules``.
    """

    Config: ClassVar = SchedulerConfig

    def on_start(self) -> None:
        self._store: SchedulerStore | None = None
        self._book = ScheduleBook()
        self._armed_for: float | None = None
        #: Fires not yet recorded (a write failed): name -> (next_at, fired), or None if done.
        self._unrecorded: dict[str, tuple[float, int] | None] = {}
        metrics = self.system.shared_metrics("scheduler", build_metrics)
        self._fired = metrics.fired
        self._gauges = {k: metrics.schedules.labels(agent=self.name, kind=k) for k in _KINDS}
        try:
            self._store = open_store(SchedulerStore, self)
            rows = self._store.load()
        except StoreError as exc:
            self._close()
            self._count()
            degrade_for(self, exc)
            return
        now = time.time()
        missed = 0
        for row in rows:
            missed += row.next_at <= now
            # Missed while down: due now, once (see the module docstring).
            self._book.put(Entry.from_row(row, next_at=max(row.next_at, now)))
        self._count()
        self.log.info("scheduler_loaded", path=self._store.path, reminders=len(rows), missed=missed)
        # Runtime timers started in on_start could fire before this agent
        # runs (and be dropped), so the first firing is a plain self-message.
        self.ref(self.name).tell(_Fire())
        if self._store.shared:
            self.start_timer("sync", _Sync(), self.config.sync_interval, repeat=True)

    @property
    def _db(self) -> SchedulerStore:
        assert self._store is not None  # a degraded agent never reaches a handler
        return self._store

    def _probe_store_write(self) -> None:
        self._db.probe_write()
        self._record_fires({})  # what could not be recorded before, now

    # -- handlers -----------------------------------------------------------------

    # Over 50 lines by its signature (every reply it may give, for the OpenAPI document) and
    # the Entry it builds field by field; the steps are one check each.
    @handler
    def schedule(
        self, msg: Schedule
    ) -> (
        Scheduled
        | UnknownTarget
        | InvalidScheduledMessage
        | InvalidSchedule
        | TooManySchedules
        | Forbidden
        | StorageUnavailable
    ):
        refused = invalid_field(msg) or self._check_timing(msg)
        if refused is not None:
            return refused
        decoded = self._decode(msg)
        if isinstance(decoded, UnknownTarget | InvalidScheduledMessage):
            return decoded
        caller = self.caller
        message_type = type(decoded).__name__
        denied = self.system.authorize(caller, msg.target, message_type, self.name)
        if denied is not None:
            return Forbidden(agent=msg.target, message_type=message_type, detail=denied)
        previous = self._book.get(msg.name)
        limit = self.config.max_schedules
        if previous is None and len(self._book) >= limit:
            return TooManySchedules(limit=limit, detail=f"{limit} schedules are held already")
        if caller is not None and (over := self._caller_limits(msg, caller, previous)):
            return over
        now = time.time()
        entry = Entry(
            name=msg.name,
            target=msg.target,
            message=stored_form(decoded),  # canonical: HTTP name and defaults filled in
            at=msg.at,
            every=msg.every,
            durable=msg.durable,
            next_at=msg.at if msg.at is not None else now + (msg.every or 0.0),
            decoded=decoded,
            caller=caller,
            traceparent=_tracing.current_traceparent(),
        )
        try:
            if entry.durable:
                self._db.save(entry.row())
                entry.stored_next_at = entry.next_at
            elif previous is not None and previous.durable:
                self._db.delete(msg.name)
        except StoreError as exc:
            return self.write_failed(exc, "Schedule")
        self.write_succeeded()
        self._unrecorded.pop(msg.name, None)  # the saved row (or its deletion) supersedes it
        self._book.put(entry)
        self._count()
        self._arm()
        self.log.info(
            "schedule_set", name=msg.name, target=msg.target, kind=entry.kind,
            next_at=entry.next_at, every=msg.every, replaced=previous is not None,
        )  # fmt: skip
        return Scheduled(name=msg.name, next_at=entry.next_at, durable=msg.durable)

    def _decode(self, msg: Schedule) -> Message | UnknownTarget | InvalidScheduledMessage:
        """The message to schedule, checked against its target's protocol, or the refusal."""
        try:
            return decode_for(self.system, msg.target, msg.message)
        except UnknownAgent:
            return UnknownTarget(target=msg.target, detail=f"no agent named {msg.target!r}")
        except msgspec.ValidationError as exc:
            return InvalidScheduledMessage(
                target=msg.target, detail=f"{msg.target} does not accept this message: {exc}"
            )

    @handler
    def cancel(self, msg: Cancel) -> Cancelled | NotFound | InvalidSchedule | StorageUnavailable:
        refused = invalid_field(msg)
        if refused is not None:
            return refused
        entry = self._book.get(msg.name)
        if entry is None:
            return NotFound(name=msg.name, detail=f"no schedule named {msg.name!r}")
        if entry.durable:
            try:
                self._db.delete(msg.name)
            except StoreError as exc:
                return self.write_failed(exc, "Cancel")
            self.write_succeeded()
            self._unrecorded.pop(msg.name, None)
        self._book.remove(entry)  # its heap item goes stale and is skipped
        self._count()
        self._arm()
        self.log.info("schedule_cancelled", name=msg.name, kind=entry.kind)
        return Cancelled(name=msg.name)

    @handler
    def list_schedules(self, msg: List) -> Schedules:
        items = sorted(self._book, key=lambda e: (e.next_at, e.name))
        return Schedules(items=[schedule_info(e) for e in items])

    @handler
    def _sync(self, msg: _Sync) -> None:
        try:
            rows = self._db.load()
        except StoreError as exc:
            self.read_failed(exc, "sync of reminders")
            return
        if sync(self._book, rows, time.time()):
            self._count()
            self._arm()

    @handler
    def _fire(self, msg: _Fire) -> None:
        self._armed_for = None
        now = time.time()
        due = self._book.pop_due(now + _SLACK)
        if due:
            self._deliver(due, now)
        self._arm()

    # -- mechanics --------------------------------------------------------------------

    def _caller_limits(
        self, msg: Schedule, caller: Caller, previous: Entry | None
    ) -> InvalidSchedule | TooManySchedules | None:
        """The bounds on what a caller may schedule: its interval and its count."""
        config = self.config
        if msg.every is not None and msg.every < config.caller_min_interval:
            return InvalidSchedule(
                field="every",
                detail=f"every must be >= {config.caller_min_interval} for a request's schedule",
            )
        limit = config.max_schedules_per_caller
        held = sum(1 for e in self._book if e.caller == caller)
        if (previous is None or previous.caller != caller) and held >= limit:
            who = "anonymous" if caller.principal is None else repr(caller.principal)
            return TooManySchedules(
                limit=limit, detail=f"{who} holds {limit} schedules already (the most allowed)"
            )
        return None

    def _check_timing(self, msg: Schedule) -> InvalidSchedule | None:
        if msg.at is None and msg.every is None:
            return InvalidSchedule(field="at", detail="give at, every, or both")
        if msg.at is not None and not math.isfinite(msg.at):
            return InvalidSchedule(field="at", detail=f"at must be a finite time, got {msg.at}")
        every = msg.every
        if every is not None and not (math.isfinite(every) and every >= self.config.min_interval):
            return InvalidSchedule(
                field="every",
                detail=f"every must be a finite number >= {self.config.min_interval}, got {every}",
            )
        return None

    def _arm(self) -> None:
        """Point the one runtime timer at the earliest due time (if it moved)."""
        head = self._book.head()
        if head == self._armed_for:
            return
        self._armed_for = head
        if head is None:
            self.cancel_timer("due")
        else:
            self.start_timer("due", _Fire(), max(0.0, head - time.time()))

    def _deliver(self, due: list[Entry], now: float) -> None:
        fires: dict[str, tuple[float, int] | None] = {}
        removed = False
        shared = self._db.shared
        for entry in due:
            following = None
            if entry.every is not None:
                following = entry.next_at + entry.every
                following = following if following > now else now + entry.every
            if shared and entry.durable and not self._claimed(entry, following, now):
                removed = True  # the book changed: count again
                continue
            outcome = self._tell(entry)
            self._fired.labels(agent=self.name, kind=entry.kind, outcome=outcome).inc()
            entry.fired += 1
            if following is None:
                self._book.remove(entry)
                removed = True
                if entry.durable and not shared:
                    fires[entry.name] = None
                continue
            entry.next_at = following
            self._book.put(entry)
            if entry.durable and not shared:
                fires[entry.name] = (entry.next_at, entry.fired)
        if fires or self._unrecorded:
            try:
                self._record_fires(fires)
            except StoreError as exc:
                self.write_failed(exc, "record of fired reminders")
            else:
                self.write_succeeded()
        if removed:
            self._count()

    def _claimed(self, entry: Entry, following: float | None, now: float) -> bool:
        """Whether this replica fires ``entry`` (a shared store); a claim that cannot be
        written retries after ``store_retry_interval`` seconds."""
        try:
            return claim(self._db, self._book, entry, following)
        except StoreError as exc:
            self.write_failed(exc, "claim of a due reminder")
            entry.next_at = now + self.store_retry_interval
            self._book.put(entry)
            return False

    def _record_fires(self, fires: dict[str, tuple[float, int] | None]) -> None:
        """Record ``fires`` and any left unrecorded by a failed write; raises StoreError.

        On failure everything stays in ``_unrecorded`` for the next attempt.
        """
        self._unrecorded.update(fires)
        if not self._unrecorded:
            return
        advanced = [(n, f[0], f[1]) for n, f in self._unrecorded.items() if f is not None]
        finished = [n for n, f in self._unrecorded.items() if f is None]
        self._db.record_fires(advanced, finished)
        self._unrecorded.clear()

    def _tell(self, entry: Entry) -> str:
        if entry.decoded is None:
            try:
                entry.decoded = decode_for(self.system, entry.target, entry.message)
            except (UnknownAgent, msgspec.ValidationError) as exc:
                self.log.error(
                    "schedule_undeliverable", name=entry.name, target=entry.target,
                    error=f"{type(exc).__name__}: {exc}",
                )  # fmt: skip
                return "undeliverable"
        if entry.traceparent is None or not _tracing.ON:
            self.ref(entry.target).tell(entry.decoded, caller=entry.caller)
        else:  # a span of the trace it was scheduled in, the delivery its child
            attributes = {"vibe.schedule": entry.name, "vibe.schedule.fired": entry.fired}
            with _tracing.resumed("scheduler deliver", entry.traceparent, attributes):
                self.ref(entry.target).tell(entry.decoded, caller=entry.caller)
        return "delivered"

    def _count(self) -> None:
        for kind, gauge in self._gauges.items():
            gauge.set(self._book.held[kind])
