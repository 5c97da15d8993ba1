"""Registry: the receptionist. Agents are found by capability, not by name.

Protocol:

* ``Register{name, capabilities}`` -> ``Registered`` (replaces the entry's
  capabilities if ``name`` was registered); ``NoSuchAgent`` (404: no running
  agent has that name); ``RegistryNotSaved`` (503); ``TooManyNames`` (429: a
  name not yet registered while ``max_names`` names are held; a registered one
  may still change its capabilities, and ``Unregister`` frees a slot).
* ``Unregister{name}`` -> ``Unregistered``; ``NotFound`` (404).
* ``Lookup{name}`` -> ``Registration{name, capabilities, registered_at}``; ``NotFound``.
* ``Find{capability}`` -> ``Found{capability, names}`` (sorted; empty if none).
* ``Subscribe{capability, subscriber}`` -> ``Subscribed{capability, names}``
  (the current set); from then on the ``subscriber`` agent is told
  ``RegistryChanged{capability, names}`` each time that set changes.
  ``NoSuchAgent`` if the subscriber is not running; ``TooManyRegistrySubscriptions``
  (429: a pair not yet subscribed while ``max_subscriptions`` pairs are held; a
  resubscribe is answered, and ``Unsubscribe`` frees a slot).
* ``Unsubscribe{capability, subscriber}`` -> ``Unsubscribed``; ``NotSubscribed`` (404).

Bounds: every name and capability is 1 to ``MAX_NAME_LENGTH`` (256) characters
and a ``Register`` names at most ``MAX_CAPABILITIES`` (64) capabilities. An
empty string is answered ``InvalidRegistration`` (422); past an upper bound a
decoded message is a validation error (the gateway's 422 naming the field),
and one built in process is answered ``InvalidRegistration``.

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
included, though the configuration's own are never refused), subscriptions
held likewise; after a restart both are counted again from the configuration
and the store.

Metrics: ``vibe_registry_entries{agent}`` (visible registrations),
``vibe_registry_refused_total{agent, limit}`` (``Register``/``Subscribe``
refused by ``limit``: ``max_names`` or ``max_subscriptions``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import msgspec

from vibe_actors import Agent, Terminated, handler
from vibe_actors.agents.registry._index import Record
from vibe_actors.agents.registry._keeper import DirectoryKeeper
from vibe_actors.agents.registry._metrics import build_metrics
from vibe_actors.agents.registry._store import RegistryStore
from vibe_actors.agents.registry.protocol import (
    MAX_CAPABILITIES,
    MAX_NAME_LENGTH,
    Entry,
    Find,
    Found,
    InvalidRegistration,
    Lookup,
    Name,
    NoSuchAgent,
    NotFound,
    NotSubscribed,
    Register,
    Registered,
    Registration,
    RegistryChanged,
    RegistryConfig,
    RegistryNotSaved,
    Subscribe,
    Subscribed,
    TooManyNames,
    TooManyRegistrySubscriptions,
    Unregister,
    Unregistered,
    Unsubscribe,
    Unsubscribed,
    out_of_bounds,
    presence,
)
from vibe_actors.store import GuardedWrites, StoreError, degrade_for, open_store

__all__ = [
    "MAX_CAPABILITIES",
    "MAX_NAME_LENGTH",
    "Entry",
    "Find",
    "Found",
    "InvalidRegistration",
    "Lookup",
    "Name",
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
    "TooManyRegistrySubscriptions",
    "Unregister",
    "Unregistered",
    "Unsubscribe",
    "Unsubscribed",
    "presence",
]


# -- internal messages: plain Structs, outside the public protocol (not forgeable over HTTP)


class _Recheck(msgspec.Struct, frozen=True):
    """Timer: look again for the agents of pending entries (internal, not forgeable).

    Its class name is a label value of the runtime's message metrics: keep it.
    """


def _invalid(*, capabilities: Sequence[str] = (), **fields: str) -> InvalidRegistration | None:
    """The refusal of a message built in process whose strings break the bounds."""
    problem = out_of_bounds(capabilities=capabilities, **fields)
    return None if problem is None else InvalidRegistration(detail=problem)


# -- the agent -------------------------------------------------------------------------


class Registry(
    GuardedWrites, Agent[Register | Unregister | Lookup | Find | Subscribe | Unsubscribe]
):
    """Capability registry with death-watch (see the module docstring for the contract).

    It answers the public protocol; the directory, the store, the watches and
    the notices to subscribers belong to its engine (``_keeper.DirectoryKeeper``).
    """

    Config: ClassVar = RegistryConfig

    def on_start(self) -> None:
        metrics = self.system.shared_metrics("registry", build_metrics)
        engine = self._engine = DirectoryKeeper(self, metrics, self._recheck_later)
        if self.config.persist:
            try:
                engine.store = open_store(RegistryStore, self)
            except StoreError as exc:
                degrade_for(self, exc)
                return
        engine.load(self.config.entries)
        engine.settle(initial=True)
        pending = engine.dir.pending_count()
        self.log.info("registry_started", entries=len(engine.dir.entries), pending=pending)

    def _recheck_later(self) -> None:
        self.start_timer("recheck", _Recheck(), self.config.recheck_interval)

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
        (:mod:`vibe_actors.store._health`).
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
        if (invalid := _invalid(name=msg.name, capabilities=msg.capabilities)) is not None:
            return invalid
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
        self._engine.refused("max_names")
        env = self.envelope
        self.log.warning(
            "registry_limit_reached", name=name, limit="max_names", held=held,
            request_id=env.request_id if env is not None else None,
        )  # fmt: skip
        return TooManyNames(limit=limit, detail=f"{limit} names are registered already")

    @handler
    def unregister(
        self, msg: Unregister
    ) -> Unregistered | NotFound | InvalidRegistration | RegistryNotSaved:
        if (invalid := _invalid(name=msg.name)) is not None:
            return invalid
        if msg.name not in self._engine.dir.entries:
            return NotFound(name=msg.name, detail=f"{msg.name!r} is not registered")
        if (failed := self._save(RegistryStore.unregister, msg.name)) is not None:
            return failed
        self._engine.remove(msg.name)
        self.log.info("registry_unregistered", name=msg.name)
        return Unregistered(name=msg.name)

    @handler
    def lookup(self, msg: Lookup) -> Registration | NotFound | InvalidRegistration:
        if (invalid := _invalid(name=msg.name)) is not None:
            return invalid
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
    def find(self, msg: Find) -> Found | InvalidRegistration:
        if (invalid := _invalid(capability=msg.capability)) is not None:
            return invalid
        self._engine.catch_up()
        return Found(capability=msg.capability, names=self._engine.dir.names(msg.capability))

    # -- subscriptions ----------------------------------------------------------------

    @handler
    def subscribe(
        self, msg: Subscribe
    ) -> (
        Subscribed
        | NoSuchAgent
        | InvalidRegistration
        | RegistryNotSaved
        | TooManyRegistrySubscriptions
    ):
        if (invalid := _invalid(capability=msg.capability, subscriber=msg.subscriber)) is not None:
            return invalid
        self._engine.catch_up()
        if presence(self.system, msg.subscriber) != "alive":
            return NoSuchAgent(
                agent=msg.subscriber, detail=f"no running agent named {msg.subscriber!r}"
            )
        if not self._engine.dir.subscribed(msg.capability, msg.subscriber):
            if (full := self._subscriptions_full(msg)) is not None:
                return full
            failed = self._save(RegistryStore.subscribe, msg.capability, msg.subscriber)
            if failed is not None:
                return failed
            self._engine.dir.subscribe(msg.capability, msg.subscriber)
            self.watch(msg.subscriber)
            self.log.info(
                "registry_subscribed", capability=msg.capability, subscriber=msg.subscriber
            )
        return Subscribed(capability=msg.capability, names=self._engine.dir.names(msg.capability))

    def _subscriptions_full(self, msg: Subscribe) -> TooManyRegistrySubscriptions | None:
        """The refusal of a new pair while ``max_subscriptions`` pairs are held."""
        held, limit = self._engine.dir.subscriptions_held(), self.config.max_subscriptions
        if held < limit:
            return None
        self._engine.refused("max_subscriptions")
        env = self.envelope
        self.log.warning(
            "registry_limit_reached", capability=msg.capability, subscriber=msg.subscriber,
            limit="max_subscriptions", held=held,
            request_id=env.request_id if env is not None else None,
        )  # fmt: skip
        return TooManyRegistrySubscriptions(
            limit=limit, detail=f"{limit} subscriptions are held already"
        )

    @handler
    def unsubscribe(
        self, msg: Unsubscribe
    ) -> Unsubscribed | NotSubscribed | InvalidRegistration | RegistryNotSaved:
        if (invalid := _invalid(capability=msg.capability, subscriber=msg.subscriber)) is not None:
            return invalid
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
