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
from vibe_actors._imports import resolve_import
from vibe_actors._spec import BackoffSpec, Strategy, SupervisorSpec, WorkerSpec

if TYPE_CHECKING:
    from vibe_actors._cell import Cell
    from vibe_actors._route_table import RouteTable

__all__ = [
    "TreeNode",
    "all_specs",
    "is_dynamic",
    "pool_supervisor",
    "snapshot",
    "template_classes",
    "validate_tree",
]


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
    #: Started at run time by a dynamic supervisor (``ActorSystem.start_child``); for a
    #: supervisor: it is a dynamic one.
    dynamic: bool = False


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
            if spec.dynamic:
                try:
                    template_classes(spec)
                except TypeError as exc:
                    raise TypeError(f"{here}: templates: {exc}") from exc
                except ValueError as exc:  # two of one class name; an import string
                    raise ValueError(f"{here}: templates: {exc}") from exc
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


def is_dynamic(spec: WorkerSpec | SupervisorSpec) -> bool:
    """Whether ``spec`` is a dynamic supervisor's (``SupervisorSpec(dynamic=True)``)."""
    return isinstance(spec, SupervisorSpec) and spec.dynamic


def template_classes(spec: SupervisorSpec) -> dict[str, type[Agent]]:
    """A dynamic supervisor's templates by class name, import strings resolved.

    Raises TypeError if one is not an Agent subclass, ValueError if two share
    a class name (the name is how a client picks one), and
    :class:`ImportStringError` (a ValueError) for a string that does not resolve.
    """
    found: dict[str, type[Agent]] = {}
    for template in spec.templates:
        value = resolve_import(template) if isinstance(template, str) else template
        if not (isinstance(value, type) and issubclass(value, Agent)):
            raise TypeError(f"a template must be an Agent subclass, got {template!r}")
        other = found.get(value.__name__)
        if other is not None and other is not value:
            raise ValueError(
                f"two templates are named {value.__name__!r} ({_qualified(other)} and "
                f"{_qualified(value)}): a client names a template by its class name"
            )
        found[value.__name__] = value
    return found


def _qualified(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


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


def snapshot(cell: Cell, routes: RouteTable) -> TreeNode:
    """The tree below ``cell``, as it is now; ``routes`` tells pools and entity kinds."""
    spec = cell.spec
    is_supervisor = isinstance(spec, SupervisorSpec)
    agent_class: type = cell.agent_class
    router = routes.entity_kind(cell.name)
    if router is not None:
        kind = "entities"
        agent_class = router.entity_class
    elif routes.is_pool(cell.name):
        kind = "pool"
    else:
        kind = "supervisor" if is_supervisor else "worker"
    return TreeNode(
        name=cell.name,
        kind=kind,
        agent=_qualified(agent_class),
        status=cell.status.value,
        restarts=cell.restarts,
        incarnation=cell.incarnation,
        mailbox_depth=cell.mailbox.qsize(),
        last_failure=cell.last_failure,
        restart=spec.restart.value,
        strategy=spec.strategy.value if isinstance(spec, SupervisorSpec) else None,
        children=tuple(snapshot(child, routes) for child in list(cell.children.values())),
        degraded=cell.degraded,
        impaired=cell.impaired,
        dynamic=is_dynamic(spec) or (cell.parent is not None and is_dynamic(cell.parent.spec)),
    )
