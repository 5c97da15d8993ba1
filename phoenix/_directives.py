"""Supervision directives in the wiring file: exception names resolved to classes.

A worker may say what each exception of its handlers does::

    - name: parser
      agent: myapp.parser:Parser
      directives: {ValueError: resume, "myapp.errors:Fatal": escalate}

A key is a builtin exception's name or ``module:Class``; a value is resume,
restart, stop or escalate (see :class:`vibe_actors.Directive`). Each bad key is
a problem at its place in the file.
"""

from __future__ import annotations

import builtins
from typing import Any

from phoenix._yaml import Document
from vibe_actors import Directive, ImportStringError, resolve_import

__all__ = ["resolve_directives"]

_CHOICES = tuple(d.value for d in Directive)


def resolve_directives(raw_root: Any, path: str, doc: Document) -> dict[str, dict[type, Directive]]:
    """Worker name -> {exception class: directive}, for every worker that declares some."""
    found: dict[str, dict[type, Directive]] = {}
    if not isinstance(raw_root, dict):
        return found
    declared = raw_root.get("directives")
    name = raw_root.get("name")
    if isinstance(declared, dict) and isinstance(name, str):
        resolved = {}
        for key, value in declared.items():
            where = f"{path}.directives.{key}"
            exception = _exception(key, where, doc)
            if value not in _CHOICES:
                doc.problem(where, f"expected {'|'.join(_CHOICES)}, got {value!r}")
            elif exception is not None:
                resolved[exception] = Directive(value)
        found[name] = resolved
    children = raw_root.get("children", [])
    if isinstance(children, list):
        for index, child in enumerate(children):
            found.update(resolve_directives(child, f"{path}.children[{index}]", doc))
    return found


def _exception(key: Any, path: str, doc: Document) -> type | None:
    """The exception class ``key`` names, or None with a problem at ``path``."""
    if not isinstance(key, str) or not key:
        doc.problem(path, f"expected an exception name, got {key!r}", key=True)
        return None
    if ":" in key:
        try:
            value = resolve_import(key)
        except ImportStringError as exc:
            doc.problem(path, str(exc), key=True)
            return None
    else:
        value = getattr(builtins, key, None)
    if not (isinstance(value, type) and issubclass(value, BaseException)):
        doc.problem(
            path,
            f"{key!r} is not an exception class (a builtin's name, or 'module:Class')",
            key=True,
        )
        return None
    return value
