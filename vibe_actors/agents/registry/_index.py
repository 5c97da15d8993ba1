"""The registry's in-memory model: entries by name and capability, subscriptions, pending items.

Pure data (no actor calls, no I/O), used from the registry agent's thread
only; the agent does the watching, telling, logging and writing around it.
Rebuilt at every start from the configuration and the store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

__all__ = ["Directory", "Record", "Settled"]


class Record(NamedTuple):
    """A registration: a visible entry, or a pending one."""

    capabilities: tuple[str, ...]
    registered_at: float
    static: bool


class Settled(NamedTuple):
    """What one :meth:`Directory.settle` took out of the pending items."""

    subscribed: list[tuple[str, str]]  #: (capability, subscriber) to admit
    skipped: list[tuple[str, str]]  #: (capability, subscriber) dropped for good
    admitted: list[tuple[str, Record]]  #: entries to put
    dropped: list[str]  #: static entries dropped for good


class Directory:
    """Visible entries, subscriptions, and items whose agent did not exist yet."""

    def __init__(self) -> None:
        self.entries: dict[str, Record] = {}
        self._by_cap: dict[str, set[str]] = {}
        self.subs: dict[str, set[str]] = {}
        self._sub_count = 0  #: pairs in ``subs``
        #: Names absent at start, with what waits for them (entry and/or subscriptions).
        self.pending_entries: dict[str, Record] = {}
        self.pending_subs: set[tuple[str, str]] = set()

    # -- entries --------------------------------------------------------------------

    def held(self) -> int:
        """Names held: visible and pending (the two are disjoint: admitting one moves it)."""
        return len(self.entries) + len(self.pending_entries)

    def holds(self, name: str) -> bool:
        """Whether ``name`` is registered or pending (registering it again adds no name)."""
        return name in self.entries or name in self.pending_entries

    def names(self, capability: str) -> list[str]:
        return sorted(self._by_cap.get(capability, ()))

    def put(self, name: str, record: Record) -> dict[str, list[str]]:
        """Add or replace ``name``; returns the names of every touched capability before."""
        old = self.entries.get(name)
        touched = set(record.capabilities) | set(old.capabilities if old else ())
        before = {cap: self.names(cap) for cap in touched}
        if old is not None:
            for cap in old.capabilities:
                self._by_cap[cap].discard(name)
        self.entries[name] = record
        for cap in record.capabilities:
            self._by_cap.setdefault(cap, set()).add(name)
        return before

    def remove(self, name: str) -> dict[str, list[str]] | None:
        """Remove ``name``; the names of its capabilities before (None: not registered)."""
        record = self.entries.pop(name, None)
        if record is None:
            return None
        before = {cap: self.names(cap) for cap in record.capabilities}
        for cap in record.capabilities:
            names = self._by_cap[cap]
            names.discard(name)
            if not names:
                del self._by_cap[cap]
        return before

    def changes(self, before: dict[str, list[str]]) -> list[tuple[str, list[str], list[str]]]:
        """(capability, names now, its subscribers sorted) for each capability that changed."""
        changed = []
        for cap, names in before.items():
            now = self.names(cap)
            if now != names:
                changed.append((cap, now, sorted(self.subs.get(cap, ()))))
        return changed

    # -- subscriptions --------------------------------------------------------------

    def subscriptions_held(self) -> int:
        """(capability, subscriber) pairs held: visible and pending (disjoint, as names)."""
        return self._sub_count + len(self.pending_subs)

    def subscribe(self, capability: str, subscriber: str) -> None:
        subs = self.subs.setdefault(capability, set())
        if subscriber not in subs:
            subs.add(subscriber)
            self._sub_count += 1

    def unsubscribe(self, capability: str, subscriber: str) -> None:
        subs = self.subs.get(capability)
        if subs is not None and subscriber in subs:
            subs.remove(subscriber)
            self._sub_count -= 1
            if not subs:
                del self.subs[capability]

    def subscribed(self, capability: str, subscriber: str) -> bool:
        return subscriber in self.subs.get(capability, ())

    def capabilities_watched_by(self, subscriber: str) -> list[str]:
        return [c for c, subs in self.subs.items() if subscriber in subs]

    def in_use(self, name: str) -> bool:
        """Whether ``name`` is registered or subscribed (so it must stay watched)."""
        return name in self.entries or any(name in s for s in self.subs.values())

    # -- pending items (agents that did not exist yet) --------------------------------

    def pending_count(self) -> int:
        return len(self.pending_entries) + len(self.pending_subs)

    def settle(self, presence: Callable[[str], str], final: bool) -> Settled:
        """Take out pending items whose agent exists (or, ``final``: all but nothing left).

        A dead agent's items are admitted too (its watch removes them at once);
        once the system runs (``final``) absent static entries and subscribers
        are dropped, and a dynamic entry is admitted whatever its agent's state.
        """
        settled = Settled([], [], [], [])
        for cap, sub in sorted(self.pending_subs):
            if presence(sub) != "absent":
                self.pending_subs.discard((cap, sub))
                settled.subscribed.append((cap, sub))
            elif final:
                self.pending_subs.discard((cap, sub))
                settled.skipped.append((cap, sub))
        for name, record in list(self.pending_entries.items()):
            if presence(name) != "absent" or (final and not record.static):
                del self.pending_entries[name]
                settled.admitted.append((name, record))
            elif final:
                del self.pending_entries[name]
                settled.dropped.append(name)
        return settled
