"""Supervisor: an agent whose only job is starting, watching and restarting children.

Its behaviour is a small state machine kept in pure functions
(:mod:`vibe_actors._restart_policy`): which siblings a failure affects
(:func:`restart_plan`), whether the restart intensity is exceeded
(:class:`IntensityWindow`), and how long to back off (:func:`next_backoff`).
This module only carries those decisions out:

* start: children in order, each confirming its start before the next;
* a child exits: plan; past the intensity, give up (stop every child in
  reverse order and fail to the parent with :class:`RestartIntensityExceeded`);
  else stop the affected siblings in reverse order and start them again in
  order, after the backoff delay (a group restart also starts a transient
  sibling that had stopped normally, as OTP does);
* stop: children in reverse order, each within its shutdown timeout.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, NoReturn

from msgspec import structs

from vibe_actors import _tracing
from vibe_actors._agent import Agent
from vibe_actors._cell_directives import EscalationRequested
from vibe_actors._envelope import Envelope
from vibe_actors._errors import (
    ChildEscalated,
    NameTaken,
    RestartIntensityExceeded,
    StartFailed,
    StoppedByDirective,
)
from vibe_actors._events import AgentRestarted, SupervisorGaveUp
from vibe_actors._future import ReplyFuture
from vibe_actors._handlers import handler
from vibe_actors._reload import ApplyReport, ApplySpec, diff_children
from vibe_actors._restart_policy import (
    BackoffState,
    ChildState,
    IntensityWindow,
    RestartPlan,
    next_backoff,
    restart_plan,
)
from vibe_actors._signals import AgentStatus, ChildExited, RestartDue
from vibe_actors._spec import RestartType, SupervisorSpec, WorkerSpec

if TYPE_CHECKING:
    from vibe_actors._cell import Cell

#: How long a supervisor waits for a nested supervisor to apply its part of a reload.
_NESTED_APPLY_TIMEOUT = 300.0

__all__ = ["Supervisor"]


class Supervisor(Agent):
    """Runs the children of a :class:`SupervisorSpec` (its ``config``)."""

    config: SupervisorSpec

    def on_start(self) -> None:
        """Start every child in order; if one fails, stop those started and raise.

        Raises :class:`StartFailed` naming the child that failed.
        """
        self._window = IntensityWindow.empty()
        self._backoff: dict[str, BackoffState] = {}
        self._tokens = 0
        cell = self._cell
        started: list[Cell] = []
        for spec in self.config.children:
            child = cell.children.get(spec.name)
            if child is None:
                child = self.system.make_cell(spec, cell)
            try:
                child.start(self.system.config.start_timeout)
            except StartFailed:
                for done in reversed(started):
                    done.stop()
                raise
            started.append(child)

    def on_stop(self) -> None:
        """Stop every child, last-started first (each within its shutdown timeout)."""
        self._stop_children()

    def on_failure(self, error: BaseException) -> None:
        """Giving up (or an internal error): stop every child before the parent hears of it."""
        self._stop_children()

    def _stop_children(self) -> None:
        for child in reversed(list(self._cell.children.values())):
            child.stop()

    @handler
    def _child_exited(self, signal: ChildExited) -> None:
        child = self._cell.children.get(signal.name)
        if child is None or signal.incarnation != child.incarnation:
            return  # stale: that incarnation was already replaced
        if signal.source is not None and signal.source is not child:
            return  # stale: from a cell that held the name before this one
        self._handle_exit(child, signal.error)

    @handler
    def _restart_due(self, signal: RestartDue) -> None:
        self._restart(signal.names)

    def _handle_exit(self, child: Cell, error: BaseException | None) -> None:
        if isinstance(error, EscalationRequested):  # the child's directives: fail with it
            self.log.error("supervisor_escalating", child=child.name, error=str(error))
            raise ChildEscalated(self.name, child.name, error.error) from error.error
        spec = self.config
        children = self._cell.children
        plan = self._plan_for(child, error)
        reason = "normal" if error is None else f"{type(error).__name__}: {error}"
        if not plan.start and not plan.stop:
            for name in (*plan.remove, *plan.keep_stopped):
                self._retire_child(children[name], reason, remove=name in plan.remove)
            return
        now = self.system.clock()
        self._window, exceeded = self._window.add_restart(now, spec.intensity, spec.period)
        if exceeded:
            self._give_up(child, reason)
        for name in plan.stop:
            children[name].stop()
            _await_restart(children[name])
        for name in plan.remove:
            self._retire_child(children[name], reason, remove=True)
        state = self._backoff.get(child.name, BackoffState(0, None))
        # Jitter spreads restarts in time; it guards nothing secret.
        jitter = random.random()  # nosec B311
        delay, self._backoff[child.name] = next_backoff(spec.backoff, state, now, jitter)
        for name in plan.start:
            _await_restart(children[name])
        self.log.info(
            "supervisor_restarting",
            child=child.name,
            strategy=spec.strategy.value,
            restarting=list(plan.start),
            delay=round(delay, 6),
            reason=reason,
        )
        if delay <= 0:
            self._restart(plan.start)
        else:
            self._tokens += 1
            self.start_timer(("restart", self._tokens), RestartDue(plan.start, self._tokens), delay)

    def _plan_for(self, child: Cell, error: BaseException | None) -> RestartPlan:
        """What the strategy does about ``child``'s exit with ``error`` (None: normal)."""
        # Stopped for good by its directives: as a transient child that stopped normally
        # (kept in the tree, stopped; its siblings untouched; no restart counted).
        stopping = isinstance(error, StoppedByDirective)
        states = [
            ChildState(
                name,
                RestartType.TRANSIENT if stopping and cell is child else cell.spec.restart,
                cell is not child and cell.status is AgentStatus.STOPPED,
            )
            for name, cell in self._cell.children.items()
        ]
        abnormal = error is not None and not stopping
        return restart_plan(self.config.strategy, states, child.name, abnormal=abnormal)

    def _give_up(self, child: Cell, reason: str) -> NoReturn:
        """Raise :class:`RestartIntensityExceeded`: restarts came too often (counted, told
        as a runtime event and logged first)."""
        spec = self.config
        error = RestartIntensityExceeded(
            self.name,
            spec.intensity,
            spec.period,
            reason,
            child=child.name,
            setting=self._limit_setting(),
        )
        self.system.failures.escalated(self.name)
        self.system.events.publish(SupervisorGaveUp(supervisor=self.name, reason=str(error)))
        self.log.error(
            "supervisor_gave_up",
            supervisor=self.name,
            child=child.name,
            intensity=spec.intensity,
            period=spec.period,
            last_failure=reason,
            setting=error.setting,
            error=str(error),
        )
        raise error

    def _limit_setting(self) -> str | None:
        """Where this supervisor's restart limit is set, for the give-up message.

        None for a declared supervisor (the error names its own spec); a pool's
        limit is derived: one restart per worker within its parent's period.
        """
        if not self.system.routes.is_pool(self.name):
            return None
        parent = self._cell.parent
        owner = "the root supervisor" if parent is None else f"supervisor {parent.name!r}"
        return (
            f"shorten the period of {owner} (SupervisorSpec(period=...), or period: in "
            f"the wiring file): pool {self.name!r} allows max(1, size) restarts within "
            "its parent's period"
        )

    def _restart(self, names: tuple[str, ...]) -> None:
        children = self._cell.children
        for name in names:
            child = children.get(name)
            if child is None or child.status is not AgentStatus.RESTARTING:
                continue
            child.restarts += 1
            child.stats.restarts += 1
            try:
                child.start(self.system.config.start_timeout)
            except StartFailed as exc:
                self._handle_exit(child, exc)
                return
            self.log.info("agent_restarted", child=name, incarnation=child.incarnation)
            if _tracing.ON:
                attributes = {"vibe.agent": name, "vibe.incarnation": child.incarnation}
                _tracing.event("agent.restarted", attributes)
            self.system.events.publish(
                AgentRestarted(agent=name, incarnation=child.incarnation, supervisor=self.name)
            )

    def _retire_child(self, child: Cell, reason: str, *, remove: bool) -> None:
        child.stop()
        child.terminate(reason)
        if remove:
            del self._cell.children[child.name]
            self.system.forget(child)

    # -- live reload ---------------------------------------------------------

    @handler
    def _apply(self, signal: ApplySpec) -> ApplyReport:
        """Take ``signal.spec`` as this supervisor's spec, touching only what changed.

        A child that fails to start is reported in ``failed`` and handed to
        the normal failure handling (restart, backoff, or escalation).
        """
        cell = self._cell
        new = signal.spec
        diff = diff_children(self.config.children, new.children)
        new_specs = {spec.name: spec for spec in new.children}
        children = cell.children
        for name in diff.removed:
            self._retire_child(children[name], "removed by reload", remove=True)
        for name in reversed(diff.changed):
            self._replace_child(children[name], new_specs[name])
        report = ApplyReport(removed=diff.removed, changed=diff.changed, added=diff.added)
        for name in diff.nested:
            nested = new_specs[name]
            assert isinstance(nested, SupervisorSpec)  # diff_children nests supervisors only
            report = report.merge(self._apply_nested(children[name], nested))
        cell.spec = cell.config = new
        report = report.merge(ApplyReport(unchanged=diff.unchanged))
        fresh = set(diff.added) | set(diff.changed)
        for spec in new.children:
            child = children.get(spec.name)
            if child is None:
                try:
                    child = self.system.make_cell(spec, cell)
                except NameTaken as exc:  # a dynamic child took the name since apply() checked
                    report = report.merge(ApplyReport(failed=(f"{spec.name}: {exc}",)))
                    continue
            if spec.name in fresh:
                try:
                    child.start(self.system.config.start_timeout)
                except StartFailed as exc:
                    report = report.merge(ApplyReport(failed=(f"{spec.name}: {exc.reason}",)))
                    self._handle_exit(child, exc)
        order = [spec.name for spec in new.children]
        cell.children = {name: children[name] for name in order if name in children}
        self.log.info(
            "supervisor_reloaded", **{k: list(v) for k, v in structs.asdict(report).items()}
        )
        return report

    def _replace_child(self, child: Cell, spec: WorkerSpec | SupervisorSpec) -> None:
        """Stop ``child`` and give it its new spec; a pool or entity kind means a new cell."""
        old = next(s for s in self.config.children if s.name == child.name)
        child.stop()
        if (
            isinstance(spec, WorkerSpec)
            and spec.pool is None
            and spec.entity is None
            and isinstance(old, WorkerSpec)
            and old.pool is None
            and old.entity is None
        ):
            child.reconfigure(spec)
            child.status = AgentStatus.RESTARTING
        else:
            self._retire_child(child, "replaced by reload", remove=True)

    def _apply_nested(self, child: Cell, spec: SupervisorSpec) -> ApplyReport:
        if child.config == spec:
            return ApplyReport(unchanged=(spec.name, *child.descendants()))
        future = ReplyFuture(child.name, _NESTED_APPLY_TIMEOUT)
        child.mailbox.put_system(Envelope(ApplySpec(spec), future))
        reply = future.wait()
        if isinstance(reply, ApplyReport):
            return reply.merge(ApplyReport(changed=(spec.name,)))
        return ApplyReport(failed=(f"{spec.name}: {reply!r}",))


def _await_restart(child: Cell) -> None:
    """Mark ``child`` as waiting for its restart: its messages queue meanwhile.

    A transient child that had stopped normally (and so was terminated: its
    sends dead-lettered) and is now caught in a group restart takes messages
    into its mailbox again from here on, as any restarting child does.
    """
    if child.status is AgentStatus.STOPPED:
        child.deliver = child.mailbox.put
    child.status = AgentStatus.RESTARTING
