"""YAML with positions, and ${ENV} substitution.

PyYAML's ``compose`` keeps the start mark of every node; we turn the node
tree into plain Python values and remember where each path came from, so
that an error about ``$.root.children[3].restart`` can say ``42:5``.

Aliases are kept apart while composing (PyYAML would share the aliased node),
so that what they expand to is sized, and refused over the limits below, before
anything is expanded: a "billion laughs" costs what its text costs.

A value from the environment is substituted into the scalar that names it and
is never parsed as YAML: it is one scalar, whatever it holds.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple, Protocol, cast

import yaml

from phoenix._errors import WiringProblem

__all__ = ["MAX_ALIAS_NODES", "MAX_ALIAS_PATH_CHARS", "MAX_DEPTH", "Document", "parse"]

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

_ENV = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

_CORE = "tag:yaml.org,2002:"
_MAP, _SEQ, _STR = _CORE + "map", _CORE + "seq", _CORE + "str"
#: The scalar types a wiring value may have besides text: YAML's core types, and dates
#: (the safe loader reads an unquoted 2024-01-31 as one). Never !!binary, !!set, a
#: language's object tags, or a tag of one's own.
_SCALAR_TAGS = frozenset(_CORE + kind for kind in ("int", "float", "bool", "null", "timestamp"))
#: What a value taken from the environment may become besides text (as before: never
#: null or a date, which would surprise more than help).
_ENVIRONMENT_TAGS = frozenset(_CORE + kind for kind in ("int", "float", "bool"))
_TYPE_WORDS = {_CORE + "timestamp": "date", _CORE + "int": "integer", _CORE + "float": "number"}
_RESOLVER = yaml.resolver.Resolver()


class Document:
    """Plain values plus where each path is in the file and which paths hold secrets."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.value: Any = None
        self.positions: dict[str, tuple[int, int]] = {}
        self.key_positions: dict[str, tuple[int, int]] = {}
        #: Paths whose value came (wholly or partly) from the environment.
        self.secrets: set[str] = set()
        self.problems: list[WiringProblem] = []

    def where(self, path: str, *, key: bool = False) -> tuple[int, int]:
        """The position of ``path`` (its key when ``key``), else of its nearest ancestor."""
        table = self.key_positions if key else self.positions
        probe = path
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.positions:
                return self.positions[probe]
            probe = _parent(probe)
        return (1, 1)

    def problem(self, path: str, message: str, *, key: bool = False) -> None:
        line, column = self.where(path, key=key)
        self.problems.append(WiringProblem(self.file, line, column, path, message))

    def shown(self, path: str, value: Any) -> str:
        """``value`` as it may appear in a message: masked if it came from the environment
        (its path or one of its ancestors' is a secret)."""
        probe = path  # ancestors, not every secret: aliases can make thousands of them
        while probe:
            if probe in self.secrets:
                return "'***'"
            probe = _parent(probe)
        return repr(value)


def _parent(path: str) -> str:
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else ""


def parse(text: str, file: str, environ: Mapping[str, str] | None = None) -> Document:
    """Parse ``text``; YAML syntax errors and unset variables become problems.

    So does a tag that is not plain data (``!!python/object:...``, ``!foo``) and a
    scalar YAML types but cannot construct (an unquoted ``2024-02-30``): one problem
    at the node each, as the converter meets them.

    So does a document over the limits (:data:`MAX_DEPTH`, :data:`MAX_ALIAS_NODES`,
    :data:`MAX_ALIAS_PATH_CHARS`) or with a recursive alias: one problem at the
    node or alias that crossed the limit, found before anything is expanded.
    """
    doc = Document(file)
    environ = os.environ if environ is None else environ
    try:
        node = yaml.compose(text, Loader=_BoundedLoader)
        if node is not None:
            _Budget().measure(node, "$", 1)
    except yaml.MarkedYAMLError as exc:
        line, column = _position(exc.problem_mark)
        doc.problems.append(WiringProblem(file, line, column, "$", f"invalid YAML: {exc.problem}"))
        return doc
    except _OverLimit as exc:
        doc.problems.append(WiringProblem(file, *exc.position, exc.path, exc.message))
        return doc
    if node is None:
        doc.problems.append(WiringProblem(file, 1, 1, "$", "the file is empty"))
        return doc
    doc.value = _Converter(doc, environ).convert(node, "$")
    return doc


class _Mark(Protocol):
    """Where PyYAML saw something (0-based); its pure-Python and C marks both fit."""

    line: int
    column: int


def _position(mark: _Mark | None) -> tuple[int, int]:
    """1-based (line, column) of ``mark``; (1, 1) when PyYAML gave none."""
    return (mark.line + 1, mark.column + 1) if mark else (1, 1)


