"""The registry's tables: dynamic registrations and subscriptions.

Used from the registry agent's thread only (the connection is per thread).
Every change is its own committed transaction; a failed commit raises
:class:`~vibe_actors.store._database.StoreError` and nothing of it is kept.
Static entries (from the configuration) are never written.
"""

from __future__ import annotations

import json

from vibe_actors.agents.registry._index import Record
from vibe_actors.store import Schema, Store

__all__ = ["RegistryStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS registrations (
    name TEXT PRIMARY KEY, capabilities TEXT NOT NULL, registered_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS subscriptions (
    capability TEXT NOT NULL, subscriber TEXT NOT NULL, PRIMARY KEY (capability, subscriber));
"""


class RegistryStore(Store):
    """Opens (or creates) ``path``; raises ``StoreError`` if it cannot."""

    schema = Schema(_SCHEMA)

    def registrations(self) -> dict[str, Record]:
        return {
            name: Record(tuple(json.loads(caps)), at, static=False)
            for name, caps, at in self._db.execute("SELECT * FROM registrations")
        }

    def subscriptions(self) -> list[tuple[str, str]]:
        """(capability, subscriber) pairs."""
        return list(self._db.execute("SELECT capability, subscriber FROM subscriptions"))

    def _write(self, sql: str, *args: object) -> None:
        with self._db.transaction() as db:
            db.execute(sql, args)

    def register(self, name: str, record: Record) -> None:
        self._write(
            "INSERT OR REPLACE INTO registrations VALUES (?, ?, ?)",
            name,
            json.dumps(record.capabilities),
            record.registered_at,
        )

    def unregister(self, name: str) -> None:
        self._write("DELETE FROM registrations WHERE name=?", name)

    def subscribe(self, capability: str, subscriber: str) -> None:
        self._write("INSERT OR IGNORE INTO subscriptions VALUES (?, ?)", capability, subscriber)

    def unsubscribe(self, capability: str, subscriber: str) -> None:
        self._write(
            "DELETE FROM subscriptions WHERE capability=? AND subscriber=?", capability, subscriber
        )

    def forget(self, subscriber: str) -> None:
        """Remove every subscription of ``subscriber``."""
        self._write("DELETE FROM subscriptions WHERE subscriber=?", subscriber)
