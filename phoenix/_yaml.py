"""YAML with positions, and ${ENV} substitution.

PyYAML's ``compose`` keeps the start mark of every node; we turn the node
tree into plain Python values and remember where each path came from, so
that an error about ``$.root.children[3].restart`` can say ``42:5``.

Aliases are kept apart while composing (PyYAML would share the aliased node),
so that what they expand to is sized, and refused over the limits of
:mod:`phoenix._yaml_limits`, before anything is expanded: a "billion laughs"
costs what its text costs. A tag that is not plain data is a problem at its
node, and never reaches a YAML constructor (:mod:`phoenix._yaml_tags`).

A value from the environment is substituted into the scalar that names it and
is never parsed as YAML: it is one scalar, whatever it holds.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, NamedTuple, cast

import yaml

from phoenix._errors import WiringProblem
from phoenix._yaml_limits import (
    MAX_ALIAS_NODES,
    MAX_ALIAS_PATH_CHARS,
    MAX_DEPTH,
    Alias,
    BoundedLoader,
    Budget,
    OverLimit,
    key_text,
    named,
    position,
)
from phoenix._yaml_tags import TYPE_WORDS, plain_value, shown_tag, tag_problem

__all__ = ["MAX_ALIAS_NODES", "MAX_ALIAS_PATH_CHARS", "MAX_DEPTH", "Document", "parse"]

_ENV = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Document:
    """Plain values plus where each path is in the file and which paths hold secrets."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.value: Any = None
        self.positions: dict[str, tuple[int, int]] = {}
        self.key_positions: dict[str, tuple[int, int]] = {}
        #: Paths whose value came (wholly or partly) from the environment.
        self.secrets: set[str] = set()
        #: Paths of values that could not be read (an unset variable, a tag refused, a
        #: scalar YAML cannot construct): what stands in their place is checked no
        #: further (see :meth:`readable`), so the one problem reported for each is its own.
        self.unreadable: set[str] = set()
        self.problems: list[WiringProblem] = []
        #: The file was parsed into :attr:`value` (False: a syntax error, an empty file,
        #: a limit crossed, and nothing else can be checked).
        self.parsed = False

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

    def readable(self, path: str) -> bool:
        """Neither ``path`` nor one of its ancestors is :attr:`unreadable`."""
        probe = path
        while probe:
            if probe in self.unreadable:
                return False
            probe = _parent(probe)
        return True

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

    Every unset variable is named, each at the scalar that names it. That scalar,
    like a refused tag's node or a value YAML cannot construct, is
    :attr:`Document.unreadable`, and the rest of the file is read on: only a syntax
    error, an empty file or a limit crossed ends the parse (``parsed`` stays False).
    """
    doc = Document(file)
    environ = os.environ if environ is None else environ
    try:
        node = yaml.compose(text, Loader=BoundedLoader)
        if node is not None:
            Budget().measure(node, "$", 1)
    except yaml.MarkedYAMLError as exc:
        line, column = position(exc.problem_mark)
        doc.problems.append(WiringProblem(file, line, column, "$", f"invalid YAML: {exc.problem}"))
        return doc
    except OverLimit as exc:
        doc.problems.append(WiringProblem(file, *exc.position, exc.path, exc.message))
        return doc
    if node is None:
        doc.problems.append(WiringProblem(file, 1, 1, "$", "the file is empty"))
        return doc
    doc.value = _Converter(doc, environ).convert(node, "$")
    doc.parsed = True
    return doc


def _key_position(key_node: yaml.Node) -> tuple[int, int]:
    return key_node.position if isinstance(key_node, Alias) else position(key_node.start_mark)


class _Converter:
    """Turns the composed tree into plain values, recording positions in ``doc``.

    Aliases are expanded (each use is a value of its own, with paths of its
    own); :class:`Budget` has bounded what that costs before this runs.
    """

    def __init__(self, doc: Document, environ: Mapping[str, str]) -> None:
        self._doc = doc
        self._environ = environ
        self._constructor = yaml.constructor.SafeConstructor()
        self._substituted: dict[yaml.ScalarNode, _Substituted] = {}

    def convert(self, node: yaml.Node, path: str) -> Any:
        doc = self._doc
        if isinstance(node, Alias):
            # ``path`` itself is where the alias is used; the paths below it are
            # where the anchored node's content is written.
            doc.positions[path] = node.position
            node = node.target
        else:
            doc.positions[path] = position(node.start_mark)
        refused = tag_problem(node)
        if refused:
            doc.problem(path, refused)
            doc.unreadable.add(path)
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
            key = key_text(key_node)
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
            refused = tag_problem(named(key_node), key=True)
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
        if substituted.missing:
            self._doc.unreadable.add(path)
        if substituted.from_environment:
            self._doc.secrets.add(path)
        return substituted.value

    def _construct(self, node: yaml.ScalarNode, path: str) -> Any:
        """The value of a scalar whose tag :func:`tag_problem` accepted (PyYAML memoizes
        it per node).

        Its text matched its type's pattern, which PyYAML's constructor can still
        refuse with a ValueError: an impossible date (2024-02-30), ``0b_``, an integer
        of more digits than Python converts. That is a problem at ``path``, and the
        text stands in for the value so that the other checks still run.
        """
        try:
            return self._constructor.construct_object(node)
        except ValueError as exc:
            kind = TYPE_WORDS.get(node.tag, shown_tag(node.tag))
            self._doc.problem(
                path, f"invalid {kind} {node.value!r} ({exc}); quote it to make it text"
            )
            self._doc.unreadable.add(path)
            return node.value


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
        return _Substituted(plain_value(replaced), tuple(missing), from_environment)
    return _Substituted(replaced, tuple(missing), from_environment)
