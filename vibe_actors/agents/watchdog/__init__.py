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

Supervisors are not pinged (they are the ones that act on a hung child);
agents in ``exclude`` (a name, a pool's name for all its workers, or an entity kind's for all its shards) are
skipped, and ``agents`` overrides deadline and misses per agent (a job worker
that legitimately runs long handlers wants a larger budget, or exclusion).

Readiness (:func:`unresponsive`, the gateway's ``/readyz``) needs neither a
round nor a live watchdog: it reads the runtime's progress monitor
(:mod:`vibe_actors._progress`), which the watchdog installs and which samples
on the system's timer thread which message each watched agent is handling.
A watched agent is **unresponsive** while its current incarnation is still
handling the one message it was first seen handling at least its heartbeat
``deadline`` ago: named within ``deadline`` plus one sampling period
(``min(interval, deadline) / 4``, at least 10 ms) of getting stuck, no longer
from the moment that handler returns or the incarnation is replaced, and
never while it keeps finishing messages (slow). If sampling stops for
``max(1 s, deadline + 4 periods)``, :data:`STALLED` is named instead.

Who watches the watchdog: that monitor. Once the watchdog has spent
``max(1 s, interval * misses + deadline)`` in one message (the rounds in
which it would have declared another agent hung), it counts as unresponsive
and the runtime replaces it with
:meth:`~vibe_actors.ActorSystem.replace_hung` from the timer thread, even
with ``replace`` off (it keeps no state worth a hang): the
``watchdog_replaced`` log event, ``vibe_watchdog_replaced_total`` and an
:class:`AgentDeclaredHung` event name it, with its stack (no running
incarnation to replace: ``watchdog_not_replaced`` is logged). Its heartbeat
state and incidents are per incarnation (a restart starts its rounds
afresh); the monitor, and readiness with it, carries on across restarts.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar

import msgspec
import structlog

from vibe_actors import (
    Agent,
    AgentStatus,
    Ping,
    Pong,
    ReplyFuture,
    TreeNode,
    UnknownAgent,
    handler,
)
from vibe_actors._progress import STALLED, install_monitor, not_answering
from vibe_actors.agents.watchdog._budgets import budget, monitor_settings
from vibe_actors.agents.watchdog._metrics import build_metrics

if TYPE_CHECKING:
    from vibe_actors import ActorSystem

from vibe_actors.agents.watchdog.protocol import (
    AgentDeclaredHung,
    AgentWatch,
    Heartbeat,
    Incident,
    Report,
    WatchdogConfig,
    WatchdogReport,
)

__all__ = [
    "STALLED",
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


class _Round(msgspec.Struct, frozen=True):
    """Timer message: time for a heartbeat round."""


# -- what the gateway reads without a hop ----------------------------------------------

_log = structlog.get_logger("vibe_actors.watchdog")

#: Fraction of ``interval`` by which a ping may fall short of its deadline and still
#: count as missed at a round (see Watchdog.on_start).
_ROUND_SLACK = 0.05


def unresponsive(system: ActorSystem) -> frozenset[str]:
    """Watched agents of ``system`` stuck in one message for longer than their deadline.

    Read from the runtime's progress monitor at the time of the call (see the
    module docstring), so it holds whether or not the watchdog agent is alive
    and current; :data:`STALLED` is included when the monitor has stopped
    sampling. Empty for a system without a watchdog, or not running. Cheap and
    non-blocking (a dict scan and a clock read): for ``/readyz``.
    """
    return not_answering(system)


def _replace_stuck_watchdog(system: ActorSystem, name: str, stuck_for: float) -> None:
    """Replace the watchdog ``name``, stuck for ``stuck_for`` s (on the timer thread).

    If it has no running incarnation by now (it returned, or was stopped),
    nothing is replaced and ``watchdog_not_replaced`` is logged.
    """
    incarnation = system.cell(name).incarnation
    reason = f"the watchdog spent {stuck_for:.3g}s in one message, skipping its rounds"
    failure = system.replace_hung(name, reason)
    if failure is None:
        _log.warning("watchdog_not_replaced", agent=name, incarnation=incarnation,
                     reason="no running incarnation")  # fmt: skip
        return
    system.shared_metrics("watchdog", build_metrics).replaced.labels(name).inc()
    _log.error("watchdog_replaced", agent=name, incarnation=incarnation, reason=reason,
               stack=failure.stack)  # fmt: skip
    system.events.publish(
        AgentDeclaredHung(agent=name, incarnation=incarnation, reason=reason,
                          stack=failure.stack, replaced=True)
    )  # fmt: skip


# -- the agent ------------------------------------------------------------------------


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
        # Rounds are scheduled at a fixed rate but handled with a varying lag, so two
        # rounds can be a hair less than ``interval`` apart: without this slack a ping
        # with deadline == interval would be counted at every other round only.
        self._round_slack = self._settings.interval * _ROUND_SLACK
        self._metrics = self.system.shared_metrics("watchdog", build_metrics)
        self._watched: dict[str, _Watched] = {}
        self._hung_counts: dict[str, int] = {}
        self._incidents: list[Incident] = []
        #: Agents missing heartbeats without progress at the last round (for Report).
        self._stuck: frozenset[str] = frozenset()
        settings = monitor_settings(self._settings, self.name, _replace_stuck_watchdog)
        install_monitor(self.system, settings)
        self.start_timer("round", _Round(), self._settings.interval, repeat=True)

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
        self._stuck = frozenset(stuck)

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
            elif now - watched.sent_at >= deadline - self._round_slack:
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
            for child in node.children:  # a pool's workers, an entity kind's shards: its name
                visit(child, node.name if node.kind in ("pool", "entities") else None)

        visit(self.system.tree(), None)
        return names

    def _budget(self, name: str) -> tuple[float, int]:
        return budget(self._settings, name)

    def _state(self, name: str, watched: _Watched) -> str:
        if watched.misses == 0:
            return "ok"
        return "unresponsive" if name in self._stuck else "slow"
