"""Watchdog: finds hung agents and has them replaced.

Every ``interval`` seconds the watchdog sends each worker agent a
:class:`~vibe_actors.Ping` through its mailbox, with a ``deadline``. A ping
that has no answer by the next round is a *miss*. An agent is declared
**hung** when it has missed ``misses`` heartbeats in a row *and* finished no
message at all since the first of them: its mailbox has stopped draining. An
agent that misses heartbeats but keeps finishing messages is *slow* (a long
queue ahead of the ping), reported and counted, never replaced.

A hung agent's stuck thread's stack is captured (``sys._current_frames``)
into the failure, which goes to its supervisor
(:meth:`vibe_actors.ActorSystem.replace_hung`): the supervisor restarts the
agent per its strategy, the stuck thread is abandoned (it handles nothing
more if it ever returns), and a fresh incarnation takes over the same name
and mailbox; the ask in flight in the stuck handler gets ``AgentCrashed``.
The watchdog publishes :class:`AgentDeclaredHung` (stack included) on
``system.events`` and keeps the last ``keep_incidents`` incidents for
``Report{}``.

Readiness: :func:`unresponsive` names the agents currently missing
heartbeats without progress (the gateway's ``/readyz`` fails on them before
the watchdog even acts). Supervisors are not pinged (they are the ones that
act on a hung child); agents in ``exclude`` (a name, or a pool's name for all
its workers) are skipped, and ``agents`` overrides deadline and misses per
agent (a job worker that legitimately runs long handlers wants a larger
budget, or exclusion).

Across its own restart the watchdog rebuilds everything: heartbeat state and
incidents are per incarnation (the next round starts afresh).
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import TYPE_CHECKING, Annotated, ClassVar

import msgspec
from prometheus_client import CollectorRegistry, Counter, Histogram

from vibe_actors import (
    Agent,
    AgentStatus,
    Message,
    Ping,
    Pong,
    ReplyFuture,
    RuntimeEvent,
    TreeNode,
    UnknownAgent,
    handler,
)
from vibe_actors.agents._metrics import system_metrics

if TYPE_CHECKING:
    from vibe_actors import ActorSystem

__all__ = [
    "AgentDeclaredHung",
    "AgentWatch",
    "Heartbeat",
    "Incident",
    "Report",
    "Watchdog",
    "WatchdogConfig",
    "WatchdogReport",
    "unresponsive",
]

_Positive = Annotated[float, msgspec.Meta(gt=0)]


class AgentWatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Per-agent override of the heartbeat deadline and the misses before "hung"."""

    deadline: _Positive | None = None
    misses: Annotated[int, msgspec.Meta(ge=1)] | None = None


class WatchdogConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of :class:`Watchdog`."""

    #: Seconds between heartbeat rounds.
    interval: _Positive = 1.0
    #: Seconds a Ping may take (it is also the Ping's mailbox deadline).
    deadline: _Positive = 1.0
    #: Consecutive misses without progress before an agent is declared hung.
    misses: Annotated[int, msgspec.Meta(ge=1)] = 3
    #: Agents (or pools) never pinged.
    exclude: list[str] = []
    #: Per-agent overrides.
    agents: dict[str, AgentWatch] = {}
    #: Replace hung agents (False: detect, report and count only).
    replace: bool = True
    #: Incidents kept for ``Report{}``.
    keep_incidents: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 100


# -- messages -----------------------------------------------------------------------


class Report(Message):
    """Ask for the watchdog's view: per-agent heartbeat state and recent incidents."""


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True):
    """One agent's heartbeat state."""

    agent: str
    incarnation: int
    #: Round-trip of the last answered Ping, seconds (None before the first).
    last_rtt: float | None
    #: Consecutive misses so far.
    misses: int
    #: "ok", "slow" (missing but draining) or "unresponsive" (missing, not draining).
    state: str
    hung: int


class Incident(msgspec.Struct, frozen=True, kw_only=True):
    """A hung agent that was declared (and replaced, if ``replaced``)."""

    agent: str
    incarnation: int
    at: float
    reason: str
    stack: str | None
    replaced: bool


