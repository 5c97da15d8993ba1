"""The ``@handler`` decorator and the per-class dispatch table it builds."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

import msgspec

from vibe_actors._messages import ErrorReply, Message, Request

__all__ = ["coerce_config", "collect_handlers", "handler", "handler_states", "return_types"]

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__vibe_handler__"


@overload
def handler(fn: F, /) -> F: ...


@overload
def handler(*, when: str | Iterable[str]) -> Callable[[F], F]: ...


def handler(fn: F | None = None, /, *, when: str | Iterable[str] | None = None) -> Any:
    """Mark a method as the handler of the message type(s) in its annotation.

    ::

        @handler
        def put(self, msg: Put) -> Stored: ...

        @handler(when="open")          # only while the agent is in state "open"
        def close(self, msg: Close) -> Closed: ...

    A union annotation (``msg: Put | Delete``) handles each member. Without
    ``when`` a handler is active in every state; with ``when`` (a state name or
    several) only in those (:meth:`Agent.become`), where it takes precedence
    over one without. The annotation is resolved when the Agent subclass is
    created; a missing or unresolvable one raises ``TypeError`` naming the
    method, and so does each of these mistakes (see :func:`collect_handlers`):
    a type that cannot be a message (``str``, ``dict``, ``Any``, ``object``:
    builtins and typing forms), a base class the dispatch never matches
    (``Message``, ``ErrorReply``, ``Request``, ``msgspec.Struct``: a handler runs
    for its exact class only), and a second handler for the same type in one
    class and state.
    """
    if fn is not None:
        setattr(fn, _MARK, _EVERY_STATE)
        return fn
    states = (when,) if isinstance(when, str) else tuple(when or ())
    if not states or not all(isinstance(s, str) and s for s in states):
        raise TypeError(f"handler(when=...) takes a state name or names, got {when!r}")

    def mark(method: F) -> F:
        setattr(method, _MARK, frozenset(states))
        return method

    return mark


#: The mark of a handler active in every state.
_EVERY_STATE = True


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
        problem = _not_a_message(member)
        if problem is not None:
            raise TypeError(
                f"{owner.__qualname__}.{name}: {member.__qualname__} {problem}; annotate the "
                "handler with a vibe_actors.Message subclass (a private msgspec.Struct or "
                "class is fine for messages an agent sends itself), or override "
                "on_unhandled to take any message"
            )
    return members


#: Base classes no message is an instance of exactly (dispatch is by exact class).
_ABSTRACT_BASES: frozenset[type] = frozenset({Message, ErrorReply, Request, msgspec.Struct})


def _not_a_message(member: type) -> str | None:
    """Why ``member`` cannot be a handler's message type, else None.

    Accepted: any class of the program's own, Message subclasses above all;
    private Structs and plain classes are an agent's messages to itself and
    the runtime's signals. Refused: builtins (``str``, ``dict``, ``object``),
    ``typing.Any``, and the base classes a message never is exactly.
    """
    if member in _ABSTRACT_BASES:
        return "is a base class: a handler runs only for its exact message class"
    if member.__module__ in ("builtins", "typing"):
        return "is not a message class"
    return None


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


def handler_states(cls: type) -> frozenset[str]:
    """Every state named by a ``@handler(when=...)`` of ``cls`` or its bases."""
    found: set[str] = set()
    for klass in cls.__mro__:
        for fn in vars(klass).values():
            mark = getattr(fn, _MARK, None) if callable(fn) else None
            if isinstance(mark, frozenset):
                found |= mark
    return frozenset(found)


def collect_handlers(cls: type, state: str | None = None) -> dict[type, Callable[..., Any]]:
    """Map message class -> function for ``cls``, subclasses overriding bases.

    ``state`` None: the handlers active in every state; a state name: those
    plus the handlers of that state (which take precedence). Raises
    ``TypeError`` if one class defines two handlers for the same message type
    in one state (the last would win silently); a subclass's handler replacing
    a base class's is an override, as intended.
    """
    table: dict[type, Callable[..., Any]] = {}
    for wanted in (None, state) if state is not None else (None,):
        for klass in reversed(cls.__mro__):
            own: dict[type, str] = {}
            for name, fn in vars(klass).items():
                if not callable(fn):
                    continue
                mark = getattr(fn, _MARK, None)
                if mark is None or (mark is _EVERY_STATE) != (wanted is None):
                    continue
                if wanted is not None and wanted not in mark:
                    continue
                for message_type in _message_types(klass, name, fn):
                    first = own.get(message_type)
                    if first is not None and table[message_type] is not fn:
                        where = "" if wanted is None else f" in state {wanted!r}"
                        raise TypeError(
                            f"{klass.__qualname__} has two handlers for "
                            f"{message_type.__qualname__}{where}: {first} and {name}; "
                            "keep one (one message type, one handler)"
                        )
                    own[message_type] = name
                    table[message_type] = fn
    return table
