"""Limits of a wiring file's YAML, checked before anything is expanded.

PyYAML composes recursively (one call per level) and its composer would
share an aliased node; :class:`BoundedLoader` refuses a document deeper than
:data:`MAX_DEPTH` and keeps each alias apart (:class:`Alias`), and
:class:`Budget` sizes what the aliases would expand to, in time linear in the
text, refusing a recursive alias or one past :data:`MAX_ALIAS_NODES` or
:data:`MAX_ALIAS_PATH_CHARS` (:class:`OverLimit`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple, Protocol, cast

import yaml

__all__ = [
    "MAX_ALIAS_NODES",
    "MAX_ALIAS_PATH_CHARS",
    "MAX_DEPTH",
    "Alias",
    "BoundedLoader",
    "Budget",
    "OverLimit",
    "key_text",
    "named",
    "position",
]

MAX_DEPTH = 100
"""Deepest nesting a document may have, in levels (the top node is level 1),
counted through aliases. PyYAML composes recursively, one call per level: a
deeper document is refused at the node that crosses it, before that recursion
could exhaust the stack. A wiring nests two levels per supervisor, plus its
configs: a few tens at most."""

MAX_ALIAS_NODES = 100_000
"""Most nodes that aliases may add to a document: each use of ``*name`` adds
every node of what it names, nested aliases expanded. Refused at the alias
that crosses it, after a pass linear in the text (nothing is expanded): this
is what stops "billion laughs". Nodes written out in the text do not count
(parsing them costs more than converting them). A thousand agents sharing a
twenty-node config through an alias use 20,000."""

MAX_ALIAS_PATH_CHARS = 100 * MAX_ALIAS_NODES
"""Most characters that the paths of nodes added by aliases may sum to
(``$.root.children[3].config.rules[0]``: 35). Every converted node keeps its
path, so this bounds the memory that expansion takes when keys are long,
which :data:`MAX_ALIAS_NODES` alone does not: an average of 100 characters
per node, 10 MB in all."""


class _Mark(Protocol):
    """Where PyYAML saw something (0-based); its pure-Python and C marks both fit."""

    line: int
    column: int


def position(mark: _Mark | None) -> tuple[int, int]:
    """1-based (line, column) of ``mark``; (1, 1) when PyYAML gave none."""
    return (mark.line + 1, mark.column + 1) if mark else (1, 1)


class OverLimit(Exception):
    """The document crossed a limit or holds a recursive alias: one problem at ``position``."""

    def __init__(self, position: tuple[int, int], path: str, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.path = path
        self.message = message


class Alias(yaml.Node):
    """An alias (``*name``) where it is used: PyYAML's composer would put the aliased
    node itself there, losing the alias's own position and hiding the sharing."""

    def __init__(self, anchor: str, target: yaml.Node, position: tuple[int, int]) -> None:
        super().__init__(target.tag, None, None, None)
        self.anchor = anchor
        self.target = target
        self.position = position


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, composing :class:`Alias` nodes and at most
    :data:`MAX_DEPTH` levels (its composer recurses once per level: deeper would
    be a RecursionError). Raises :class:`OverLimit` at the first node too deep."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self._upcoming()
        if isinstance(event, yaml.AliasEvent):
            target = super().compose_node(parent, index)  # raises on an undefined alias
            assert target is not None  # an alias always names a composed node
            return Alias(str(event.anchor), target, position(event.start_mark))
        if self._depth >= MAX_DEPTH:
            raise OverLimit(position(event.start_mark), "$", _too_deep())
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def _upcoming(self) -> yaml.Event:
        """The next event, left in the stream."""
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
        return event


def _too_deep(alias: str = "") -> str:
    through = f" through alias *{alias}" if alias else ""
    return f"nesting deeper than {MAX_DEPTH} levels{through} (limit MAX_DEPTH)"


