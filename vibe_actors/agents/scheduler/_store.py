"""The scheduler's book of schedules (in memory) and its table of reminders (durable).

:class:`ScheduleBook` holds every schedule by name and in a heap by due time
(replaced and cancelled schedules leave stale heap items, skipped by token
and compacted now and then), so the agent needs one runtime timer for the
earliest due time however many schedules it holds.

:class:`SchedulerStore`: one row per reminder: its target, the message as a JSON object, the
schedule (``at``/``every``), when it is next due (``next_at``, wall-clock
seconds) and how often it has fired. Timers (non-durable schedules) never
reach this table. Every method that writes runs one transaction and is
durable when it returns.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

from vibe_actors import Caller
from vibe_actors.store import Schema, Store

__all__ = ["Entry", "ReminderRow", "ScheduleBook", "SchedulerStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS reminders (
    name TEXT PRIMARY KEY,
    target TEXT NOT NULL,
    message TEXT NOT NULL,
    at REAL,
    every REAL,
    next_at REAL NOT NULL,
    fired INTEGER NOT NULL DEFAULT 0,
    caller TEXT
) WITHOUT ROWID;
"""
#: The same table on PostgreSQL (migration 1).
POSTGRES_V1 = """
CREATE TABLE reminders (
    name TEXT PRIMARY KEY,
    target TEXT NOT NULL,
    message TEXT NOT NULL,
    at DOUBLE PRECISION,
    every DOUBLE PRECISION,
    next_at DOUBLE PRECISION NOT NULL,
    fired BIGINT NOT NULL DEFAULT 0,
    caller TEXT,
    traceparent TEXT
);
"""
_COLUMNS = "name, target, message, at, every, next_at, fired, caller, traceparent"
#: A reminder stored before callers were recorded is delivered as an anonymous caller's:
#: it may have come from any request, so it gets no more authority than the least one.
_LEGACY_CALLER = ("reminders", "caller", "TEXT DEFAULT '{\"principal\":null}'")
#: Version 2: the W3C traceparent of the span that scheduled the reminder (tracing on), so
#: that its deliveries, after a restart too, join that trace.
_TRACEPARENT = "ALTER TABLE reminders ADD COLUMN traceparent TEXT;"
_encode_caller = msgspec.json.Encoder().encode
_decode_caller = msgspec.json.Decoder(Caller).decode


@dataclass(frozen=True, slots=True)
class ReminderRow:
    name: str
    target: str
    message: dict[str, Any]
    at: float | None
    every: float | None
    next_at: float
    fired: int
    #: Who it was scheduled for (None: trusted code); delivered on that caller's behalf.
    caller: Caller | None = None
    #: The trace it was scheduled in (W3C traceparent; None: tracing was off, or no trace).
    traceparent: str | None = None


@dataclass(slots=True)
class Entry:
    """One schedule: a timer (``durable=False``) or a reminder."""

    name: str
    target: str
    message: dict[str, Any]
    at: float | None
    every: float | None
    durable: bool
    next_at: float
    fired: int = 0
    token: int = 0
    #: The decoded message; None until known (a reloaded reminder decodes at first fire).
    decoded: Any = None
    caller: Caller | None = None
    #: The trace it was scheduled in (W3C traceparent; None: tracing was off, or no trace).
    traceparent: str | None = None
    #: The due time in the database as this replica last read or wrote it (a shared store
    #: fires a reminder only by moving exactly this due time on: see ``claim``).
    stored_next_at: float | None = None

    @property
    def kind(self) -> str:
        return "reminder" if self.durable else "timer"

    @classmethod
    def from_row(cls, row: ReminderRow, next_at: float) -> Entry:
        return cls(
            name=row.name, target=row.target, message=row.message, at=row.at,
            every=row.every, durable=True, next_at=next_at, fired=row.fired,
            caller=row.caller, traceparent=row.traceparent, stored_next_at=row.next_at,
        )  # fmt: skip

    def row(self) -> ReminderRow:
        return ReminderRow(
            name=self.name, target=self.target, message=self.message, at=self.at,
            every=self.every, next_at=self.next_at, fired=self.fired, caller=self.caller,
            traceparent=self.traceparent,
        )  # fmt: skip


