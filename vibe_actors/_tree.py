"""The supervision tree as data: validating specs, pool supervisors, snapshots.

Pure functions over specs and cells, used by :class:`~vibe_actors.ActorSystem`:
:func:`validate_tree` fails fast on what would only fail later,
:func:`pool_supervisor` turns a pooled worker spec into the one_for_one
supervisor of its workers, and :func:`snapshot` reads a cell subtree into
immutable :class:`TreeNode` values.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import msgspec

from vibe_actors._agent import Agent
from vibe_actors._entity import Entity
from vibe_actors._handlers import coerce_config
from vibe_actors._spec import BackoffSpec, Strategy, SupervisorSpec, WorkerSpec

if TYPE_CHECKING:
    from vibe_actors._cell import Cell

__all__ = ["TreeNode", "all_specs", "pool_supervisor", "snapshot", "validate_tree"]


class TreeNode(msgspec.Struct, frozen=True):
    """One node of :meth:`ActorSystem.tree`: a snapshot, not a live view."""

    name: str
    kind: str  #: "supervisor", "pool", "entities" (an entity kind) or "worker"
    agent: str  #: the Agent class, ``module:Class``
    status: str
    restarts: int
    incarnation: int
    mailbox_depth: int
    last_failure: str | None
    restart: str
    strategy: str | None = None
    children: tuple[TreeNode, ...] = ()
    #: Why the agent refuses work while running (``Agent.degrade``), else None.
    degraded: str | None = None
    #: Why the agent cannot do all its work while it serves (``Agent.impair``), else None.
    impaired: str | None = None


def all_specs(root: SupervisorSpec) -> Iterator[WorkerSpec | SupervisorSpec]:
    yield root
    for child in root.children:
        if isinstance(child, SupervisorSpec):
            yield from all_specs(child)
        else:
            yield child


def validate_tree(root: SupervisorSpec) -> None:
    """Fail fast on what would only fail later: names are one namespace, agents are Agents."""
    seen: dict[str, str] = {}

    def claim(name: str, where: str) -> None:
        if name in seen:
            raise ValueError(f"duplicate agent name {name!r} (at {where} and {seen[name]})")
        seen[name] = where

    def visit(spec: WorkerSpec | SupervisorSpec, path: str) -> None:
        here = f"{path}/{spec.name}" if path else spec.name
        claim(spec.name, here)
        if isinstance(spec, SupervisorSpec):
            for child in spec.children:
                visit(child, here)
            return
        if spec.entity is not None:
            if not (isinstance(spec.agent, type) and issubclass(spec.agent, Entity)):
                raise TypeError(
                    f"{here}: entity agent must be an Entity subclass, got {spec.agent!r}"
                )
            for index in range(1, spec.entity.shards + 1):
                claim(f"{spec.name}.{index}", f"{here} (entity shard)")
        elif not (isinstance(spec.agent, type) and issubclass(spec.agent, Agent)):
            raise TypeError(f"{here}: agent must be an Agent subclass, got {spec.agent!r}")
        try:
            coerce_config(spec.agent, spec.config)
        except msgspec.ValidationError as exc:
            raise ValueError(f"{here}: config for {spec.agent.__name__}: {exc}") from exc
        if spec.pool is not None:
            for index in range(1, spec.pool.size + 1):
                claim(f"{spec.name}.{index}", f"{here} (pool worker)")

    visit(root, "")


def pool_supervisor(spec: WorkerSpec, parent: Cell | None) -> SupervisorSpec:
    assert spec.pool is not None
    workers = tuple(
        WorkerSpec(
            name=f"{spec.name}.{index}",
            agent=spec.agent,
            config=spec.config,
            restart=spec.restart,
            shutdown=spec.shutdown,
            mailbox=spec.mailbox,
        )
        for index in range(1, spec.pool.size + 1)
    )
    parent_spec = (
        parent.spec if parent is not None and isinstance(parent.spec, SupervisorSpec) else None
    )
    return SupervisorSpec(
        name=spec.name,
        children=workers,
        strategy=Strategy.ONE_FOR_ONE,
        intensity=max(1, spec.pool.size),
        period=parent_spec.period if parent_spec else 5.0,
        backoff=parent_spec.backoff if parent_spec else BackoffSpec(),
        restart=spec.restart,
        depends_on=spec.depends_on,
    )


def snapshot(cell: Cell) -> TreeNode:
    spec = cell.spec
    is_supervisor = isinstance(spec, SupervisorSpec)
    agent_class: type = cell.agent_class
    router = cell.system.routes.entity_kind(cell.name)
    if router is not None:
        kind = "entities"
        agent_class = router.entity_class
    elif cell.system.routes.is_pool(cell.name):
        kind = "pool"
    else:
        kind = "supervisor" if is_supervisor else "worker"
    return TreeNode(
        name=cell.name,
        kind=kind,
        agent=f"{agent_class.__module__}:{agent_class.__qualname__}",
        status=cell.status.value,
        restarts=cell.restarts,
        incarnation=cell.incarnation,
        mailbox_depth=cell.mailbox.qsize(),
        last_failure=cell.last_failure,
        restart=spec.restart.value,
        strategy=spec.strategy.value if isinstance(spec, SupervisorSpec) else None,
        children=tuple(snapshot(child) for child in list(cell.children.values())),
        degraded=cell.degraded,
        impaired=cell.impaired,
    )
