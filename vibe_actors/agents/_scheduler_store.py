"""The scheduler's SQLite table of reminders (durable schedules).

One row per reminder: its target, the message as a JSON object, the
schedule (``at``/``every``), when it is next due (``next_at``, wall-clock
seconds) and how often it has fired. Timers (non-durable schedules) never
reach this table. Every method that writes runs one ``BEGIN IMMEDIATE``
transaction and is durable when it returns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from vibe_actors.agents._sqlite import open_database, transaction

__all__ = ["ReminderRow", "SchedulerStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS reminders (
    name TEXT PRIMARY KEY,
    target TEXT NOT NULL,
    message TEXT NOT NULL,
    at REAL,
    every REAL,
    next_at REAL NOT NULL,
    fired INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class ReminderRow:
    name: str
    target: str
    message: dict[str, Any]
    at: float | None
    every: float | None
    next_at: float
    fired: int


class SchedulerStore:
    """The reminders of one scheduler agent; used from the agent's thread only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection = open_database(path, SCHEMA)

    def close(self) -> None:
        self._db.close()

    def load(self) -> list[ReminderRow]:
        rows = self._db.execute(
            "SELECT name, target, message, at, every, next_at, fired FROM reminders"
        ).fetchall()
        return [
            ReminderRow(name, target, msgspec.json.decode(message), at, every, next_at, fired)
            for name, target, message, at, every, next_at, fired in rows
        ]

    def save(self, row: ReminderRow) -> None:
        """Insert or replace the reminder ``row.name``."""
        with transaction(self._db, self.path):
            self._db.execute(
                "INSERT OR REPLACE INTO reminders"
                " (name, target, message, at, every, next_at, fired)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    row.name,
                    row.target,
                    msgspec.json.encode(row.message).decode(),
                    row.at,
                    row.every,
                    row.next_at,
                    row.fired,
                ),
            )

    def delete(self, name: str) -> bool:
        with transaction(self._db, self.path):
            cursor = self._db.execute("DELETE FROM reminders WHERE name = ?", (name,))
        return cursor.rowcount > 0

    def record_fires(
        self, advanced: Iterable[tuple[str, float, int]], finished: Iterable[str]
    ) -> None:
        """One step of firing: ``advanced`` (name, next_at, fired) move on, ``finished`` go."""
        with transaction(self._db, self.path):
            self._db.executemany(
                "UPDATE reminders SET next_at = ?, fired = ? WHERE name = ?",
                [(next_at, fired, name) for name, next_at, fired in advanced],
            )
            self._db.executemany(
                "DELETE FROM reminders WHERE name = ?", [(name,) for name in finished]
            )
