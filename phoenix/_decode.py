"""Decode the parsed YAML field by field, so that every error is found in one run.

msgspec stops at the first error of a decode; a wiring file should report all
of them. So structs are decoded one field at a time (each field with msgspec),
and unknown fields, missing fields and ``__post_init__`` checks are reported
by path.
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Any

import msgspec

from phoenix import _durations as durations
from phoenix._schema import SupervisorNode, WorkerNode
from phoenix._yaml import Document

__all__ = ["INVALID", "decode_node", "decode_struct"]


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()


_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


def _describe_type(tp: Any, number: str | None = None) -> str:
    """How a message names ``tp``; ``number`` names int and float (a duration)."""
    if typing.get_origin(tp) is typing.Annotated:
        base, *metas = typing.get_args(tp)
        bounds = [
            f"{symbol} {getattr(meta, attr)}"
            for meta in metas
            if isinstance(meta, msgspec.Meta)
            for attr, symbol in _BOUNDS
            if getattr(meta, attr) is not None
        ]
        return " ".join([_describe_type(base, number), *bounds])
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "|".join(str(m.value) for m in tp)
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return "|".join(repr(a) if isinstance(a, str) else str(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        described = [_describe_type(a, number) for a in typing.get_args(tp)]
        return " or ".join(d for d in described if d != "null")
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return "a mapping"
    if number is not None and tp in (int, float):
        return number
    return getattr(tp, "__name__", str(tp)).replace("NoneType", "null")


def _kind(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def decode_struct(
    value: Any, tp: type, path: str, doc: Document, skip: tuple[str, ...] = ()
) -> Any:
    """``value`` as ``tp`` (a Struct), or INVALID after recording every problem.

    Every field is decoded on its own, so one bad field never hides another. The
    struct's own checks (``__post_init__``) run on the fields that decoded, and each
    check that fails is reported (see :func:`_construct`), also when a sibling field
    was already wrong.
    """
    if not isinstance(value, dict):
        doc.problem(path, f"expected a mapping, got {_kind(value)}")
        return INVALID
    fields = {f.encode_name: f for f in msgspec.structs.fields(tp)}
    before = len(doc.problems)
    decoded: dict[str, Any] = {}  # by attribute name
    for key, item in value.items():
        field = fields.get(key)
        if field is None:
            known = ", ".join(sorted(fields))
            doc.problem(
                f"{path}.{key}", f"unknown field '{key}' (expected one of: {known})", key=True
            )
            continue
        if key in skip:
            result = item
        else:
            unit = durations.unit_of(tp, field)
            if unit is None:
                result = decode_value(item, field.type, f"{path}.{key}", doc)
            else:
                result = decode_duration(item, field.type, unit, f"{path}.{key}", doc)
        if result is not INVALID:
            decoded[field.name] = result
    for name, field in fields.items():
        if field.required and name not in value:
            doc.problem(path, f"missing required field '{name}'")
    if any(f.required and f.name not in decoded for f in fields.values()):
        return INVALID  # nothing to build the struct's own checks on
    names = {f.name: f.encode_name for f in fields.values()}
    required = {f.name for f in fields.values() if f.required}
    result = _construct(tp, decoded, required, path, names, doc)
    return INVALID if len(doc.problems) > before else result


def _construct(
    tp: type,
    decoded: dict[str, Any],
    required: set[str],
    path: str,
    names: dict[str, str],
    doc: Document,
) -> Any:
    """``tp(**decoded)``, reporting every check of ``__post_init__`` that fails.

    A ``__post_init__`` stops at its first failing check. So when it refuses the
    fields, the field it is about is found (the first one without which the struct
    is accepted or refused for another reason), the problem is reported at that
    field, and the struct is built again without it (its default in its place),
    until it is accepted. A check no single field explains (all required) is
    reported at the mapping.
    """
    given = dict(decoded)
    while True:
        error = _refusal(tp, given)
        if error is None:
            return tp(**given)
        culprit = next(
            (
                name
                for name in given
                if name not in required
                and _refusal(tp, {k: v for k, v in given.items() if k != name}) != error
            ),
            None,
        )
        if culprit is None:
            doc.problem(path, error)
            return INVALID
        doc.problem(f"{path}.{names[culprit]}", error)
        del given[culprit]


def _refusal(tp: type, fields: dict[str, Any]) -> str | None:
    """Why ``tp(**fields)`` is refused, or None."""
    try:
        tp(**fields)
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None


def decode_duration(value: Any, tp: Any, unit: str, path: str, doc: Document) -> Any:
    """A duration field: a number with a unit (``10s``) or a plain number of ``unit``."""
    converted = value
    if isinstance(value, str):
        parsed = durations.parse(value, unit)
        if parsed is not None:
            converted = parsed
    try:
        return msgspec.convert(converted, tp)
    except msgspec.ValidationError:
        expected = _describe_type(tp, number="a duration")
        shown = doc.shown(path, value)
        doc.problem(path, f"expected {expected}, got {shown}: {durations.hint(unit)}")
        return INVALID


def _holds_struct(tp: Any) -> bool:
    """``tp`` is a Struct, or a Struct or None."""
    members = typing.get_args(tp) if typing.get_origin(tp) in _UNIONS else (tp,)
    return any(isinstance(m, type) and issubclass(m, msgspec.Struct) for m in members)


_UNIONS = (typing.Union, types.UnionType)


def decode_value(value: Any, tp: Any, path: str, doc: Document) -> Any:
    """One field: a nested struct recursively (also each struct of a list or a mapping
    of them), anything else with msgspec.convert."""
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return decode_struct(value, tp, path, doc)
    origin = typing.get_origin(tp)
    if origin in _UNIONS and value is not None:
        members = typing.get_args(tp)
        struct = next(
            (m for m in members if isinstance(m, type) and issubclass(m, msgspec.Struct)), None
        )
        if struct is not None:  # Optional[Struct]: decoded field by field too
            return decode_struct(value, struct, path, doc)
    if origin is list and isinstance(value, list) and _holds_struct(typing.get_args(tp)[0]):
        item_type = typing.get_args(tp)[0]
        items = [decode_value(item, item_type, f"{path}[{i}]", doc) for i, item in enumerate(value)]
        return INVALID if any(item is INVALID for item in items) else items
    if origin is dict and isinstance(value, dict) and _holds_struct(typing.get_args(tp)[1]):
        return _decode_mapping(value, tp, path, doc)
    try:
        return msgspec.convert(value, tp)
    except msgspec.ValidationError as exc:
        text = str(exc)
        message, _, inner = text.rpartition(" - at `")
        inner = inner.rstrip("`")
        if not message or inner == "$" or not inner.startswith("$"):
            doc.problem(path, f"expected {_describe_type(tp)}, got {doc.shown(path, value)}")
        else:  # deeper inside a list or mapping: msgspec's own words, at the exact path
            where = path + inner[1:]
            hidden = doc.shown(where, None) == "'***'"
            doc.problem(where, "invalid value" if hidden else message[0].lower() + message[1:])
        return INVALID


def _decode_mapping(value: dict[str, Any], tp: Any, path: str, doc: Document) -> Any:
    """A mapping of structs, entry by entry (every bad entry reported)."""
    key_type, item_type = typing.get_args(tp)
    result: dict[Any, Any] = {}
    valid = True
    for key, item in value.items():
        try:
            decoded_key = msgspec.convert(key, key_type)
        except msgspec.ValidationError:
            doc.problem(
                f"{path}.{key}",
                f"expected a key of {_describe_type(key_type)}, got {key!r}",
                key=True,
            )
            valid = False
            continue
        decoded = decode_value(item, item_type, f"{path}.{key}", doc)
        valid = valid and decoded is not INVALID
        result[decoded_key] = decoded
    return result if valid else INVALID


def decode_node(value: Any, path: str, doc: Document) -> SupervisorNode | WorkerNode | Any:
    """A worker (has ``agent``) or a supervisor (has ``children``, ``strategy`` or ``dynamic``)."""
    if not isinstance(value, dict):
        doc.problem(path, f"expected a mapping (a worker or a supervisor), got {_kind(value)}")
        return INVALID
    is_worker = "agent" in value or "entity" in value
    is_supervisor = "children" in value or "strategy" in value or "dynamic" in value
    if is_worker and is_supervisor:
        doc.problem(path, "a node is a worker (agent) or a supervisor (children), not both")
        return INVALID
    if not is_worker and not is_supervisor:
        doc.problem(
            path,
            "a node needs 'agent' (a worker), 'entity' (an entity kind) or 'children' "
            "(a supervisor)",
        )
        return INVALID
    if "agent" in value and "entity" in value:
        doc.problem(f"{path}.agent", "an entity kind names its class in entity.agent, not in agent")
        return INVALID
    if "entity" in value and "pool" in value:
        doc.problem(f"{path}.pool", "an entity kind has shards (entity.shards), not a pool")
        return INVALID
    if is_worker:
        return decode_struct(value, WorkerNode, path, doc, skip=("config",))
    node = decode_struct(value, SupervisorNode, path, doc, skip=("children",))
    children = value.get("children", [])
    if not isinstance(children, list):
        doc.problem(f"{path}.children", f"expected a list of nodes, got {_kind(children)}")
        return INVALID
    decoded = [decode_node(child, f"{path}.children[{i}]", doc) for i, child in enumerate(children)]
    if node is INVALID or any(child is INVALID for child in decoded):
        return INVALID
    return msgspec.structs.replace(node, children=decoded)
