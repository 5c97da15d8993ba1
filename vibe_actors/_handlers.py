"""The ``@handler`` decorator and the per-class dispatch table it builds."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

__all__ = ["coerce_config", "collect_handlers", "handler", "return_types"]

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__vibe_handler__"


def handler(fn: F) -> F:
    """Mark a method as the handler of the message type(s) in its annotation.

    ::

        @handler
        def put(self, msg: Put) -> Stored: ...

    A union annotation (``msg: Put | Delete``) handles each member. The
    annotation is resolved when the Agent subclass is created; a missing or
    unresolvable one raises ``TypeError`` naming the method.
    """
    setattr(fn, _MARK, True)
    return fn


def _message_types(owner: type, name: str, fn: Callable[..., Any]) -> tuple[type, ...]:
    try:
        hints = typing.get_type_hints(fn)
    except (NameError, TypeError) as exc:
        raise TypeError(f"{owner.__qualname__}.{name}: cannot resolve annotations: {exc}") from exc
    hints.pop("return", None)
    if len(hints) != 1:
        raise TypeError(
            f"{owner.__qualname__}.{name}: a handler takes one annotated message parameter"
        )
    (annotation,) = hints.values()
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = typing.get_args(annotation)
    else:
        members = (annotation,)
    for member in members:
        if not isinstance(member, type):
            raise TypeError(f"{owner.__qualname__}.{name}: {member!r} is not a message class")
    return members


def return_types(fn: Callable[..., Any]) -> tuple[type, ...]:
    """Classes named by ``fn``'s return annotation (members of a union; None dropped)."""
    try:
        annotation = typing.get_type_hints(fn).get("return")
    except (NameError, TypeError):
        return ()
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = typing.get_args(annotation)
    else:
        members = (annotation,)
    return tuple(m for m in members if isinstance(m, type) and m is not type(None))


def coerce_config(agent_class: type, config: Any) -> Any:
    """``config`` as an instance of ``agent_class.Config`` (None -> defaults; a mapping converted).

    Agents without a ``Config`` get ``config`` unchanged. Raises
    ``msgspec.ValidationError`` naming the bad field.
    """
    schema = getattr(agent_class, "Config", None)
    if schema is None or isinstance(config, schema):
        return config
    if config is None:
        return schema()
    return msgspec.convert(config, schema)


def collect_handlers(cls: type) -> dict[type, Callable[..., Any]]:
    """Map message class -> function for ``cls``, subclasses overriding bases."""
    table: dict[type, Callable[..., Any]] = {}
    for klass in reversed(cls.__mro__):
        for name, fn in vars(klass).items():
            if callable(fn) and getattr(fn, _MARK, False):
                for message_type in _message_types(klass, name, fn):
                    table[message_type] = fn
    return table
