"""The pubsub agent's topics: their in-memory state and its tables.

The tables hold subscriptions and sequence reservations (listeners are never
persisted).

Used from the agent's thread only (the connection is per thread). Every
change is its own committed transaction, done before the agent replies; a
failed commit raises :class:`~vibe_actors.store._database.StoreError` and
nothing of it is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vibe_actors.store import Schema, Store

__all__ = ["PubSubStore", "Topic"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (
    topic TEXT NOT NULL, subscriber TEXT NOT NULL, PRIMARY KEY (topic, subscriber));
CREATE TABLE IF NOT EXISTS sequences (topic TEXT PRIMARY KEY, reserved INTEGER NOT NULL);
"""


@dataclass(slots=True)
class Topic:
    """One topic's state in the agent (its thread only)."""

    seq: int = 0
    reserved: int = 0  #: numbers up to this one are reserved in the database
    subscribers: set[str] = field(default_factory=set)
    listeners: set[str] = field(default_factory=set)


class PubSubStore(Store):
    """Opens (or creates) ``path``; raises ``StoreError`` if it cannot."""

    schema = Schema(_SCHEMA)

    def sequences(self) -> list[tuple[str, int]]:
        """(topic, reserved): the numbers up to ``reserved`` may have been used."""
        return list(self._db.execute("SELECT topic, reserved FROM sequences"))

    def subscriptions(self) -> list[tuple[str, str]]:
        """(topic, subscriber) pairs."""
        return list(self._db.execute("SELECT topic, subscriber FROM subscriptions"))

    def _write(self, sql: str, *args: object) -> None:
        with self._db.transaction() as db:
            db.execute(sql, args)

    def subscribe(self, topic: str, subscriber: str) -> None:
        self._write("INSERT OR IGNORE INTO subscriptions VALUES (?, ?)", topic, subscriber)

    def unsubscribe(self, topic: str, subscriber: str) -> None:
        self._write("DELETE FROM subscriptions WHERE topic=? AND subscriber=?", topic, subscriber)

    def forget(self, subscriber: str) -> None:
        """Remove every subscription of ``subscriber``."""
        self._write("DELETE FROM subscriptions WHERE subscriber=?", subscriber)

    def reserve(self, topic: str, reserved: int) -> None:
        self._write("INSERT OR REPLACE INTO sequences VALUES (?, ?)", topic, reserved)