class ScheduleBook:
    """Every schedule by name, and a heap of (next_at, token, name) by due time."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._tokens = itertools.count(1)
        #: Schedules held per kind ("timer", "reminder").
        self.held = {"timer": 0, "reminder": 0}

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def get(self, name: str) -> Entry | None:
        return self._entries.get(name)

    def put(self, entry: Entry) -> None:
        """Add ``entry`` (or re-queue it at its new ``next_at``), replacing its name's."""
        previous = self._entries.get(entry.name)
        if previous is not None:
            self.held[previous.kind] -= 1
        self.held[entry.kind] += 1
        entry.token = next(self._tokens)  # any older heap item of this name is now stale
        self._entries[entry.name] = entry
        heapq.heappush(self._heap, (entry.next_at, entry.token, entry.name))
        if len(self._heap) > 2 * len(self._entries) + 1024:
            self._heap = [(e.next_at, e.token, e.name) for e in self._entries.values()]
            heapq.heapify(self._heap)

    def remove(self, entry: Entry) -> None:
        del self._entries[entry.name]
        self.held[entry.kind] -= 1

    def head(self) -> float | None:
        """The earliest due time (None: nothing scheduled)."""
        heap = self._heap
        while heap:
            next_at, token, name = heap[0]
            entry = self._entries.get(name)
            if entry is not None and entry.token == token:
                return next_at
            heapq.heappop(heap)
        return None

    def pop_due(self, horizon: float) -> list[Entry]:
        """Take the schedules due at ``horizon`` off the heap (they stay in the book)."""
        due = []
        while (head := self.head()) is not None and head <= horizon:
            due.append(self._entries[heapq.heappop(self._heap)[2]])
        return due


class SchedulerStore(Store):
    """The reminders of one scheduler agent; used from the agent's thread only."""

    schema = Schema(
        SCHEMA, upgrades=(_TRACEPARENT,), legacy_columns=(_LEGACY_CALLER,), postgres=(POSTGRES_V1,)
    )

    def load(self) -> list[ReminderRow]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM reminders").fetchall()  # nosec B608
        return [_row(*row) for row in rows]

    def get(self, name: str) -> ReminderRow | None:
        """The reminder ``name`` as stored now, None if there is none."""
        found = self._db.execute(
            f"SELECT {_COLUMNS} FROM reminders WHERE name = ?",  # nosec B608
            (name,),
        ).fetchone()
        return None if found is None else _row(*found)

    def claim(self, name: str, due: float, following: float | None) -> bool:
        """Take the fire of ``name`` due at ``due``: move it on to ``following`` (None: it
        fired for the last time, delete it), only if it is still due at ``due``.

        False: another replica fired it (or it was replaced or cancelled) first. What
        makes a reminder fire once per due time across replicas; raises StoreError.
        """
        with self._db.transaction() as db:
            if following is None:
                cursor = db.execute(
                    "DELETE FROM reminders WHERE name = ? AND next_at = ?", (name, due)
                )
            else:
                cursor = db.execute(
                    "UPDATE reminders SET next_at = ?, fired = fired + 1"
                    " WHERE name = ? AND next_at = ?",
                    (following, name, due),
                )
        return cursor.rowcount == 1

    def save(self, row: ReminderRow) -> None:
        """Insert or replace the reminder ``row.name``."""
        with self._db.transaction() as db:
            db.execute(
                f"INSERT INTO reminders ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"  # nosec B608
                " ON CONFLICT (name) DO UPDATE SET target = excluded.target,"
                " message = excluded.message, at = excluded.at, every = excluded.every,"
                " next_at = excluded.next_at, fired = excluded.fired, caller = excluded.caller,"
                " traceparent = excluded.traceparent",
                (
                    row.name,
                    row.target,
                    msgspec.json.encode(row.message).decode(),
                    row.at,
                    row.every,
                    row.next_at,
                    row.fired,
                    None if row.caller is None else _encode_caller(row.caller).decode(),
                    row.traceparent,
                ),
            )

    def delete(self, name: str) -> bool:
        with self._db.transaction() as db:
            cursor = db.execute("DELETE FROM reminders WHERE name = ?", (name,))
        return cursor.rowcount > 0

    def record_fires(
        self, advanced: Iterable[tuple[str, float, int]], finished: Iterable[str]
    ) -> None:
        """One step of firing: ``advanced`` (name, next_at, fired) move on, ``finished`` go."""
        with self._db.transaction() as db:
            db.executemany(
                "UPDATE reminders SET next_at = ?, fired = ? WHERE name = ?",
                [(next_at, fired, name) for name, next_at, fired in advanced],
            )
            db.executemany("DELETE FROM reminders WHERE name = ?", [(name,) for name in finished])


def _row(
    name: str, target: str, message: str, at: Any, every: Any, next_at: float, fired: int,
    caller: str | None, traceparent: str | None,
) -> ReminderRow:  # fmt: skip
    decoded = None if caller is None else _decode_caller(caller)
    return ReminderRow(
        name, target, msgspec.json.decode(message), at, every, next_at, fired, decoded,
        traceparent,
    )  # fmt: skip
