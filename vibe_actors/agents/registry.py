"""Registry: the receptionist. Agents are found by capability, not by name.

Protocol:

* ``Register{name, capabilities}`` -> ``Registered`` (replaces the entry's
  capabilities if ``name`` was registered); ``NoSuchAgent`` (404: no running
  agent has that name); ``InvalidRegistration`` (422: empty name or
  capability); ``RegistryNotSaved`` (503).
* ``Unregister{name}`` -> ``Unregistered``; ``NotFound`` (404).
* ``Lookup{name}`` -> ``Registration{name, capabilities, registered_at}``; ``NotFound``.
* ``Find{capability}`` -> ``Found{capability, names}`` (sorted; empty if none).
* ``Subscribe{capability, subscriber}`` -> ``Subscribed{capability, names}``
  (the current set); from then on the ``subscriber`` agent is told
  ``RegistryChanged{capability, names}`` each time that set changes.
  ``NoSuchAgent`` if the subscriber is not running.
* ``Unsubscribe{capability, subscriber}`` -> ``Unsubscribed``; ``NotSubscribed`` (404).

Death: the registry watches every registered agent and every subscriber
(:meth:`vibe_actors.Agent.watch`). When one stops for good its entry and its
subscriptions vanish (and subscribers are told). A restart is not death:
the name stays registered. A ``Terminated`` for an agent that is running
again (re-added by a live reload) is ignored and the agent re-watched.

Static entries (``RegistryConfig.entries``) are registered at every start,
tolerantly: the registry may start before the agents it lists, so an entry
whose agent does not exist yet stays *pending* (invisible to ``Lookup`` and
``Find``) and is re-checked every ``recheck_interval`` seconds until the
system has finished starting; if its agent still does not exist then, the
entry is skipped with the warning ``registry_entry_skipped`` (a subscriber
likewise). A dynamic
registration of the same name overrides a static one; unregistering a
static entry lasts until the registry restarts.

Across its own restart (and a process restart, with the same ``data_dir``):
with ``persist`` (the default) dynamic registrations and subscriptions are
kept in SQLite (``<data_dir>/<name>.db``), written before the reply. A new
incarnation reloads them and watches them again; those whose agent died in
the meantime are removed, and their subscribers told (while the system is
still starting, an agent that does not exist yet is pending, as above).
The first start of an incarnation tells no subscriber of the entries it
reloads (they were there before). With ``persist=False`` a restart rebuilds the registry from the
configuration alone. A database that cannot be opened degrades the agent
(``Unavailable``) instead of failing the system's start.

Metric: ``vibe_registry_entries{agent}`` (visible registrations).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import ClassVar, NamedTuple

import msgspec
from prometheus_client import CollectorRegistry, Gauge

from vibe_actors import (
    ActorSystem,
    Agent,
    AgentStatus,
    ErrorReply,
    Message,
    Terminated,
    UnknownAgent,
    handler,
)
from vibe_actors.agents._metrics import system_metrics
from vibe_actors.agents._sqlite import StoreError, database_path, open_database, transaction

__all__ = [
    "Entry",
    "Find",
    "Found",
    "InvalidRegistration",
    "Lookup",
    "NoSuchAgent",
    "NotFound",
    "NotSubscribed",
    "Register",
    "Registered",
    "Registration",
    "Registry",
    "RegistryChanged",
    "RegistryConfig",
    "RegistryNotSaved",
    "Subscribe",
    "Subscribed",
    "Unregister",
    "Unregistered",
    "Unsubscribe",
    "Unsubscribed",
    "presence",
]


class Entry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A static registration from the configuration."""

    name: str
    capabilities: list[str] = []


class RegistryConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of :class:`Registry`."""

    entries: list[Entry] = []
    persist: bool = True
    #: Seconds between checks for pending agents while the system is starting.
    recheck_interval: float = 0.05

    def __post_init__(self) -> None:
        if self.recheck_interval <= 0:
            raise ValueError("recheck_interval must be > 0")


# -- messages ---------------------------------------------------------------------


class Register(Message):
    name: str
    capabilities: list[str] = []


class Registered(Message):
    name: str
    capabilities: list[str]


class Unregister(Message):
    name: str


class Unregistered(Message):
    name: str


class Lookup(Message):
    name: str


class Registration(Message):
    name: str
    capabilities: list[str]
    registered_at: float  #: wall-clock time (time.time()) of the registration


class Find(Message):
    capability: str


class Found(Message):
    capability: str
    names: list[str]


class Subscribe(Message):
    """Tell ``subscriber`` ``RegistryChanged`` whenever the agents of ``capability`` change."""

    capability: str
    subscriber: str


class Subscribed(Message):
    capability: str
    names: list[str]


class Unsubscribe(Message):
    capability: str
    subscriber: str


class Unsubscribed(Message):
    capability: str
    subscriber: str


class RegistryChanged(Message):
    """Told to subscribers: the agents that now offer ``capability`` (sorted)."""

    capability: str
    names: list[str]


class NoSuchAgent(ErrorReply):
    """No running agent is called ``agent``."""

    agent: str
    http_status: ClassVar[int] = 404


class NotFound(ErrorReply):
    name: str
    http_status: ClassVar[int] = 404


class NotSubscribed(ErrorReply):
    capability: str
    subscriber: str
    http_status: ClassVar[int] = 404


class InvalidRegistration(ErrorReply):
    http_status: ClassVar[int] = 422


class RegistryNotSaved(ErrorReply):
    http_status: ClassVar[int] = 503


class _Recheck(msgspec.Struct, frozen=True):
    """Timer: look again for the agents of pending entries (internal, not forgeable)."""


# -- helpers ------------------------------------------------------------------------


def presence(system: ActorSystem, name: str) -> str:
    """``"alive"`` (running or being restarted), ``"dead"`` (stopped for good) or ``"absent"``."""
    try:
        status = system.status(name)
    except UnknownAgent:
        return "absent"
    return "dead" if status is AgentStatus.STOPPED else "alive"


class _Entry(NamedTuple):
    capabilities: tuple[str, ...]
    registered_at: float
    static: bool


class _Metrics(NamedTuple):
    entries: Gauge


def _build_metrics(registry: CollectorRegistry) -> _Metrics:
    return _Metrics(
        Gauge("vibe_registry_entries", "Visible registrations", ["agent"], registry=registry)
    )


_SCHEMA = """
CREATE TABLE IF NOT EXISTS registrations (
    name TEXT PRIMARY KEY, capabilities TEXT NOT NULL, registered_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS subscriptions (
    capability TEXT NOT NULL, subscriber TEXT NOT NULL, PRIMARY KEY (capability, subscriber));
"""


def _empty(**fields: str) -> str | None:
    for field, value in fields.items():
        if not value:
            return f"the {field} must not be empty"
    return None


# -- the agent -------------------------------------------------------------------------


class Registry(Agent):
    """Capability registry with death-watch (see the module docstring for the contract)."""

    Config: ClassVar = RegistryConfig

    def on_start(self) -> None:
        self._metrics = system_metrics(self.system, "registry", _build_metrics)
        self._entries: dict[str, _Entry] = {}
        self._by_cap: dict[str, set[str]] = {}
        self._subs: dict[str, set[str]] = {}
        #: Names absent at start, with what waits for them (entry and/or subscriptions).
        self._pending_entries: dict[str, _Entry] = {}
        self._pending_subs: set[tuple[str, str]] = set()
        self._db: sqlite3.Connection | None = None
        self._path: Path | None = None
        if self.config.persist:
            self._path = database_path(self.system.config.data_dir, self.name)
            try:
                self._db = open_database(self._path, _SCHEMA)
            except StoreError as exc:
                self.log.error("store_unavailable", path=exc.path, error=exc.reason)
                self.degrade(str(exc))
                return
        self._load()
        self._settle(initial=True)
        self.log.info("registry_started", entries=len(self._entries), pending=self._pending_count())

    def on_stop(self) -> None:
        self._close()

    def on_failure(self, error: BaseException) -> None:
        self._close()

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _load(self) -> None:
        """Queue every known item as pending; :meth:`_settle` admits or drops it."""
        dynamic: dict[str, _Entry] = {}
        subs: list[tuple[str, str]] = []
        if self._db is not None:
            for name, caps, at in self._db.execute("SELECT * FROM registrations"):
                dynamic[name] = _Entry(tuple(json.loads(caps)), at, static=False)
            subs = list(self._db.execute("SELECT capability, subscriber FROM subscriptions"))
        now = time.time()
        for entry in self.config.entries:
            caps = tuple(sorted(set(entry.capabilities)))
            self._pending_entries[entry.name] = _Entry(caps, now, static=True)
        self._pending_entries.update(dynamic)  # a dynamic registration overrides a static one
        self._pending_subs.update(subs)

    # -- pending items (agents that did not exist yet) ------------------------------------

    def _pending_count(self) -> int:
        return len(self._pending_entries) + len(self._pending_subs)

    def _settle(self, *, initial: bool = False) -> None:
        """Admit pending items whose agent exists (a dead one is admitted too: the watch
        delivers ``Terminated`` at once, which removes it and tells the subscribers); once
        the system runs, drop absent static entries and subscribers; re-check later while
        any remain.

        The first settle of an incarnation tells no one: what it admits was registered
        before (a restart), so the subscribers' view has not changed.
        """
        final = self.system.running
        for cap, sub in sorted(self._pending_subs):
            if presence(self.system, sub) != "absent":
                self._pending_subs.discard((cap, sub))
                self._subs.setdefault(cap, set()).add(sub)
                self.watch(sub)
            elif final:
                self._pending_subs.discard((cap, sub))
                self.log.warning("registry_entry_skipped", subscriber=sub, capability=cap)
                self._write(
                    "DELETE FROM subscriptions WHERE capability=? AND subscriber=?", cap, sub
                )
        for name, entry in list(self._pending_entries.items()):
            if presence(self.system, name) != "absent" or (final and not entry.static):
                # A dynamic entry of an agent gone for good is admitted too: the watch
                # removes it at once, deletes its row and tells the subscribers.
                del self._pending_entries[name]
                self._put(name, entry, notify=not initial)
            elif final:
                del self._pending_entries[name]
                self.log.warning("registry_entry_skipped", name=name)
        self._metrics.entries.labels(self.name).set(len(self._entries))
        if self._pending_count():
            self.start_timer("recheck", _Recheck(), self.config.recheck_interval)

    @handler
    def _recheck(self, msg: _Recheck) -> None:
        self._settle()

    def _catch_up(self) -> None:
        """Settle before answering a query, so that right after the system's start the
        answer already holds the agents that started after the registry."""
        if self._pending_count():
            self._settle()

    def _write(self, sql: str, *args: object) -> None:
        """A cleanup write: failure is logged (the next start cleans up again), not replied."""
        if self._db is None or self._path is None:
            return
        try:
            with transaction(self._db, self._path) as db:
                db.execute(sql, args)
        except StoreError as exc:
            self.log.error("registry_cleanup_not_saved", path=exc.path, error=exc.reason)

    # -- state changes (each notifies the subscribers of the capabilities it touched) ---

    def _put(self, name: str, entry: _Entry, *, notify: bool = True) -> None:
        old = self._entries.get(name)
        touched = set(entry.capabilities) | set(old.capabilities if old else ())
        before = {cap: self._names(cap) for cap in touched}
        if old is not None:
            for cap in old.capabilities:
                self._by_cap[cap].discard(name)
        self._entries[name] = entry
        for cap in entry.capabilities:
            self._by_cap.setdefault(cap, set()).add(name)
        self.watch(name)
        self._changed(before if notify else {})

    def _remove(self, name: str) -> None:
        entry = self._entries.pop(name, None)
        if entry is None:
            return
        before = {cap: self._names(cap) for cap in entry.capabilities}
        for cap in entry.capabilities:
            names = self._by_cap[cap]
            names.discard(name)
            if not names:
                del self._by_cap[cap]
        self._unwatch_if_unused(name)
        self._changed(before)

    def _changed(self, before: dict[str, list[str]]) -> None:
        self._metrics.entries.labels(self.name).set(len(self._entries))
        for cap, names in before.items():
            now = self._names(cap)
            if now == names:
                continue
            for subscriber in sorted(self._subs.get(cap, ())):
                self.ref(subscriber).tell(RegistryChanged(capability=cap, names=now))

    def _names(self, capability: str) -> list[str]:
        return sorted(self._by_cap.get(capability, ()))

    def _unwatch_if_unused(self, name: str) -> None:
        if name not in self._entries and not any(name in s for s in self._subs.values()):
            self.unwatch(name)

    def _save(self, sql: str, *args: object) -> RegistryNotSaved | None:
        """A write the reply acknowledges: done (committed) before the state changes."""
        if self._db is None or self._path is None:
            return None
        try:
            with transaction(self._db, self._path) as db:
                db.execute(sql, args)
        except StoreError as exc:
            self.log.error("registry_not_saved", path=exc.path, error=exc.reason)
            return RegistryNotSaved(detail=f"cannot write the registry database: {exc.reason}")
        return None

    # -- registrations ----------------------------------------------------------------

    @handler
    def register(
        self, msg: Register
    ) -> Registered | NoSuchAgent | InvalidRegistration | RegistryNotSaved:
        problem = _empty(name=msg.name) or next(
            (_empty(capability=c) for c in msg.capabilities if not c), None
        )
        if problem is not None:
            return InvalidRegistration(detail=problem)
        if presence(self.system, msg.name) != "alive":
            return NoSuchAgent(agent=msg.name, detail=f"no running agent named {msg.name!r}")
        entry = _Entry(tuple(sorted(set(msg.capabilities))), time.time(), static=False)
        failed = self._save(
            "INSERT OR REPLACE INTO registrations VALUES (?, ?, ?)",
            msg.name,
            json.dumps(entry.capabilities),
            entry.registered_at,
        )
        if failed is not None:
            return failed
        self._pending_entries.pop(msg.name, None)
        self._put(msg.name, entry)
        self.log.info("registry_registered", name=msg.name, capabilities=entry.capabilities)
        return Registered(name=msg.name, capabilities=list(entry.capabilities))

    @handler
    def unregister(self, msg: Unregister) -> Unregistered | NotFound | RegistryNotSaved:
        if msg.name not in self._entries:
            return NotFound(name=msg.name, detail=f"{msg.name!r} is not registered")
        failed = self._save("DELETE FROM registrations WHERE name=?", msg.name)
        if failed is not None:
            return failed
        self._remove(msg.name)
        self.log.info("registry_unregistered", name=msg.name)
        return Unregistered(name=msg.name)

    @handler
    def lookup(self, msg: Lookup) -> Registration | NotFound:
        self._catch_up()
        entry = self._entries.get(msg.name)
        if entry is None:
            return NotFound(name=msg.name, detail=f"{msg.name!r} is not registered")
        return Registration(
            name=msg.name, capabilities=list(entry.capabilities), registered_at=entry.registered_at
        )

    @handler
    def find(self, msg: Find) -> Found:
        self._catch_up()
        return Found(capability=msg.capability, names=self._names(msg.capability))

    # -- subscriptions ----------------------------------------------------------------

    @handler
    def subscribe(
        self, msg: Subscribe
    ) -> Subscribed | NoSuchAgent | InvalidRegistration | RegistryNotSaved:
        problem = _empty(capability=msg.capability, subscriber=msg.subscriber)
        if problem is not None:
            return InvalidRegistration(detail=problem)
        self._catch_up()
        if presence(self.system, msg.subscriber) != "alive":
            return NoSuchAgent(
                agent=msg.subscriber, detail=f"no running agent named {msg.subscriber!r}"
            )
        if msg.subscriber not in self._subs.get(msg.capability, ()):
            failed = self._save(
                "INSERT OR IGNORE INTO subscriptions VALUES (?, ?)", msg.capability, msg.subscriber
            )
            if failed is not None:
                return failed
            self._subs.setdefault(msg.capability, set()).add(msg.subscriber)
            self.watch(msg.subscriber)
            self.log.info(
                "registry_subscribed", capability=msg.capability, subscriber=msg.subscriber
            )
        return Subscribed(capability=msg.capability, names=self._names(msg.capability))

    @handler
    def unsubscribe(self, msg: Unsubscribe) -> Unsubscribed | NotSubscribed | RegistryNotSaved:
        subs = self._subs.get(msg.capability, set())
        if msg.subscriber not in subs:
            return NotSubscribed(
                capability=msg.capability,
                subscriber=msg.subscriber,
                detail=f"{msg.subscriber!r} is not subscribed to {msg.capability!r}",
            )
        failed = self._save(
            "DELETE FROM subscriptions WHERE capability=? AND subscriber=?",
            msg.capability,
            msg.subscriber,
        )
        if failed is not None:
            return failed
        self._drop_subscription(msg.capability, msg.subscriber)
        self._unwatch_if_unused(msg.subscriber)
        return Unsubscribed(capability=msg.capability, subscriber=msg.subscriber)

    def _drop_subscription(self, capability: str, subscriber: str) -> None:
        subs = self._subs.get(capability)
        if subs is not None:
            subs.discard(subscriber)
            if not subs:
                del self._subs[capability]

    # -- death-watch ------------------------------------------------------------------

    @handler
    def _terminated(self, msg: Terminated) -> None:
        name = msg.agent
        if presence(self.system, name) == "alive":
            self.watch(name)  # a new agent under the same name (live reload): keep watching
            return
        for cap in [c for c, subs in self._subs.items() if name in subs]:
            self._drop_subscription(cap, name)
        self._write("DELETE FROM subscriptions WHERE subscriber=?", name)
        if name in self._entries:
            self._write("DELETE FROM registrations WHERE name=?", name)
            self._remove(name)
        self.log.info("registry_agent_gone", name=name, reason=msg.reason)
