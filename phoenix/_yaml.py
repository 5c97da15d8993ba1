"""YAML with positions, and ${ENV} substitution.

PyYAML's ``compose`` keeps the start mark of every node; we turn the node
tree into plain Python values and remember where each path came from, so
that an error about ``$.root.children[3].restart`` can say ``42:5``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, cast

import yaml

from phoenix._errors import WiringProblem

__all__ = ["Document", "parse"]

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
        """``value`` as it may appear in a message: masked if it came from the environment."""
        if any(path == s or path.startswith((s + ".", s + "[")) for s in self.secrets):
            return "'***'"
        return repr(value)


def _parent(path: str) -> str:
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else ""


def parse(text: str, file: str, environ: Mapping[str, str] | None = None) -> Document:
    """Parse ``text``; YAML syntax errors and unset variables become problems."""
    doc = Document(file)
    environ = os.environ if environ is None else environ
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        doc.problems.append(WiringProblem(file, line, column, "$", f"invalid YAML: {exc.problem}"))
        return doc
    if node is None:
        doc.problems.append(WiringProblem(file, 1, 1, "$", "the file is empty"))
        return doc
    doc.value = _convert(node, "$", doc, environ)
    return doc


def _convert(node: yaml.Node, path: str, doc: Document, environ: Mapping[str, str]) -> Any:
    doc.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = f"{path}.{key}"
            doc.key_positions[child] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            if key in result:
                doc.problem(child, f"duplicate key '{key}'", key=True)
            result[key] = _convert(value_node, child, doc, environ)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, f"{path}[{i}]", doc, environ) for i, item in enumerate(node.value)]
    # compose() builds mapping, sequence and scalar nodes only.
    return _scalar(cast(yaml.ScalarNode, node), path, doc, environ)


def _scalar(node: yaml.ScalarNode, path: str, doc: Document, environ: Mapping[str, str]) -> Any:
    text = node.value
    if "${" not in text:
        return _construct(node)
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
    for name in missing:
        doc.problem(path, f"environment variable {name} is not set (and has no default)")
    if replaced != text.replace("$${", "${"):
        doc.secrets.add(path)
    if node.style is None:  # a plain scalar: resolve its type as YAML would (8080 -> int)
        resolved = yaml.safe_load(replaced) if replaced.strip() else replaced
        return resolved if isinstance(resolved, str | int | float | bool) else replaced
    return replaced


def _construct(node: yaml.ScalarNode) -> Any:
    """The scalar's value under its resolved tag (int, float, bool, null, str)."""
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()
