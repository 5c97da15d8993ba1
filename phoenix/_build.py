"""From a validated wiring to the runtime's specs, and the running system.

Start order honours ``depends_on`` within the left-to-right order: siblings
are reordered by a stable topological sort (a child moves after the siblings
it depends on; otherwise order is kept; :mod:`phoenix._order`). A dependency
on an agent elsewhere in the tree must start earlier in the depth-first start
order, else :func:`phoenix.load` reports it (and :func:`build`, for a Wiring
made otherwise). Stop order is the reverse (the runtime does that).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import cast

from phoenix._errors import WiringError, WiringProblem
from phoenix._load import Wiring, load
from phoenix._order import start_order
from phoenix._schema import SupervisorNode, WorkerNode
from vibe_actors import (
    ActorSystem,
    ApplyReport,
    EntitySpec,
    SupervisorSpec,
    SystemConfig,
    WorkerSpec,
)

__all__ = ["boot", "build", "reload"]


def build(wiring: Wiring) -> tuple[SupervisorSpec, SystemConfig]:
    """The runtime's root spec and system settings for ``wiring``.

    Raises :class:`WiringError` if a cross-subtree dependency cannot be met by
    the start order, or if siblings depend on each other in a cycle (refused by
    :func:`phoenix.load` already; only a Wiring made otherwise can hold one).
    """
    problems: list[WiringProblem] = []
    root = _supervisor(wiring.root, wiring, problems)
    _check_order(root, set(), problems, wiring)
    if problems:
        raise WiringError(problems)
    return root, wiring.system


def _shutdown(value: int | str) -> float | str:
    return value if isinstance(value, str) else value / 1000


def _supervisor(
    node: SupervisorNode, wiring: Wiring, problems: list[WiringProblem]
) -> SupervisorSpec:
    children = [
        _supervisor(c, wiring, problems)
        if isinstance(c, SupervisorNode)
        else _worker(c, wiring, problems)
        for c in _child_nodes(node)
    ]
    return SupervisorSpec(
        name=node.name,
        children=tuple(_ordered(children, node.name, problems, wiring.file)),
        strategy=node.strategy,
        intensity=node.intensity,
        period=node.period,
        backoff=node.backoff,
        restart=node.restart,
        shutdown=_shutdown(node.shutdown),
        depends_on=tuple(node.depends_on),
        dynamic=node.dynamic,
        max_children=node.max_children,
        templates=wiring.templates.get(node.name, ()),
    )


def _child_nodes(node: SupervisorNode) -> list[WorkerNode | SupervisorNode]:
    # The schema types ``children`` as dicts (msgspec cannot decode an untagged union of
    # structs); decode_node has replaced each one with its WorkerNode or SupervisorNode.
    return cast("list[WorkerNode | SupervisorNode]", node.children)


def _worker(node: WorkerNode, wiring: Wiring, problems: list[WiringProblem]) -> WorkerSpec:
    agent = wiring.agents[node.name]
    if node.placement == "ray":
        agent = _placed(node, agent, wiring, problems)
    entity = node.entity
    return WorkerSpec(
        name=node.name,
        agent=agent,
        config=wiring.configs.get(node.name),
        restart=node.restart,
        shutdown=_shutdown(node.shutdown),
        mailbox=node.mailbox,
        pool=node.pool,
        entity=None
        if entity is None
        else EntitySpec(
            shards=entity.shards,
            passivate_after=entity.passivate_after,
            max_active=entity.max_active,
            state=entity.state,
        ),
        depends_on=tuple(node.depends_on),
        directives=wiring.directives.get(node.name) or None,
    )


def _placed(node: WorkerNode, agent: type, wiring: Wiring, problems: list[WiringProblem]) -> type:
    """The Ray proxy of ``agent`` (Ray itself is imported here, and only here)."""
    from vibe_actors.ray import placed

    try:
        return placed(agent, wiring.ray)
    except (TypeError, RuntimeError) as exc:  # reply types Ray cannot carry; Ray missing
        problems.append(WiringProblem(wiring.file, 1, 1, f"$..{node.name}.placement", str(exc)))
        return agent


def _ordered(
    children: list[WorkerSpec | SupervisorSpec],
    parent: str,
    problems: list[WiringProblem],
    file: str,
) -> list[WorkerSpec | SupervisorSpec]:
    """Siblings in start order (:func:`phoenix._order.start_order`). A cycle was refused
    when loading; a Wiring built by hand may still hold one: a problem, never an
    endless loop."""
    order = start_order([(child.name, child.depends_on) for child in children])
    if len(order) < len(children):
        placed = set(order)
        stuck = [c.name for position, c in enumerate(children) if position not in placed]
        problems.append(
            WiringProblem(
                file,
                1,
                1,
                f"$..{parent}.children",
                f"dependency cycle among the children of '{parent}': {', '.join(stuck)}",
            )
        )
        return children
    return [children[position] for position in order]


def _check_order(
    spec: SupervisorSpec, started: set[str], problems: list[WiringProblem], wiring: Wiring
) -> None:
    """Every dependency outside a supervisor's children has started before it, in the
    depth-first start order (``started`` holds the names started so far)."""
    started.add(spec.name)
    siblings = {c.name for c in spec.children}  # met by _ordered, whatever the file's order
    for child in spec.children:
        for target in child.depends_on:
            if target not in started and target not in siblings:
                problems.append(
                    WiringProblem(
                        wiring.file,
                        1,
                        1,
                        f"$..{child.name}.depends_on",
                        f"'{child.name}' depends on '{target}', which starts later "
                        "(in another subtree); move it earlier in the file",
                    )
                )
        if isinstance(child, SupervisorSpec):
            _check_order(child, started, problems, wiring)
        else:
            started.add(child.name)
            if child.pool is not None:
                started.update(f"{child.name}.{i}" for i in range(1, child.pool.size + 1))


def boot(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None, **overrides: object
) -> ActorSystem:
    """Load, validate, build and start the system described by ``path``.

    ``overrides`` replace SystemConfig fields (``data_dir=...``). Raises
    :class:`WiringError` or :class:`vibe_actors.StartFailed`.
    """
    import msgspec

    root, system_config = build(load(path, environ))
    if overrides:
        system_config = msgspec.structs.replace(system_config, **overrides)
    return ActorSystem(root, system_config).start()


def reload(
    system: ActorSystem, path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> ApplyReport:
    """Live reload: apply the difference between the running tree and ``path``.

    An invalid file raises :class:`WiringError` and changes nothing. System
    settings (the ``system:`` block) are not changed by a reload.
    """
    root, _ = build(load(path, environ))
    return system.apply(root)
