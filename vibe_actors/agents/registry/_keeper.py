"""The registry agent's directory keeper: its directory and store kept in step, with watches
and notices.

The :class:`~vibe_actors.agents.registry.Registry` agent owns one
:class:`DirectoryKeeper` per incarnation and delegates to it everything past its
public protocol: loading the static entries and the stored items as
pending, settling them (admitting or dropping them as their agents appear
or the system finishes starting), writing changes to the store, watching
the agents in use and telling subscribers when a capability's agents
change. Used from the agent's thread only; it acts through the agent
(``watch``, ``ref``, timers, ``log``). Rebuilt at every start from the
configuration and the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from vibe_actors import Agent, Terminated
from vibe_actors.agents.registry._index import Directory, Record
from vibe_actors.agents.registry._metrics import Metrics
from vibe_actors.agents.registry._store import RegistryStore
from vibe_actors.agents.registry.protocol import Entry, RegistryChanged, presence
from vibe_actors.store import StoreError

__all__ = ["DirectoryKeeper"]


class DirectoryKeeper:
    """Directory, store, watches and notices of one incarnation of the registry agent."""

    def __init__(self, agent: Agent, metrics: Metrics, recheck_later: Callable[[], None]) -> None:
        self._agent = agent
        self._metrics = metrics
        #: Starts the agent's timer that settles again later (its ``_Recheck``).
        self._recheck_later = recheck_later
        self.dir = Directory()
        #: None without ``persist`` (or before it is opened).
        self.store: RegistryStore | None = None

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def load(self, entries: Iterable[Entry]) -> None:
        """Queue every known item as pending; :meth:`settle` admits or drops it."""
        dynamic = self.store.registrations() if self.store is not None else {}
        subs = self.store.subscriptions() if self.store is not None else []
        now = time.time()
        for entry in entries:
            caps = tuple(sorted(set(entry.capabilities)))
            self.dir.pending_entries[entry.name] = Record(caps, now, static=True)
        self.dir.pending_entries.update(dynamic)  # a dynamic registration overrides a static one
        self.dir.pending_subs.update(subs)

    def settle(self, *, initial: bool = False) -> None:
        """Admit pending items whose agent exists (a dead one is admitted too: the watch
        delivers ``Terminated`` at once, which removes it and tells the subscribers); once
        the system runs, drop absent static entries and subscribers; re-check later while
        any remain.

        The first settle of an incarnation tells no one: what it admits was registered
        before (a restart), so the subscribers' view has not changed.
        """
        agent, system = self._agent, self._agent.system
        settled = self.dir.settle(lambda name: presence(system, name), system.running)
        for cap, sub in settled.subscribed:
            self.dir.subscribe(cap, sub)
            agent.watch(sub)
        for cap, sub in settled.skipped:
            agent.log.warning("registry_entry_skipped", subscriber=sub, capability=cap)
            self.cleanup(RegistryStore.unsubscribe, cap, sub)
        for name, record in settled.admitted:
            self.put(name, record, notify=not initial)
        for name in settled.dropped:
            agent.log.warning("registry_entry_skipped", name=name)
        self._metrics.entries.labels(agent.name).set(len(self.dir.entries))
        if self.dir.pending_count():
            self._recheck_later()

    def catch_up(self) -> None:
        """Settle before answering a query, so that right after the system's start the
        answer already holds the agents that started after the registry."""
        if self.dir.pending_count():
            self.settle()

    # -- writes ---------------------------------------------------------------------

    def write(self, change: Callable[..., None], *args: Any, event: str) -> StoreError | None:
        """``change(store, *args)``; the error (logged as ``event``) if it was not saved."""
        if self.store is None:
            return None
        try:
            change(self.store, *args)
        except StoreError as exc:
            self._agent.log.error(event, path=exc.path, error=exc.reason)
            return exc
        return None

    def cleanup(self, change: Callable[..., None], *args: Any) -> None:
        """A cleanup write: failure is logged (the next start cleans up again), not replied."""
        self.write(change, *args, event="registry_cleanup_not_saved")

    # -- state changes (each notifies the subscribers of the capabilities it touched) ---

    def put(self, name: str, record: Record, *, notify: bool = True) -> None:
        before = self.dir.put(name, record)
        self._agent.watch(name)
        self._changed(before if notify else {})

    def remove(self, name: str) -> None:
        before = self.dir.remove(name)
        if before is None:
            return
        self.unwatch_if_unused(name)
        self._changed(before)

    def _changed(self, before: dict[str, list[str]]) -> None:
        agent = self._agent
        self._metrics.entries.labels(agent.name).set(len(self.dir.entries))
        for cap, names, subscribers in self.dir.changes(before):
            for subscriber in subscribers:
                agent.ref(subscriber).tell(RegistryChanged(capability=cap, names=names))

    def refused(self, limit: str) -> None:
        """Count a ``Register`` or ``Subscribe`` refused by the setting ``limit``."""
        self._metrics.refused.labels(self._agent.name, limit).inc()

    def unwatch_if_unused(self, name: str) -> None:
        if not self.dir.in_use(name):
            self._agent.unwatch(name)

    # -- death-watch ------------------------------------------------------------------

    def terminated(self, msg: Terminated) -> None:
        """A watched agent stopped: drop its entry and subscriptions, unless it runs again."""
        agent, name = self._agent, msg.agent
        if presence(agent.system, name) == "alive":
            agent.watch(name)  # a new agent under the same name (live reload): keep watching
            return
        for cap in self.dir.capabilities_watched_by(name):
            self.dir.unsubscribe(cap, name)
        self.cleanup(RegistryStore.forget, name)
        if name in self.dir.entries:
            self.cleanup(RegistryStore.unregister, name)
            self.remove(name)
        agent.log.info("registry_agent_gone", name=name, reason=msg.reason)