class WatchdogReport(Message):
    """The reply to :class:`Report`."""

    interval: float
    agents: list[Heartbeat]
    incidents: list[Incident]


class AgentDeclaredHung(RuntimeEvent):
    """The watchdog declared ``agent`` hung; ``stack`` is its stuck thread's stack."""

    agent: str
    incarnation: int
    reason: str
    stack: str | None
    replaced: bool


class _Round(msgspec.Struct, frozen=True):
    """Timer message: time for a heartbeat round."""


# -- what the gateway reads without a hop ----------------------------------------------

_unresponsive: weakref.WeakKeyDictionary[ActorSystem, frozenset[str]] = weakref.WeakKeyDictionary()
_unresponsive_lock = threading.Lock()


def unresponsive(system: ActorSystem) -> frozenset[str]:
    """Agents a watchdog of ``system`` currently sees missing heartbeats without progress."""
    with _unresponsive_lock:
        return _unresponsive.get(system, frozenset())


def _set_unresponsive(system: ActorSystem, names: frozenset[str]) -> None:
    with _unresponsive_lock:
        _unresponsive[system] = names


# -- the agent ------------------------------------------------------------------------


class _Metrics(msgspec.Struct, frozen=True):
    rtt: Histogram
    misses: Counter
    hung: Counter


def _build_metrics(registry: CollectorRegistry) -> _Metrics:
    return _Metrics(
        rtt=Histogram(
            "vibe_watchdog_heartbeat_seconds", "Ping round-trip seen by the watchdog.",
            registry=registry,
            buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
        ),
        misses=Counter(
            "vibe_watchdog_misses", "Heartbeats missed, by agent.", ["agent"], registry=registry
        ),
        hung=Counter(
            "vibe_watchdog_hung", "Agents declared hung, by agent.", ["agent"], registry=registry
        ),
    )  # fmt: skip


class _Watched:
    """Heartbeat state of one agent incarnation (touched only by the watchdog's thread)."""

    __slots__ = ("future", "hung", "incarnation", "last_rtt", "misses", "progress", "sent_at")

    def __init__(self, incarnation: int) -> None:
        self.incarnation = incarnation
        self.future: ReplyFuture | None = None
        self.sent_at = 0.0
        self.misses = 0
        self.last_rtt: float | None = None
        #: Messages finished when the first miss of the current run was seen.
        self.progress = -1
        self.hung = 0


