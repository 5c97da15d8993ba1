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

from phoenix._schema import SupervisorNode, WorkerNode
from phoenix._yaml import Document

__all__ = ["INVALID", "decode_node", "decode_struct"]


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()


_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


def _describe_type(tp: Any) -> str:
    if typing.get_origin(tp) is typing.Annotated:
        base, *metas = typing.get_args(tp)
        bounds = [
            f"{symbol} {getattr(meta, attr)}"
            for meta in metas
            if isinstance(meta, msgspec.Meta)
            for attr, symbol in _BOUNDS
            if getattr(meta, attr) is not None
        ]
        return " ".join([_describe_type(base), *bounds])
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "|".join(str(m.value) for m in tp)
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return "|".join(repr(a) if isinstance(a, str) else str(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe_type(a) for a in typing.get_args(tp) if a is not type(None))
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return "a mapping"
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
    """``value`` as ``tp`` (a Struct), or INVALID after recording every problem."""
    if not isinstance(value, dict):
        doc.problem(path, f"expected a mapping, got {_kind(value)}")
        return INVALID
    fields = {f.encode_name: f for f in msgspec.structs.fields(tp)}
    before = len(doc.problems)
    decoded: dict[str, Any] = {}
    for key, item in value.items():
        field = fields.get(key)
        if field is None:
            known = ", ".join(sorted(fields))
            doc.problem(
                f"{path}.{key}", f"unknown field '{key}' (expected one of: {known})", key=True
            )
        elif key in skip:
            decoded[key] = item
        else:
            result = decode_value(item, field.type, f"{path}.{key}", doc)
            if result is not INVALID:
                decoded[key] = result
    for name, field in fields.items():
        if field.required and name not in value:
            doc.problem(path, f"missing required field '{name}'")
    if len(doc.problems) > before:
        return INVALID
    try:
        return tp(**decoded)
    except (ValueError, TypeError) as exc:
        doc.problem(path, str(exc))
        return INVALID


def decode_value(value: Any, tp: Any, path: str, doc: Document) -> Any:
    """One field: a nested struct recursively, anything else with msgspec.convert."""
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return decode_struct(value, tp, path, doc)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and value is not None:
        members = typing.get_args(tp)
        struct = next(
            (m for m in members if isinstance(m, type) and issubclass(m, msgspec.Struct)), None
        )
        if struct is not None:  # Optional[Struct]: decoded field by field too
            return decode_struct(value, struct, path, doc)
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


def decode_node(value: Any, path: str, doc: Document) -> SupervisorNode | WorkerNode | Any:
    """A worker (has ``agent``) or a supervisor (has ``children`` or ``strategy``)."""
    if not isinstance(value, dict):
        doc.problem(path, f"expected a mapping (a worker or a supervisor), got {_kind(value)}")
        return INVALID
    is_worker = "agent" in value
    is_supervisor = "children" in value or "strategy" in value
    if is_worker and is_supervisor:
        doc.problem(path, "a node is a worker (agent) or a supervisor (children), not both")
        return INVALID
    if not is_worker and not is_supervisor:
        doc.problem(path, "a node needs 'agent' (a worker) or 'children' (a supervisor)")
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
