"""Load a wiring file: parse, decode, then the semantic checks OTP's ``valid*`` make.

Everything that is wrong is reported together, as a :class:`WiringError`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

from phoenix._decode import INVALID, decode_node, decode_struct
from phoenix._directives import resolve_directives
from phoenix._dynamic import check_dynamic
from phoenix._errors import WiringError, WiringProblem
from phoenix._order import start_order
from phoenix._schema import SupervisorNode, WiringFile, WorkerNode
from phoenix._yaml import Document, parse
from vibe_actors import (
    Agent,
    Directive,
    Entity,
    ImportModuleFailed,
    ImportModuleNotFound,
    ImportStringError,
    MalformedImportString,
    SystemConfig,
    resolve_import,
)
from vibe_actors.ray import INSTALL_HINT, RaySettings, ray_available
from vibe_actors.ray._host import reply_targets
from vibe_actors.store import StoreUrlError, parse_store_url

__all__ = ["Wiring", "load", "load_text"]


class Wiring(msgspec.Struct, frozen=True):
    """A validated wiring file, ready for :func:`phoenix.build`."""

    file: str
    system: SystemConfig
    root: SupervisorNode
    #: Worker name -> its Agent class and its decoded config.
    agents: dict[str, type]
    configs: dict[str, Any]
    #: Paths whose values came from the environment (never shown).
    secrets: frozenset[str]
    #: The ``ray:`` settings (used by ``placement: ray`` workers).
    ray: RaySettings = RaySettings()
    #: Dynamic supervisor name -> its templates (Agent classes).
    templates: dict[str, tuple[type, ...]] = {}
    #: Worker name -> its directives (exception class -> Directive).
    directives: dict[str, dict[type, Directive]] = {}


def load(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Wiring:
    """Read and validate ``path``; raises :class:`WiringError` listing every problem.

    A file that cannot be read is one problem at ``1:1``.
    """
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise WiringError([_problem(name, f"cannot read the file: {reason}")]) from exc
    return load_text(text, name, environ)


def load_text(
    text: str, file: str = "wiring.yaml", environ: Mapping[str, str] | None = None
) -> Wiring:
    """Like :func:`load`, from a string (``file`` names it in messages)."""
    doc = parse(text, file, environ)
    if not doc.parsed:
        raise WiringError(doc.problems)
    read = len(doc.problems)  # an unset variable or a refused tag: reported, and read on
    top = decode_struct(doc.value, WiringFile, "$", doc, skip=("root",))
    raw_root = doc.value.get("root") if isinstance(doc.value, dict) else None
    root = decode_node(raw_root, "$.root", doc)
    if isinstance(root, WorkerNode):
        doc.problem("$.root", "the root must be a supervisor (give it 'children')")
    # The semantic checks read the raw tree, so they run even where decoding failed:
    # every problem of the file is reported in one run.
    nodes = list(_raw_nodes(raw_root, "$.root"))
    _check_names(nodes, doc)
    _check_dependencies(nodes, doc)
    _check_start_order(raw_root, "$.root", {node.name for node in nodes}, set(), doc)
    agents, configs = _resolve_agents(nodes, doc)
    templates = check_dynamic(raw_root, "$.root", doc, _import)
    directives = resolve_directives(raw_root, "$.root", doc)
    _check_ray(nodes, agents, doc)
    if top is not INVALID:
        _check_store(top.system.store, doc)
    if doc.problems or top is INVALID or not isinstance(root, SupervisorNode):
        # What stands in for an unreadable value has its problem already: no second one.
        found = doc.problems[read:]
        raise WiringError(doc.problems[:read] + [p for p in found if doc.readable(p.path)])
    secrets = frozenset(doc.secrets)
    return Wiring(file, top.system, root, agents, configs, secrets, top.ray, templates, directives)


class _Raw(msgspec.Struct, frozen=True):
    """What the semantic checks need of one node, read from the raw YAML."""

    name: str
    path: str
    depends_on: list[str]
    agent: str | None
    pool_size: int
    config: Any
    placement: Any = "local"
    #: Where ``agent`` was written (``.agent``, or ``.entity.agent`` for an entity kind).
    agent_path: str = ".agent"
    entity: bool = False
    #: An entity kind's ``state`` as written (``memory`` when not written).
    state: Any = "memory"


def _raw_nodes(value: Any, path: str) -> Iterator[_Raw]:
    if not isinstance(value, dict):
        return
    name = value.get("name")
    if isinstance(name, str):
        depends = value.get("depends_on", [])
        pool = value.get("pool")
        size = pool.get("size") if isinstance(pool, dict) else 0
        agent = value.get("agent")
        entity = value.get("entity")
        if isinstance(entity, dict):
            agent = entity.get("agent")
            size = entity.get("shards", 8)
        yield _Raw(
            name=name,
            path=path,
            depends_on=[d for d in depends if isinstance(d, str)]
            if isinstance(depends, list)
            else [],
            agent=agent if isinstance(agent, str) else None,
            pool_size=size if isinstance(size, int) and 0 < size <= 10_000 else 0,
            config=value.get("config"),
            placement=value.get("placement", "local"),
            agent_path=".entity.agent" if isinstance(entity, dict) else ".agent",
            entity=isinstance(entity, dict),
            state=entity.get("state", "memory") if isinstance(entity, dict) else "memory",
        )
    children = value.get("children", [])
    if isinstance(children, list):
        for index, child in enumerate(children):
            yield from _raw_nodes(child, f"{path}.children[{index}]")


def _check_store(url: str, doc: Document) -> None:
    """``system.store`` must name a backend this version has (see vibe_actors.store)."""
    try:
        parse_store_url(url)
    except StoreUrlError as exc:
        doc.problem("$.system.store", str(exc))


def _problem(file: str, message: str) -> WiringProblem:
    return WiringProblem(file, 1, 1, "$", message)


def _check_ray(nodes: list[_Raw], agents: dict[str, type], doc: Document) -> None:
    """``placement: ray`` needs Ray installed and replies that can cross as one msgpack
    union, and takes only ``state: memory`` entity kinds (the Ray side has no store: see
    docs/scaling.md); ``ray.resources`` must name such agents."""
    placed = {node.name for node in nodes if node.placement == "ray"}
    installed = ray_available()
    for node in nodes:
        if node.placement != "ray":
            continue
        if not installed:
            doc.problem(f"{node.path}.placement", INSTALL_HINT)
        elif node.entity and node.state == "durable":
            doc.problem(
                f"{node.path}.placement",
                "an entity kind with state: durable runs locally: placement: ray takes "
                "state: memory only (the entities' Ray side has no store)",
            )
        elif node.name in agents:
            try:
                reply_targets(agents[node.name])
            except TypeError as exc:
                doc.problem(f"{node.path}.placement", str(exc))
    resources = doc.value.get("ray", {}) if isinstance(doc.value, dict) else {}
    named = resources.get("resources", {}) if isinstance(resources, dict) else {}
    for name in named if isinstance(named, dict) else ():
        if name not in placed:
            doc.problem(
                f"$.ray.resources.{name}",
                f"'{name}' is not a worker with placement: ray",
                key=True,
            )


def _check_names(nodes: list[_Raw], doc: Document) -> None:
    seen: dict[str, str] = {}
    for node in nodes:
        names = [node.name, *(f"{node.name}.{i}" for i in range(1, node.pool_size + 1))]
        for name in names:
            if name in seen:
                doc.problem(f"{node.path}.name", f"duplicate name '{name}' (first at {seen[name]})")
            else:
                seen[name] = node.path


def _check_dependencies(nodes: list[_Raw], doc: Document) -> None:
    known = {node.name: node for node in nodes}
    for node in nodes:
        for index, target in enumerate(node.depends_on):
            where = f"{node.path}.depends_on[{index}]"
            if target not in known:
                doc.problem(where, f"unknown agent '{target}' in depends_on")
            elif target == node.name:
                doc.problem(where, f"'{node.name}' cannot depend on itself")
    graph = {n.name: [t for t in n.depends_on if t in known and t != n.name] for n in nodes}
    cycle = _find_cycle(graph)
    if cycle:
        doc.problem(known[cycle[0]].path + ".depends_on", "dependency cycle: " + " -> ".join(cycle))


def _check_start_order(
    value: Any, path: str, known: set[str], started: set[str], doc: Document
) -> None:
    """Every ``depends_on`` outside a supervisor's children names a node started before
    it, in the depth-first start order (``started``: the names started so far)."""
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return
    started.add(value["name"])
    children = value.get("children")
    if not isinstance(children, list):
        if isinstance(value.get("pool"), dict):
            size = value["pool"].get("size")
            count = size if isinstance(size, int) and 0 < size <= 10_000 else 0
            started.update(f"{value['name']}.{i}" for i in range(1, count + 1))
        return
    siblings = [(_name(child), _depends_on(child)) for child in children]
    order = start_order(siblings)
    if len(order) < len(children):  # a cycle among them: reported by _check_dependencies
        order = list(range(len(children)))
    names = {name for name, _ in siblings}
    for position in order:
        name, depends_on = siblings[position]
        where = f"{path}.children[{position}]"
        for index, target in enumerate(depends_on):
            if target in known and target != name and target not in started and target not in names:
                doc.problem(
                    f"{where}.depends_on[{index}]",
                    f"'{name}' depends on '{target}', which starts later (in another"
                    " subtree); move it earlier in the file",
                )
        _check_start_order(children[position], where, known, started, doc)


def _name(value: Any) -> str:
    name = value.get("name") if isinstance(value, dict) else None
    return name if isinstance(name, str) else ""


def _depends_on(value: Any) -> list[str]:
    depends = value.get("depends_on") if isinstance(value, dict) else None
    return [d for d in depends if isinstance(d, str)] if isinstance(depends, list) else []


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """The first dependency cycle (its names, the first one repeated at the end), or None.

    Depth-first with a stack of its own, not recursion: a chain of thousands of
    ``depends_on`` is a valid wiring, not a RecursionError.
    """
    visiting: set[str] = set()
    done: set[str] = set()
    for start in graph:
        if start in done:
            continue
        chain = [start]  # the path being explored
        targets = [iter(graph.get(start, ()))]  # per name of the chain: its targets not yet seen
        visiting.add(start)
        while chain:
            target = next(targets[-1], None)
            if target is None:  # every target of chain[-1] explored: no cycle through it
                finished = chain.pop()
                targets.pop()
                visiting.discard(finished)
                done.add(finished)
            elif target in visiting:
                return [*chain[chain.index(target) :], target]
            elif target not in done:
                chain.append(target)
                targets.append(iter(graph.get(target, ())))
                visiting.add(target)
    return None


def _resolve_agents(nodes: list[_Raw], doc: Document) -> tuple[dict[str, type], dict[str, Any]]:
    agents: dict[str, type] = {}
    configs: dict[str, Any] = {}
    for node in nodes:
        if node.agent is None:
            continue
        agent_class = _import(node.agent, f"{node.path}{node.agent_path}", doc, node.entity)
        if agent_class is None:
            continue
        agents[node.name] = agent_class
        schema = getattr(agent_class, "Config", None)
        if schema is None:
            if node.config is not None:
                doc.problem(
                    f"{node.path}.config", f"{node.agent} takes no config (it declares no Config)"
                )
            configs[node.name] = None
            continue
        config = decode_struct(
            {} if node.config is None else node.config, schema, f"{node.path}.config", doc
        )
        if config is not INVALID:
            configs[node.name] = config
    return agents, configs


def _import(target: str, path: str, doc: Document, entity: bool = False) -> type | None:
    """The Agent (``entity``: Entity) subclass ``target`` names, or None with a problem at
    ``path`` saying why."""
    try:
        value = resolve_import(target)
    except MalformedImportString:
        doc.problem(path, f"expected 'package.module:Class', got {target!r}")
        return None
    except ImportModuleFailed as exc:
        doc.problem(path, _import_failed(exc))
        return None
    except ImportStringError as exc:  # the module or the attribute is missing
        doc.problem(path, str(exc))
        return None
    expected = Entity if entity else Agent
    if not (isinstance(value, type) and issubclass(value, expected)):
        doc.problem(path, f"'{target}' is not a vibe_actors.{expected.__name__} subclass")
        return None
    return value


def _import_failed(exc: ImportModuleFailed) -> str:
    """The problem of a module that raised while importing. One missing a module it
    imports reads as the resolver's "not found" naming that module, as wiring files
    always reported it."""
    cause = exc.__cause__
    if isinstance(cause, ModuleNotFoundError):
        missing = cause.name or exc.module
        return str(ImportModuleNotFound(exc.path, exc.module, exc.attribute, missing))
    return str(exc)