class _OverLimit(Exception):
    """The document crossed a limit or holds a recursive alias: one problem at ``position``."""

    def __init__(self, position: tuple[int, int], path: str, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.path = path
        self.message = message


class _Alias(yaml.Node):
    """An alias (``*name``) where it is used: PyYAML's composer would put the aliased
    node itself there, losing the alias's own position and hiding the sharing."""

    def __init__(self, anchor: str, target: yaml.Node, position: tuple[int, int]) -> None:
        super().__init__(target.tag, None, None, None)
        self.anchor = anchor
        self.target = target
        self.position = position


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, composing :class:`_Alias` nodes and at most
    :data:`MAX_DEPTH` levels (its composer recurses once per level: deeper would
    be a RecursionError). Raises :class:`_OverLimit` at the first node too deep."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self._upcoming()
        if isinstance(event, yaml.AliasEvent):
            target = super().compose_node(parent, index)  # raises on an undefined alias
            assert target is not None  # an alias always names a composed node
            return _Alias(str(event.anchor), target, _position(event.start_mark))
        if self._depth >= MAX_DEPTH:
            raise _OverLimit(_position(event.start_mark), "$", _too_deep())
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


class _Budget:
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

        Raises :class:`_OverLimit` at the first alias that is recursive or
        crosses :data:`MAX_DEPTH`, :data:`MAX_ALIAS_NODES` or :data:`MAX_ALIAS_PATH_CHARS`.
        """
        if isinstance(node, _Alias):
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

    def _expand(self, alias: _Alias, path: str, depth: int) -> _Extent:
        if alias.target in self._open:
            message = f"alias *{alias.anchor} is recursive (it names a node that contains it)"
            raise _OverLimit(alias.position, path, message)
        extent = self._extents[alias.target]  # complete, so measured: see the class docstring
        if depth + extent.height - 1 > MAX_DEPTH:
            raise _OverLimit(alias.position, path, _too_deep(alias.anchor))
        self._alias_nodes += extent.nodes
        if self._alias_nodes > MAX_ALIAS_NODES:
            message = (
                f"aliases expand to more than {MAX_ALIAS_NODES} nodes"
                f" (limit MAX_ALIAS_NODES), crossed at alias *{alias.anchor}"
            )
            raise _OverLimit(alias.position, path, message)
        self._alias_path_chars += extent.nodes * len(path) + extent.path_chars
        if self._alias_path_chars > MAX_ALIAS_PATH_CHARS:
            message = (
                f"aliases expand to paths of more than {MAX_ALIAS_PATH_CHARS} characters"
                f" (limit MAX_ALIAS_PATH_CHARS), crossed at alias *{alias.anchor}"
            )
            raise _OverLimit(alias.position, path, message)
        return extent


def _entries(node: yaml.CollectionNode) -> Iterator[tuple[yaml.Node | None, str, yaml.Node]]:
    """(key node or None, path label, child) for each entry of a mapping or sequence."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            yield key_node, "." + (_key_text(key_node) or "?"), value_node
    else:
        for index, item in enumerate(node.value):
            yield None, f"[{index}]", item


def _named(node: yaml.Node) -> yaml.Node:
    """The node itself, or the one it names if it is an alias."""
    return node.target if isinstance(node, _Alias) else node


def _key_text(key_node: yaml.Node) -> str | None:
    """The text of a mapping key (through an alias), None when it is not a scalar."""
    key_node = _named(key_node)
    return str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None


def _key_position(key_node: yaml.Node) -> tuple[int, int]:
    return key_node.position if isinstance(key_node, _Alias) else _position(key_node.start_mark)


class _Converter:
    """Turns the composed tree into plain values, recording positions in ``doc``.

    Aliases are expanded (each use is a value of its own, with paths of its
    own); :class:`_Budget` has bounded what that costs before this runs.
    """

    def __init__(self, doc: Document, environ: Mapping[str, str]) -> None:
        self._doc = doc
        self._environ = environ
        self._constructor = yaml.constructor.SafeConstructor()
        self._substituted: dict[yaml.ScalarNode, _Substituted] = {}

    def convert(self, node: yaml.Node, path: str) -> Any:
        doc = self._doc
        if isinstance(node, _Alias):
            # ``path`` itself is where the alias is used; the paths below it are
            # where the anchored node's content is written.
            doc.positions[path] = node.position
            node = node.target
        else:
            doc.positions[path] = _position(node.start_mark)
        refused = _tag_problem(node)
        if refused:
            doc.problem(path, refused)
        if isinstance(node, yaml.MappingNode):  # its content is converted even if refused:
            return self._mapping(node, path)  # every problem of the file is reported at once
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        # compose() builds mapping, sequence and scalar nodes only.
        scalar = cast(yaml.ScalarNode, node)
        return scalar.value if refused else self._scalar(scalar, path)

    def _mapping(self, node: yaml.MappingNode, path: str) -> dict[str, Any]:
        doc = self._doc
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _key_text(key_node)
            if key is None:
                doc.problems.append(
                    WiringProblem(
                        doc.file,
                        *_key_position(key_node),
                        path,
                        "a mapping key must be a scalar (text or a number)",
                    )
                )
                continue
            child = f"{path}.{key}"
            doc.key_positions[child] = _key_position(key_node)
            refused = _tag_problem(_named(key_node), key=True)
            if refused:
                doc.problem(child, refused, key=True)
            if key in result:
                doc.problem(child, f"duplicate key '{key}'", key=True)
            result[key] = self.convert(value_node, child)
        return result

    def _scalar(self, node: yaml.ScalarNode, path: str) -> Any:
        """The scalar's value. An unset variable is a problem at ``path``; a value
        taken from the environment makes ``path`` a secret."""
        if "${" not in node.value:
            return self._construct(node, path)
        substituted = self._substituted.get(node)
        if substituted is None:  # once per node, however many aliases use it
            substituted = self._substituted[node] = _substitute(node, self._environ)
        for name in substituted.missing:
            self._doc.problem(path, f"environment variable {name} is not set (and has no default)")
        if substituted.from_environment:
            self._doc.secrets.add(path)
        return substituted.value

    def _construct(self, node: yaml.ScalarNode, path: str) -> Any:
        """The value of a scalar whose tag :func:`_tag_problem` accepted (PyYAML memoizes
        it per node).

        Its text matched its type's pattern, which PyYAML's constructor can still
        refuse with a ValueError: an impossible date (2024-02-30), ``0b_``, an integer
        of more digits than Python converts. That is a problem at ``path``, and the
        text stands in for the value so that the other checks still run.
        """
        try:
            return self._constructor.construct_object(node)
        except ValueError as exc:
            kind = _TYPE_WORDS.get(node.tag, _shown_tag(node.tag))
            self._doc.problem(
                path, f"invalid {kind} {node.value!r} ({exc}); quote it to make it text"
            )
            return node.value


def _shown_tag(tag: str) -> str:
    """A tag as it is written in a file: ``!!python/object:os.system``, ``!foo``."""
    return "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag


def _plain_tag(text: str) -> str:
    """The tag YAML gives ``text`` as an untagged plain scalar (8080: !!int)."""
    tag: str = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
    return tag


def _tag_problem(node: yaml.Node, *, key: bool = False) -> str | None:
    """Why ``node``'s YAML tag has no place in a wiring file, or None.

    A wiring file is plain data: a tag may say what the node is anyway (``!!int 5``)
    or make a scalar text (``!!str 5``). Anything else (``!!python/object:...``,
    ``!foo``, ``!!binary``, ``!!set``, ``!!int abc``) is a problem and never reaches a
    YAML constructor. A key is only ever read as text: its plain type does not matter.
    """
    fitting, what = _fitting_tags(node)
    tag = node.tag
    if tag not in fitting:
        if tag in _SCALAR_TAGS or tag == _STR:
            return f"YAML tag {_shown_tag(tag)} does not fit {what} (remove the tag)"
        return (
            f"YAML tag {_shown_tag(tag)} is not supported: a wiring file holds plain"
            " mappings, lists, text, numbers, booleans, null and dates"
            " (quote a value or write !!str to make it text)"
        )
    if key or tag in _SCALAR_TAGS or tag in (_MAP, _SEQ, _STR):
        return None
    # An untagged plain scalar that YAML types as no value: << (a merge key), = ("value").
    return f"{what} is a YAML {_shown_tag(tag)}, not a value: quote it to make it text"


def _fitting_tags(node: yaml.Node) -> tuple[tuple[str, ...], str]:
    """The tags ``node`` may have, and how a message names it."""
    if isinstance(node, yaml.MappingNode):
        return (_MAP,), "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return (_SEQ,), "a list"
    text = cast(yaml.ScalarNode, node).value
    return (_plain_tag(text), _STR), repr(text)


class _Substituted(NamedTuple):
    value: Any
    missing: tuple[str, ...]
    from_environment: bool


def _substitute(node: yaml.ScalarNode, environ: Mapping[str, str]) -> _Substituted:
    text = node.value
    missing: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        escaped, name, default = match.groups()
        if escaped:
            return match.group(0)[1:]  # $${X} -> ${X}
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        missing.append(name)
        return ""

    replaced = _ENV.sub(substitute, text)
    from_environment = replaced != text.replace("$${", "${")
    if node.style is None:  # a plain scalar: typed as YAML types one (8080 -> int)
        return _Substituted(_plain_value(replaced), tuple(missing), from_environment)
    return _Substituted(replaced, tuple(missing), from_environment)


def _plain_value(text: str) -> str | int | float | bool:
    """``text`` (substituted into a plain scalar) typed as YAML types a plain scalar:
    an integer, a number, a boolean, else text.

    Only the resolver's patterns are matched: the text is never parsed as YAML, so a
    value holding ``: ``, ``{``, ``[``, ``#``, a tag, an alias or a line break stays
    that text, one scalar, and cannot add structure to the file. Surrounding
    whitespace is dropped, as a plain scalar has none (a secret read from a file
    often ends with a line break).
    """
    stripped = text.strip()
    tag = _plain_tag(stripped)
    if tag not in _ENVIRONMENT_TAGS:
        return stripped
    constructor = yaml.constructor.SafeConstructor()
    try:
        value: int | float | bool = constructor.construct_object(yaml.ScalarNode(tag, stripped))
    except ValueError:  # it matched the pattern yet is none (0b_): text, for the field to check
        return stripped
    return value
