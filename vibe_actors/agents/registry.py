"""Registry: the receptionist. Agents are found by capability, not by name.

Protocol:

* ``Register{name, capabilities}`` -> ``Registered`` (replaces the entry's
  capabilities if ``name`` was registered); ``NoSuchAgent`` (404: no running
  agent has that name); ``InvalidRegistration`` (422: empty name or
  capability); ``RegistryNotSaved`` (503); ``TooManyNames`` (429: a name not
  yet registered while ``max_names`` names are held; a registered one may
  still change its capabilities, and ``Unregister`` frees a slot).
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

Names held are the visible entries and the pending ones (static entries
included, though the configuration's own are never refused); after a restart
they are counted again from the configuration and the store.

Metrics: ``vibe_registry_entries{agent}`` (visible registrations),
``vibe_registry_refused_total{agent}`` (registrations refused by ``max_names``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any, ClassVar

import msgspec

from vibe_actors import Agent, ErrorReply, Message, Terminated, handler
from vibe_actors.agents._metrics import system_metrics
from vibe_actors.agents._registry_engine import Engine, _Recheck, build_metrics, presence
from vibe_actors.agents._registry_index import Record
from vibe_actors.agents._registry_store import RegistryStore
from vibe_actors.agents._sqlite import StoreError, database_path, degrade_for
from vibe_actors.agents._store_health import GuardedWrites

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
    "TooManyNames",
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
    #: Names held at most (visible and pending): a ``Register`` of a new name past it is
    #: ``TooManyNames`` (429).
    max_names: Annotated[int, msgspec.Meta(gt=0)] = 100_000

    def __post_init__(self) -> None:
        if self.recheck_interval <= 0:
            raise ValueError("recheck_interval must be > 0")
        if self.max_names <= 0:
            raise ValueError(f"max_names must be > 0, got {self.max_names}")
        if len(self.entries) > self.max_names:
            raise ValueError(
                f"{len(self.entries)} static entries are more than max_names ({self.max_names})"
            )


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


class TooManyNames(ErrorReply):
    """A ``Register`` of a new name while ``limit`` names are held."""

    limit: int
    http_status: ClassVar[int] = 429


def _empty(**fields: str) -> str | None:
    for field, value in fields.items():
        if not value:
            return f"the {field} must not be empty"
    return None


# -- the agent -------------------------------------------------------------------------


class Registry(
    GuardedWrites, Agent[Register | Unregister | Lookup | Find | Subscribe | Unsubscribe]
):
    """Capability registry with death-watch (see the module docstring for the contract).

    It answers the public protocol; the directory, the store, the watches and
    the notices to subscribers belong to its engine (``_registry_engine.Engine``).
    """

    Config: ClassVar = RegistryConfig

    def on_start(self) -> None:
        metrics = system_metrics(self.system, "registry", build_metrics)
        engine = self._engine = Engine(self, metrics, self.config.recheck_interval, RegistryChanged)
        if self.config.persist:
            try:
                engine.store = RegistryStore(database_path(self.system.config.data_dir, self.name))
            except StoreError as exc:
                degrade_for(self, exc)
                return
        engine.load(self.config.entries)
        engine.settle(initial=True)
        pending = engine.dir.pending_count()
        self.log.info("registry_started", entries=len(engine.dir.entries), pending=pending)

    def on_stop(self) -> None:
        self._engine.close()

    def on_failure(self, error: BaseException) -> None:
        self._engine.close()

    @handler
    def _recheck(self, msg: _Recheck) -> None:
        self._engine.settle()

    def _save(self, change: Callable[..., None], *args: Any) -> RegistryNotSaved | None:
        """A write the reply acknowledges: done (committed) before the state changes.

        A failed write impairs the agent until a write succeeds again
        (:mod:`vibe_actors.agents._store_health`).
        """
        if (exc := self._engine.write(change, *args, event="registry_not_saved")) is None:
            self.write_succeeded()
            return None
        self.write_failed(exc, change.__name__)
        return RegistryNotSaved(detail=f"cannot write the registry database: {exc.reason}")

    def _probe_store_write(self) -> None:
        if self._engine.store is not None:
            self._engine.store.probe_write()

    # -- registrations ----------------------------------------------------------------

    @handler
    def register(
        self, msg: Register
    ) -> Registered | NoSuchAgent | InvalidRegistration | RegistryNotSaved | TooManyNames:
        problem = _empty(name=msg.name) or next(
            (_empty(capability=c) for c in msg.capabilities if not c), None
        )
        if problem is not None:
            return InvalidRegistration(detail=problem)
        if presence(self.system, msg.name) != "alive":
            return NoSuchAgent(agent=msg.name, detail=f"no running agent named {msg.name!r}")
        if (full := self._full(msg.name)) is not None:
            return full
        record = Record(tuple(sorted(set(msg.capabilities))), time.time(), static=False)
        if (failed := self._save(RegistryStore.register, msg.name, record)) is not None:
            return failed
        self._engine.dir.pending_entries.pop(msg.name, None)
        self._engine.put(msg.name, record)
        self.log.info("registry_registered", name=msg.name, capabilities=record.capabilities)
        return Registered(name=msg.name, capabilities=list(record.capabilities))

    def _full(self, name: str) -> TooManyNames | None:
        """The refusal of registering ``name`` if it is new and ``max_names`` are held."""
        held, limit = self._engine.dir.held(), self.config.max_names
        if held < limit or self._engine.dir.holds(name):
            return None
        self._engine.refused()
        env = self.envelope
        self.log.warning(
            "registry_limit_reached", name=name, limit="max_names", held=held,
            request_id=env.request_id if env is not None else None,
        )  # fmt: skip
        return TooManyNames(limit=limit, detail=f"{limit} names are registered already")

    @handler
    def unregister(self, msg: Unregister) -> Unregistered | NotFound | RegistryNotSaved:
        if msg.name not in self._engine.dir.entries:
            return NotFound(name=msg.name, detail=f"{msg.name!r} is not registered")
        if (failed := self._save(RegistryStore.unregister, msg.name)) is not None:
            return failed
        self._engine.remove(msg.name)
        self.log.info("registry_unregistered", name=msg.name)
        return Unregistered(name=msg.name)

    @handler
    def lookup(self, msg: Lookup) -> Registration | NotFound:
        self._engine.catch_up()
        record = self._engine.dir.entries.get(msg.name)
        if record is None:
            return NotFound(name=msg.name, detail=f"{msg.name!r} is not registered")
        return Registration(
            name=msg.name,
            capabilities=list(record.capabilities),
            registered_at=record.registered_at,
        )

    @handler
    def find(self, msg: Find) -> Found:
        self._engine.catch_up()
        return Found(capability=msg.capability, names=self._engine.dir.names(msg.capability))

    # -- subscriptions ----------------------------------------------------------------

    @handler
    def subscribe(
        self, msg: Subscribe
    ) -> Subscribed | NoSuchAgent | InvalidRegistration | RegistryNotSaved:
        problem = _empty(capability=msg.capability, subscriber=msg.subscriber)
        if problem is not None:
            return InvalidRegistration(detail=problem)
        self._engine.catch_up()
        if presence(self.system, msg.subscriber) != "alive":
            return NoSuchAgent(
                agent=msg.subscriber, detail=f"no running agent named {msg.subscriber!r}"
            )
        if not self._engine.dir.subscribed(msg.capability, msg.subscriber):
            failed = self._save(RegistryStore.subscribe, msg.capability, msg.subscriber)
            if failed is not None:
                return failed
            self._engine.dir.subscribe(msg.capability, msg.subscriber)
            self.watch(msg.subscriber)
            self.log.info(
                "registry_subscribed", capability=msg.capability, subscriber=msg.subscriber
            )
        return Subscribed(capability=msg.capability, names=self._engine.dir.names(msg.capability))

    @handler
    def unsubscribe(self, msg: Unsubscribe) -> Unsubscribed | NotSubscribed | RegistryNotSaved:
        if not self._engine.dir.subscribed(msg.capability, msg.subscriber):
            return NotSubscribed(
                capability=msg.capability,
                subscriber=msg.subscriber,
                detail=f"{msg.subscriber!r} is not subscribed to {msg.capability!r}",
            )
        failed = self._save(RegistryStore.unsubscribe, msg.capability, msg.subscriber)
        if failed is not None:
            return failed
        self._engine.dir.unsubscribe(msg.capability, msg.subscriber)
        self._engine.unwatch_if_unused(msg.subscriber)
        return Unsubscribed(capability=msg.capability, subscriber=msg.subscriber)

    # -- death-watch ------------------------------------------------------------------

    @handler
    def _terminated(self, msg: Terminated) -> None:
        self._engine.terminated(msg)
