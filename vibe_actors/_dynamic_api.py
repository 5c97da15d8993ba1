"""Asking a dynamic supervisor to start or terminate a child, from any thread or coroutine.

What :meth:`ActorSystem.start_child` and :meth:`ActorSystem.terminate_child`
do (the supervisor's side is :mod:`vibe_actors._dynamic`). A request is
checked where it is made (the system runs, the supervisor exists and is
dynamic, the spec is one worker), then sent to the supervisor's mailbox with
a deadline and answered by the supervisor's thread: a request still queued
at its deadline is not carried out (the caller got
:class:`DeadlineExceededError`); one that started before it is carried out
even if its answer comes too late.

Calls that could only wait for themselves are refused at once with
:class:`SelfAsk`, nothing sent: from the supervisor's own thread, and from an
agent in its ``on_start`` below that supervisor (the supervisor waits for
that start to finish). A child terminating itself (or from a thread of its
own subtree) is not refused: the request is sent and the call returns at
once; the child stops once its current message is handled.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Protocol

from vibe_actors._asyncio import LoopBridge
from vibe_actors._dynamic import StartChild, TerminateChild
from vibe_actors._envelope import Envelope
from vibe_actors._errors import NotDynamic, SelfAsk, SystemNotRunning
from vibe_actors._future import ReplyFuture, raise_for_error
from vibe_actors._incarnation import serving_incarnation
from vibe_actors._spec import SupervisorSpec, WorkerSpec
from vibe_actors._tree import all_specs, is_dynamic, validate_tree

if TYPE_CHECKING:
    from vibe_actors._cell import Cell
    from vibe_actors._ref import Ref
    from vibe_actors._system_config import SystemConfig

__all__ = [
    "RunningTree",
    "check_reload",
    "dynamic_parent",
    "dynamic_supervisor",
    "start_child",
    "start_child_async",
    "terminate_child",
    "terminate_child_async",
]


class RunningTree(Protocol):
    """The system, as starting and stopping dynamic children uses it
    (:class:`~vibe_actors.ActorSystem` is one; it mixes this module's API in)."""

    @property
    def config(self) -> SystemConfig: ...

    @property
    def running(self) -> bool: ...

    def cell(self, name: str) -> Cell:
        """Raises UnknownAgent."""
        ...

    def cells(self) -> list[Cell]: ...


def dynamic_supervisor(system: RunningTree, name: str) -> Cell:
    """The cell of dynamic supervisor ``name``. Raises UnknownAgent, :class:`NotDynamic`."""
    cell = system.cell(name)
    if not is_dynamic(cell.spec):
        raise NotDynamic(name, "supervisor")
    return cell


def dynamic_parent(system: RunningTree, name: str) -> Cell:
    """The dynamic supervisor's cell of child ``name``. Raises UnknownAgent,
    :class:`NotDynamic` (``name`` is declared in the tree)."""
    parent = system.cell(name).parent
    if parent is None or not is_dynamic(parent.spec):
        raise NotDynamic(name, "child")
    return parent


def _check_spec(spec: Any) -> None:
    if not isinstance(spec, WorkerSpec):
        raise TypeError(f"a dynamic child is a WorkerSpec, got {type(spec).__name__}")
    if spec.pool is not None:
        raise ValueError(f"{spec.name!r}: a dynamic child is one worker, not a pool")
    if spec.depends_on:
        raise ValueError(f"{spec.name!r}: a dynamic child has no depends_on (it starts now)")
    validate_tree(
        SupervisorSpec(name="start_child", children=(spec,))
    )  # an Agent, its config valid


def _check_running(system: RunningTree) -> None:
    if not system.running:
        raise SystemNotRunning("start_child and terminate_child need a running system")


def _check_caller(supervisor: Cell) -> None:
    """SelfAsk if the calling thread is one the supervisor could be waiting for."""
    host = serving_incarnation()
    if host is None:
        return
    if host.cell is supervisor:
        raise SelfAsk(supervisor.name)
    if host.started.is_set():
        return
    ancestor = host.cell.parent  # in on_start: is the supervisor waiting for this start?
    while ancestor is not None:
        if ancestor is supervisor:
            raise SelfAsk(host.cell.name, supervisor.name)
        ancestor = ancestor.parent


def _in_subtree_of(cell: Cell) -> bool:
    """Whether the calling thread is ``cell``'s own incarnation or one below it."""
    host = serving_incarnation()
    current = None if host is None else host.cell
    while current is not None:
        if current is cell:
            return True
        current = current.parent
    return False


def _outcome(reply: Any) -> Any:
    if isinstance(reply, BaseException):
        raise reply
    return raise_for_error(reply)


def _envelope(signal: Any, slot: Any, request_id: str | None, timeout: float) -> Envelope:
    return Envelope(signal, slot, request_id, None, time.monotonic() + timeout)


def _start_timeout(system: RunningTree, timeout: float | None) -> float:
    if timeout is not None:
        return timeout
    return system.config.start_timeout + system.config.ask_timeout


def _stop_timeout(system: RunningTree, child: Cell, timeout: float | None) -> float:
    if timeout is not None:
        return timeout
    shutdown = child.spec.shutdown
    return system.config.ask_timeout + (shutdown if isinstance(shutdown, float | int) else 0.0)


def start_child(
    system: RunningTree,
    supervisor: str,
    spec: WorkerSpec,
    *,
    timeout: float | None = None,
    request_id: str | None = None,
) -> Ref[Any]:
    """See :meth:`ActorSystem.start_child`."""
    _check_running(system)
    _check_spec(spec)
    cell = dynamic_supervisor(system, supervisor)
    _check_caller(cell)
    limit = _start_timeout(system, timeout)
    future = ReplyFuture(supervisor, limit)
    cell.deliver(_envelope(StartChild(spec, request_id), future, request_id, limit))
    ref: Ref[Any] = _outcome(future.wait())
    return ref


async def start_child_async(
    system: RunningTree,
    supervisor: str,
    spec: WorkerSpec,
    *,
    timeout: float | None = None,
    request_id: str | None = None,
) -> Ref[Any]:
    """See :meth:`ActorSystem.start_child_async`."""
    _check_running(system)
    _check_spec(spec)
    cell = dynamic_supervisor(system, supervisor)
    limit = _start_timeout(system, timeout)
    ref: Ref[Any] = _outcome(await _on_loop(cell, StartChild(spec, request_id), request_id, limit))
    return ref


def terminate_child(
    system: RunningTree, name: str, *, timeout: float | None = None, request_id: str | None = None
) -> None:
    """See :meth:`ActorSystem.terminate_child`."""
    _check_running(system)
    parent = dynamic_parent(system, name)
    child = system.cell(name)
    limit = _stop_timeout(system, child, timeout)
    if _in_subtree_of(child):  # it would wait for itself: ask, and let it finish its message
        parent.deliver(_envelope(TerminateChild(name, request_id), None, request_id, limit))
        return
    _check_caller(parent)
    future = ReplyFuture(parent.name, limit)
    parent.deliver(_envelope(TerminateChild(name, request_id), future, request_id, limit))
    _outcome(future.wait())


async def terminate_child_async(
    system: RunningTree, name: str, *, timeout: float | None = None, request_id: str | None = None
) -> None:
    """See :meth:`ActorSystem.terminate_child_async`."""
    _check_running(system)
    parent = dynamic_parent(system, name)
    limit = _stop_timeout(system, system.cell(name), timeout)
    _outcome(await _on_loop(parent, TerminateChild(name, request_id), request_id, limit))


async def _on_loop(cell: Cell, signal: Any, request_id: str | None, timeout: float) -> Any:
    """Send ``signal`` to ``cell`` and await its answer without blocking the loop."""
    bridge = LoopBridge.of(asyncio.get_running_loop())
    slot = bridge.open(cell.name, timeout)
    try:
        cell.deliver(Envelope(signal, slot, request_id, None, slot.deadline))
        return await slot.waiter
    finally:
        bridge.close(slot)


def check_reload(system: RunningTree, current: SupervisorSpec, new_root: SupervisorSpec) -> None:
    """Refuse a reload that the running dynamic children would make fail (ValueError).

    The root cannot turn dynamic or static (it cannot be restarted by a
    parent), and no name of the new tree may be held by a running dynamic
    child (terminate it first). Checked before the reload starts; a child
    started meanwhile under a clashing name makes that part of the reload
    fail (reported in ``ApplyReport.failed``).
    """
    if current.dynamic != new_root.dynamic:
        raise ValueError(f"the root {current.name!r} cannot change whether it is dynamic")
    names = set()
    for spec in all_specs(new_root):
        names.add(spec.name)
        if isinstance(spec, WorkerSpec) and spec.pool is not None:
            names.update(f"{spec.name}.{i}" for i in range(1, spec.pool.size + 1))
    for cell in system.cells():
        parent = cell.parent
        if parent is not None and is_dynamic(parent.spec) and cell.name in names:
            raise ValueError(
                f"{cell.name!r} is the name of a dynamic child of {parent.name!r}: "
                "terminate it before reloading a tree that declares that name"
            )
