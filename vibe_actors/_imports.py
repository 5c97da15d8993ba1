"""Import strings: ``"package.module:Qualified.Name"`` to the object it names.

The one resolver of the library: wiring files name agent classes, job kinds
name functions, the job wire names message types and a Ray host names its
agent this way. :func:`resolve_import` raises one of the four kinds of
:class:`ImportStringError` (a ``ValueError``), so a caller can tell a typo in
the string from a missing module from a module that is broken from a name the
module does not have, and word its own message from the error's fields.
"""

from __future__ import annotations

import importlib
from typing import Any

from vibe_actors._errors import VibeError

__all__ = [
    "ImportAttributeMissing",
    "ImportModuleFailed",
    "ImportModuleNotFound",
    "ImportStringError",
    "MalformedImportString",
    "resolve_import",
    "split_import_string",
]


class ImportStringError(VibeError, ValueError):
    """An import string that does not resolve; raised by :func:`resolve_import`.

    Base of the four kinds below. ``path`` is the string as given; ``module``
    and ``attribute`` are its two parts ('' when it is malformed). The original
    exception, if any, is ``__cause__``. Each kind pickles with its fields (it
    may cross a process or a Ray boundary; ``__cause__`` does not).
    """

    module: str = ""
    attribute: str = ""

    def __init__(self, path: str, *fields: str) -> None:
        # args are the subclass's constructor arguments, so unpickling rebuilds it.
        super().__init__(path, *fields)
        self.path = path


class MalformedImportString(ImportStringError):
    """Not ``module:attribute``: no ``:``, or an empty module or attribute part."""

    def __init__(self, path: str) -> None:
        super().__init__(path)

    def __str__(self) -> str:
        return f"expected 'package.module:attribute', got {self.path!r}"


class ImportModuleNotFound(ImportStringError):
    """The module does not exist: ``module`` itself or one of its parent packages.

    ``missing`` is the name Python did not find (``module`` or a package above
    it). A module that exists but imports a missing one is
    :class:`ImportModuleFailed`.
    """

    def __init__(self, path: str, module: str, attribute: str, missing: str) -> None:
        super().__init__(path, module, attribute, missing)
        self.module, self.attribute, self.missing = module, attribute, missing

    def __str__(self) -> str:
        detail = "" if self.missing == self.module else f" (no module '{self.missing}')"
        return f"module '{self.module}' not found{detail}"


class ImportModuleFailed(ImportStringError):
    """The module exists but raised while importing (a ModuleNotFoundError for something
    it imports included); ``reason`` is ``"ExcType: message"`` of that exception."""

    def __init__(self, path: str, module: str, attribute: str, reason: str) -> None:
        super().__init__(path, module, attribute, reason)
        self.module, self.attribute, self.reason = module, attribute, reason

    def __str__(self) -> str:
        return f"importing '{self.module}' failed: {self.reason}"


class ImportAttributeMissing(ImportStringError):
    """The module imported but lacks ``attribute`` (any part of the dotted name)."""

    def __init__(self, path: str, module: str, attribute: str) -> None:
        super().__init__(path, module, attribute)
        self.module, self.attribute = module, attribute

    def __str__(self) -> str:
        return f"module '{self.module}' has no attribute '{self.attribute}'"


def split_import_string(path: str) -> tuple[str, str] | None:
    """``(module, attribute)`` of ``"module:attribute"``, None if either part is empty or
    there is no ``:`` (nothing is imported)."""
    module, sep, attribute = path.partition(":")
    if not (sep and module and attribute):
        return None
    return module, attribute


def resolve_import(path: str) -> Any:
    """The object ``"package.module:Qualified.Name"`` names, importing the module if needed.

    Raises :class:`MalformedImportString` if ``path`` is not ``module:attribute``,
    :class:`ImportModuleNotFound` if the module (or a package above it) does not
    exist, :class:`ImportModuleFailed` if importing it raised an Exception (kept as
    ``__cause__``; BaseExceptions such as KeyboardInterrupt propagate as they are),
    :class:`ImportAttributeMissing` if a part of the dotted name is not there.
    """
    parts = split_import_string(path)
    if parts is None:
        raise MalformedImportString(path)
    module_name, attribute = parts
    try:
        value: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and _is_package_of(exc.name, module_name):
            raise ImportModuleNotFound(path, module_name, attribute, exc.name) from exc
        raise ImportModuleFailed(path, module_name, attribute, _reason(exc)) from exc
    except Exception as exc:  # any failure of the module's code is this kind (chained)
        raise ImportModuleFailed(path, module_name, attribute, _reason(exc)) from exc
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError as exc:
            raise ImportAttributeMissing(path, module_name, attribute) from exc
    return value


def _is_package_of(name: str, module_name: str) -> bool:
    """Whether ``name`` is ``module_name`` or a package above it (``a`` of ``a.b``)."""
    return module_name == name or module_name.startswith(name + ".")


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"
