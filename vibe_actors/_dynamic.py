"""Dynamic supervisors: children started and stopped at run time (Elixir's DynamicSupervisor).

A :class:`DynamicSupervisor` runs a ``SupervisorSpec(dynamic=True)``. It has
no static children and is one_for_one; everything else is a supervisor's:
restart types, intensity and period, backoff, escalation, shutdown in reverse
start order. Requests come as internal signals in its mailbox, so they are
handled in its own thread, one at a time, between restarts:

* :class:`StartChild`: refused with :class:`SupervisorFull` at ``max_children``
  (restarting children count), with :class:`NameTaken` if any agent of the
  system has the name; else the child's cell is made and started, and the
  request is answered once the child's ``on_start`` returned (its
  :class:`~vibe_actors.Ref`), or with :class:`StartFailed` (the child is
  forgotten: its name is free again). A start failure is not a restart: it
  does not count towards the intensity, as in OTP.
* :class:`TerminateChild`: the child is stopped (within its ``shutdown``),
  terminated (watchers get ``Terminated``, queued messages become dead
  letters) and forgotten.

A child that will not be restarted (temporary; transient after a normal
stop) is removed as well, as DynamicSupervisor does: its name is free again.
A dynamic supervisor that restarts (it gave up, or a sibling's failure
restarted it) starts empty: the children of its previous incarnation were
stopped with it and are terminated and forgotten, as in OTP, where they die
with the supervisor process. A live reload that changes its settings keeps
its children (OTP's code change): the new ``max_children`` and
``templates`` apply to later starts only.

The request side (any thread, asyncio) is :mod:`vibe_actors._dynamic_api`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from vibe_actors._errors import NameTaken, StartFailed, SupervisorFull, UnknownAgent
from vibe_actors._events import DynamicChildStarted, DynamicChildTerminated
from vibe_actors._handlers import handler
from vibe_actors._ref import Ref
from vibe_actors._reload import ApplyReport, ApplySpec
from vibe_actors._supervisor import Supervisor

if TYPE_CHECKING:
    from vibe_actors._cell import Cell
    from vibe_actors._spec import WorkerSpec

__all__ = ["DynamicSupervisor", "StartChild", "TerminateChild"]

_log = structlog.get_logger("vibe_actors.dynamic")

#: What a start request may be answered with instead of a Ref.
StartRefusal = SupervisorFull | NameTaken | StartFailed


class StartChild:
    """Internal signal: start ``spec`` as a child (answered with a Ref or an exception)."""

    __slots__ = ("request_id", "spec")

    def __init__(self, spec: WorkerSpec, request_id: str | None = None) -> None:
        self.spec = spec
        self.request_id = request_id


class TerminateChild:
    """Internal signal: stop child ``name`` for good (answered with None or an exception)."""

    __slots__ = ("name", "request_id")

    def __init__(self, name: str, request_id: str | None = None) -> None:
        self.name = name
        self.request_id = request_id


class DynamicSupervisor(Supervisor):
    """Runs the children started at run time under a dynamic spec; see the module docstring."""

    def on_start(self) -> None:
        """Start empty: a previous incarnation's children are terminated and forgotten."""
        super().on_start()  # no static children: this sets the restart bookkeeping up
        for child in reversed(list(self._cell.children.values())):
            self._retire_child(child, "supervisor restarted", remove=True)

    @handler
    def _start_child(self, request: StartChild) -> Ref | StartRefusal:
        spec = request.spec
        system = self.system
        limit = self.config.max_children
        if limit is not None and len(self._cell.children) >= limit:
            return self._refused(request, SupervisorFull(self.name, limit), "full")
        try:
            child = system.make_cell(spec, self._cell, exclusive=True)
        except NameTaken as exc:
            return self._refused(request, exc, "name_taken")
        try:
            child.start(system.config.start_timeout)
        except StartFailed as exc:
            child.terminate(f"start failed: {exc.reason}")
            del self._cell.children[child.name]
            system.forget(child)
            return self._refused(request, exc, "start_failed")
        system.dynamic_starts.count(self.name, "started")
        agent_class = f"{spec.agent.__module__}:{spec.agent.__qualname__}"
        _log.info(
            "child_started",
            agent=spec.name,
            supervisor=self.name,
            agent_class=agent_class,
            restart=spec.restart.value,
            children=len(self._cell.children),
            request_id=request.request_id,
        )
        system.events.publish(
            DynamicChildStarted(
                agent=spec.name,
                supervisor=self.name,
                agent_class=agent_class,
                request_id=request.request_id,
            )
        )
        return Ref(system, spec.name)

    def _refused(self, request: StartChild, error: StartRefusal, outcome: str) -> StartRefusal:
        self.system.dynamic_starts.count(self.name, outcome)
        _log.warning(
            "child_start_refused",
            agent=request.spec.name,
            supervisor=self.name,
            outcome=outcome,
            error=str(error),
            request_id=request.request_id,
        )
        return error

    @handler
    def _terminate_child(self, request: TerminateChild) -> UnknownAgent | None:
        child = self._cell.children.get(request.name)
        if child is None:  # removed since the request was sent (exited, terminated)
            return UnknownAgent(request.name)
        self._retire_child(child, "terminated", remove=True, request_id=request.request_id)
        return None

    def _retire_child(
        self, child: Cell, reason: str, *, remove: bool, request_id: str | None = None
    ) -> None:
        """Stop ``child`` for good and forget it, whatever ``remove`` says: a dynamic
        child that will not be restarted leaves the supervisor (its name is free)."""
        super()._retire_child(child, reason, remove=True)
        _log.info(
            "child_terminated",
            agent=child.name,
            supervisor=self.name,
            reason=reason,
            children=len(self._cell.children),
            request_id=request_id,
        )
        self.system.events.publish(
            DynamicChildTerminated(
                agent=child.name, supervisor=self.name, reason=reason, request_id=request_id
            )
        )

    @handler
    def _apply(self, signal: ApplySpec) -> ApplyReport:
        """Take the new settings in place; every child keeps running (OTP's code change)."""
        cell = self._cell
        cell.spec = cell.config = signal.spec
        kept = tuple(cell.children)
        self.log.info("supervisor_reloaded", dynamic=True, kept=list(kept))
        return ApplyReport(unchanged=kept)