class Watchdog(Agent[Report]):
    """Heartbeats every worker agent and replaces the hung ones.

    Protocol: ``Report`` -> ``WatchdogReport``. Rounds run on a timer.
    """

    Config: ClassVar = WatchdogConfig

    def on_start(self) -> None:
        self._settings: WatchdogConfig = self.config
        self._metrics = system_metrics(self.system, "watchdog", _build_metrics)
        self._watched: dict[str, _Watched] = {}
        self._hung_counts: dict[str, int] = {}
        self._incidents: list[Incident] = []
        _set_unresponsive(self.system, frozenset())
        self.start_timer("round", _Round(), self._settings.interval, repeat=True)

    def on_stop(self) -> None:
        _set_unresponsive(self.system, frozenset())

    @handler
    def report(self, msg: Report) -> WatchdogReport:
        agents = [
            Heartbeat(agent=name, incarnation=w.incarnation, last_rtt=w.last_rtt,
                      misses=w.misses, state=self._state(name, w),
                      hung=self._hung_counts.get(name, 0))
            for name, w in sorted(self._watched.items())
        ]  # fmt: skip
        return WatchdogReport(
            interval=self._settings.interval, agents=agents, incidents=list(self._incidents)
        )

    @handler
    def _round(self, msg: _Round) -> None:
        now = time.monotonic()
        seen: set[str] = set()
        stuck: set[str] = set()
        for name in self._targets():
            seen.add(name)
            if self._check(name, now):
                stuck.add(name)
        for gone in self._watched.keys() - seen:
            del self._watched[gone]
        _set_unresponsive(self.system, frozenset(stuck))

    # -- one agent -----------------------------------------------------------------

    def _check(self, name: str, now: float) -> bool:
        """Settle ``name``'s last ping, decide, send the next; True if unresponsive."""
        try:
            cell = self.system.cell(name)
        except UnknownAgent:  # removed by a live reload since the walk
            return False
        if cell.status is not AgentStatus.RUNNING:
            self._watched.pop(name, None)
            return False
        watched = self._watched.get(name)
        if watched is None or watched.incarnation != cell.incarnation:
            watched = self._watched[name] = _Watched(cell.incarnation)
        deadline, misses = self._budget(name)
        future = watched.future
        if future is not None:
            if future.done() and isinstance(future.wait(0), Pong):
                watched.misses, watched.progress = 0, -1
            elif now - watched.sent_at >= deadline:
                future.resolve(None)  # give up on it; a late Pong is discarded
                self._missed(name, watched, cell.stats.total())
            else:
                return False  # still within its deadline: wait for the next round
        unresponsive_now = watched.misses > 0 and cell.stats.total() == watched.progress
        if unresponsive_now and watched.misses >= misses:
            self._declare_hung(name, watched, deadline)
            return True
        self._send(name, watched, deadline, now)
        return unresponsive_now

    def _missed(self, name: str, watched: _Watched, progress: int) -> None:
        watched.misses += 1
        self._metrics.misses.labels(name).inc()
        if watched.misses == 1 or progress != watched.progress:
            # A new run of misses, or the agent finished something since: restart the window.
            watched.progress = progress
            watched.misses = 1
        self.log.warning("heartbeat_missed", target=name, misses=watched.misses)

    def _send(self, name: str, watched: _Watched, deadline: float, now: float) -> None:
        rtt = self._metrics.rtt

        def answered(reply: object, sent: float = now) -> None:
            # Runs in the target's thread: only plain attribute stores, no agent state.
            if isinstance(reply, Pong):
                elapsed = time.monotonic() - sent
                watched.last_rtt = elapsed
                rtt.observe(elapsed)

        watched.sent_at = now
        watched.future = self.ref(name).ask_future(Ping(), timeout=deadline, callback=answered)

    def _declare_hung(self, name: str, watched: _Watched, deadline: float) -> None:
        reason = (
            f"missed {watched.misses} heartbeats ({deadline:g}s deadline) "
            "and finished no message meanwhile"
        )
        replaced = False
        stack: str | None = None
        if self._settings.replace:
            failure = self.system.replace_hung(name, reason)
            replaced = failure is not None
            stack = failure.stack if failure is not None else None
        else:
            stack = self.system.thread_stack(name)
        self._hung_counts[name] = self._hung_counts.get(name, 0) + 1
        self._metrics.hung.labels(name).inc()
        incident = Incident(agent=name, incarnation=watched.incarnation, at=time.time(),
                            reason=reason, stack=stack, replaced=replaced)  # fmt: skip
        self._incidents = [*self._incidents, incident][-self._settings.keep_incidents :]
        self._watched.pop(name, None)
        self.log.error("agent_declared_hung", target=name, reason=reason, replaced=replaced,
                       stack=stack)  # fmt: skip
        self.system.events.publish(
            AgentDeclaredHung(agent=name, incarnation=watched.incarnation, reason=reason,
                              stack=stack, replaced=replaced)
        )  # fmt: skip

    # -- helpers ------------------------------------------------------------------------

    def _targets(self) -> list[str]:
        excluded = set(self._settings.exclude) | {self.name}
        names: list[str] = []

        def visit(node: TreeNode, pool: str | None) -> None:
            if node.kind == "worker":
                if node.name not in excluded and pool not in excluded:
                    names.append(node.name)
                return
            for child in node.children:
                visit(child, node.name if node.kind == "pool" else None)

        visit(self.system.tree(), None)
        return names

    def _budget(self, name: str) -> tuple[float, int]:
        override = self._settings.agents.get(name) or self._settings.agents.get(
            name.rpartition(".")[0]
        )
        deadline = self._settings.deadline
        misses = self._settings.misses
        if override is not None:
            deadline = override.deadline or deadline
            misses = override.misses or misses
        return deadline, misses

    def _state(self, name: str, watched: _Watched) -> str:
        if watched.misses == 0:
            return "ok"
        return "unresponsive" if name in unresponsive(self.system) else "slow"
