"""The scheduler on a shared store: replicas that hold the same reminders fire each once.

Every replica's scheduler loads every reminder, so any of them can fire it
(and one that dies leaves the others to). Two rules make each due time fire
once across replicas:

* **claim before telling** (:func:`claim`): a replica fires a reminder only
  if it moves the stored due time it last read on to the next one (or
  deletes an ``at``-only reminder) in one conditional write; the replica that
  loses finds the reminder moved on (or gone) and takes the stored row
  instead. So a fire is at most once per due time: a replica that dies
  between its claim and its tell loses that one fire.
* **sync** (:func:`sync`): every ``sync_interval`` seconds each replica reads
  the table again and takes what other replicas scheduled, replaced,
  cancelled or fired.

Timers (``durable=False``) stay each replica's own, as on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable

from vibe_actors.agents.scheduler._store import Entry, ReminderRow, ScheduleBook, SchedulerStore

__all__ = ["claim", "sync"]


def claim(store: SchedulerStore, book: ScheduleBook, entry: Entry, following: float | None) -> bool:
    """Whether this replica fires ``entry`` now (its stored due time moved on to
    ``following``); if not, ``book`` holds the reminder as stored now. Raises StoreError."""
    assert entry.stored_next_at is not None  # a reminder read or written by this replica
    if store.claim(entry.name, entry.stored_next_at, following):
        entry.stored_next_at = following
        return True
    row = store.get(entry.name)
    if book.get(entry.name) is entry:
        if row is None:
            book.remove(entry)
        else:
            book.put(Entry.from_row(row, next_at=row.next_at))
    return False


def sync(book: ScheduleBook, rows: Iterable[ReminderRow], now: float) -> int:
    """Make ``book``'s reminders the stored ``rows`` (timers kept); returns how many changed.

    A reminder whose due time has passed is due now (once: see :func:`claim`).
    """
    stored = {row.name: row for row in rows}
    changed = 0
    for entry in list(book):
        if entry.durable and entry.name not in stored:
            book.remove(entry)
            changed += 1
    for row in stored.values():
        held = book.get(row.name)
        if held is not None and held.durable and _same(held, row):
            continue
        book.put(Entry.from_row(row, next_at=max(row.next_at, now)))
        changed += 1
    return changed


def _same(entry: Entry, row: ReminderRow) -> bool:
    return (entry.stored_next_at, entry.target, entry.message, entry.at, entry.every) == (
        row.next_at, row.target, row.message, row.at, row.every,
    )  # fmt: skip
