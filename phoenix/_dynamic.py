"""The checks of dynamic supervisors (``dynamic: true``) in a wiring file.

A dynamic supervisor is one_for_one and lists no ``children`` (they are
started at run time); ``max_children`` and ``templates`` belong to it alone.
Each template is an import string of an Agent class, resolved as a worker's
``agent`` is, and reported at its own path (``$.root.children[2].templates[0]``);
two templates may not share a class name (a client names a template by it).
The checks read the raw YAML, so they run even where decoding failed: every
problem of the file is reported in one run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from phoenix._yaml import Document

__all__ = ["check_dynamic"]

#: Resolves an import string to its Agent class, or None after recording why at ``path``.
Resolver = Callable[[str, str, Document], "type | None"]


def check_dynamic(
    value: Any, path: str, doc: Document, resolve: Resolver
) -> dict[str, tuple[type, ...]]:
    """Every dynamic supervisor's templates by supervisor name; problems go to ``doc``."""
    found: dict[str, tuple[type, ...]] = {}
    _visit(value, path, doc, resolve, found)
    return found


def _visit(
    value: Any, path: str, doc: Document, resolve: Resolver, found: dict[str, tuple[type, ...]]
) -> None:
    if not isinstance(value, dict):
        return
    children = value.get("children")
    if value.get("dynamic") is True:
        _check_shape(value, path, doc)
        name = value.get("name")
        templates = _templates(value.get("templates"), f"{path}.templates", doc, resolve)
        if isinstance(name, str):
            found[name] = templates
    else:
        for key in ("max_children", "templates"):
            if key in value:
                doc.problem(
                    f"{path}.{key}",
                    f"{key} is for a dynamic supervisor: add dynamic: true to this node",
                    key=True,
                )
    if isinstance(children, list):
        for index, child in enumerate(children):
            _visit(child, f"{path}.children[{index}]", doc, resolve, found)


def _check_shape(value: dict[str, Any], path: str, doc: Document) -> None:
    strategy = value.get("strategy", "one_for_one")
    if strategy != "one_for_one":
        doc.problem(
            f"{path}.strategy",
            f"a dynamic supervisor is one_for_one, got {doc.shown(f'{path}.strategy', strategy)}"
            " (drop strategy, or set it to one_for_one)",
        )
    children = value.get("children")
    if children:
        doc.problem(
            f"{path}.children",
            "a dynamic supervisor lists no children: they are started at run time "
            "(POST /v1/supervisors/{name}/children, ActorSystem.start_child); "
            "use templates: to name the agent classes HTTP may start",
        )


def _templates(value: Any, path: str, doc: Document, resolve: Resolver) -> tuple[type, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        return ()  # the decoder reports the type
    classes: dict[str, tuple[type, str]] = {}  # class name -> the class, its string
    for index, target in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(target, str):
            continue  # the decoder reports the type
        agent = resolve(target, where, doc)
        if agent is None:
            continue
        first = classes.get(agent.__name__)
        if first is None:
            classes[agent.__name__] = (agent, target)
        elif first[0] is not agent:
            doc.problem(
                where,
                f"two templates are named {agent.__name__!r} ({first[1]} and {target}): "
                "a client names a template by its class name",
            )
    return tuple(agent for agent, _ in classes.values())
