"""The dynamic supervision part of the embedding API (:class:`~vibe_actors.ActorSystem`):
children started and stopped at run time. See :mod:`vibe_actors._dynamic` and
:mod:`vibe_actors._dynamic_api`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vibe_actors import _dynamic_api as dynamic
from vibe_actors._spec import SupervisorSpec, WorkerSpec
from vibe_actors._tree import template_classes

if TYPE_CHECKING:
    from vibe_actors._agent import Agent
    from vibe_actors._ref import Ref

__all__ = ["DynamicChildren"]


class DynamicChildren:
    """Mixed into :class:`~vibe_actors.ActorSystem` (its methods take it as a
    :class:`~vibe_actors._dynamic_api.RunningTree`)."""

    def start_child(
        self: dynamic.RunningTree,
        supervisor: str,
        spec: WorkerSpec,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> Ref[Any]:
        """Start ``spec`` as a child of dynamic supervisor ``supervisor``; its Ref once started.

        From any thread, a handler included. Returns after the child's
        ``on_start`` returned. Raises :class:`UnknownAgent` (no such supervisor),
        :class:`NotDynamic` (not a dynamic one), :class:`SupervisorFull` (at its
        ``max_children``), :class:`NameTaken`, :class:`StartFailed` (the child's
        ``on_start`` raised or did not confirm in time; the cause is chained and
        the name is free again), :class:`DeadlineExceededError` after ``timeout``
        (default: ``start_timeout + ask_timeout``), :class:`UnavailableError` if
        the supervisor has stopped for good, :class:`SelfAsk` if called from the
        supervisor's thread or from ``on_start`` of an agent below it,
        :class:`SystemNotRunning`; TypeError/ValueError for a spec that is not one
        valid worker (a pool, ``depends_on``, not an Agent, a bad config).
        """
        return dynamic.start_child(self, supervisor, spec, timeout=timeout, request_id=request_id)

    async def start_child_async(
        self: dynamic.RunningTree,
        supervisor: str,
        spec: WorkerSpec,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> Ref[Any]:
        """:meth:`start_child` for asyncio code: awaiting never blocks the event loop."""
        return await dynamic.start_child_async(
            self, supervisor, spec, timeout=timeout, request_id=request_id
        )

    def terminate_child(
        self: dynamic.RunningTree,
        name: str,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> None:
        """Stop dynamic child ``name`` for good (within its shutdown) and free its name.

        From any thread; returns once it is stopped. From the child itself (its
        own thread, or one below it) the request is sent and the call returns
        at once: the child stops after its current message. Raises
        :class:`UnknownAgent`, :class:`NotDynamic` (an agent declared in the
        tree is never stopped this way), :class:`DeadlineExceededError` after
        ``timeout`` (default: ``ask_timeout`` plus the child's shutdown),
        :class:`SelfAsk` from the supervisor's thread, :class:`SystemNotRunning`.
        """
        dynamic.terminate_child(self, name, timeout=timeout, request_id=request_id)

    async def terminate_child_async(
        self: dynamic.RunningTree,
        name: str,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> None:
        """:meth:`terminate_child` for asyncio code: awaiting never blocks the event loop."""
        await dynamic.terminate_child_async(self, name, timeout=timeout, request_id=request_id)

    def dynamic_templates(self: dynamic.RunningTree, supervisor: str) -> dict[str, type[Agent]]:
        """The templates of dynamic supervisor ``supervisor`` by class name (what HTTP may start).

        Raises :class:`UnknownAgent`, :class:`NotDynamic`.
        """
        spec = dynamic.dynamic_supervisor(self, supervisor).spec
        assert isinstance(spec, SupervisorSpec)  # dynamic_supervisor checked it
        return template_classes(spec)