class _Extent(NamedTuple):
    """What a node becomes once its aliases are expanded."""

    nodes: int  # itself and everything below it
    height: int  # levels, itself included
    path_chars: int  # characters of the paths below it, relative to its own path


class Budget:
    """Sizes the document as if its aliases were expanded, without expanding them.

    The composed tree is walked once, in document order, never through an alias:
    an alias names a node that is either complete (and so already measured) or
    still open around it (a recursive alias). Time and memory are linear in the
    text, however much the aliases would expand to.
    """

    def __init__(self) -> None:
        self._extents: dict[yaml.Node, _Extent] = {}
        self._open: set[yaml.Node] = set()
        self._alias_nodes = 0
        self._alias_path_chars = 0

    def measure(self, node: yaml.Node, path: str, depth: int) -> _Extent:
        """The extent of ``node`` at ``path``, ``depth`` levels down.

        Raises :class:`OverLimit` at the first alias that is recursive or
        crosses :data:`MAX_DEPTH`, :data:`MAX_ALIAS_NODES` or :data:`MAX_ALIAS_PATH_CHARS`.
        """
        if isinstance(node, Alias):
            return self._expand(node, path, depth)
        if isinstance(node, yaml.ScalarNode):
            extent = _Extent(1, 1, 0)
        else:
            self._open.add(node)
            extent = self._collection(cast(yaml.CollectionNode, node), path, depth)
            self._open.discard(node)
        self._extents[node] = extent
        return extent

    def _collection(self, node: yaml.CollectionNode, path: str, depth: int) -> _Extent:
        nodes, height, path_chars = 1, 1, 0
        for key_node, label, child in _entries(node):
            if key_node is not None:  # keys are not expanded, but may hold anchors used later
                self.measure(key_node, path + label, depth + 1)
            inner = self.measure(child, path + label, depth + 1)
            nodes += inner.nodes
            height = max(height, inner.height + 1)
            path_chars += inner.nodes * len(label) + inner.path_chars
        return _Extent(nodes, height, path_chars)

    def _expand(self, alias: Alias, path: str, depth: int) -> _Extent:
        if alias.target in self._open:
            message = f"alias *{alias.anchor} is recursive (it names a node that contains it)"
            raise OverLimit(alias.position, path, message)
        extent = self._extents[alias.target]  # complete, so measured: see the class docstring
        if depth + extent.height - 1 > MAX_DEPTH:
            raise OverLimit(alias.position, path, _too_deep(alias.anchor))
        self._alias_nodes += extent.nodes
        if self._alias_nodes > MAX_ALIAS_NODES:
            message = (
                f"aliases expand to more than {MAX_ALIAS_NODES} nodes"
                f" (limit MAX_ALIAS_NODES), crossed at alias *{alias.anchor}"
            )
            raise OverLimit(alias.position, path, message)
        self._alias_path_chars += extent.nodes * len(path) + extent.path_chars
        if self._alias_path_chars > MAX_ALIAS_PATH_CHARS:
            message = (
                f"aliases expand to paths of more than {MAX_ALIAS_PATH_CHARS} characters"
                f" (limit MAX_ALIAS_PATH_CHARS), crossed at alias *{alias.anchor}"
            )
            raise OverLimit(alias.position, path, message)
        return extent


def _entries(node: yaml.CollectionNode) -> Iterator[tuple[yaml.Node | None, str, yaml.Node]]:
    """(key node or None, path label, child) for each entry of a mapping or sequence."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            yield key_node, "." + (key_text(key_node) or "?"), value_node
    else:
        for index, item in enumerate(node.value):
            yield None, f"[{index}]", item


def named(node: yaml.Node) -> yaml.Node:
    """The node itself, or the one it names if it is an alias."""
    return node.target if isinstance(node, Alias) else node


def key_text(key_node: yaml.Node) -> str | None:
    """The text of a mapping key (through an alias), None when it is not a scalar."""
    key_node = named(key_node)
    return str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
