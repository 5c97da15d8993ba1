"""The one codec: msgpack for the wire, JSON for HTTP, built once per type.

Encoders are shared module-level instances (msgspec encoders are thread-safe);
decoders are cached per target type, so the hot path never builds one.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

__all__ = [
    "MAX_NESTING",
    "CodecError",
    "check_nesting",
    "decode_error",
    "decode_json",
    "decode_msgpack",
    "encode_json",
    "encode_msgpack",
    "json_brackets",
    "roundtrip",
    "too_deep",
]

_msgpack_encoder = msgspec.msgpack.Encoder()
_json_encoder = msgspec.json.Encoder()

encode_msgpack = _msgpack_encoder.encode
encode_json = _json_encoder.encode


class CodecError(ValueError):
    """Bytes that do not decode to the expected type.

    ``path`` is the JSON path of the offending field (``$`` for the whole
    document) and ``message`` says what was expected and what was found.
    """

    def __init__(self, message: str, path: str = "$") -> None:
        super().__init__(f"{message} - at `{path}`" if path != "$" else message)
        self.message = message
        self.path = path


#: How msgspec 0.23 and later begin a ``DecodeError`` for invalid UTF-8 inside a string.
_INVALID_UTF8 = "Invalid UTF-8"


@functools.lru_cache(maxsize=1024)
def _msgpack_decoder(target: Any) -> msgspec.msgpack.Decoder[Any]:
    return msgspec.msgpack.Decoder(target)


@functools.lru_cache(maxsize=1024)
def _json_decoder(target: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(target)


def decode_error(exc: msgspec.DecodeError | UnicodeDecodeError | RecursionError) -> CodecError:
    """What msgspec's refusal of some input means, as a :class:`CodecError`.

    For callers that decode with a msgspec decoder of their own (the gateway's
    per-type decoders). ``path`` and ``message`` split msgspec's trailing
    `` - at `$.path` `` (a suffix naming no ``$`` path, as for a dict key, keeps
    msgspec's whole wording). Invalid UTF-8 inside a string (a ``DecodeError``
    since msgspec 0.23, a ``UnicodeDecodeError`` before) and nesting past the
    interpreter's recursion limit get a message of their own.
    """
    if isinstance(exc, UnicodeDecodeError):
        return CodecError(f"invalid UTF-8 in a string ({exc.reason})")
    if isinstance(exc, RecursionError):
        return CodecError(
            "nesting too deep (nested deeper than the decoder's recursion limit, about 1000 levels)"
        )
    text = str(exc)
    if text.startswith(_INVALID_UTF8):
        return CodecError("invalid UTF-8 in a string")
    message, sep, path = text.rpartition(" - at `")
    path = path.rstrip("`")
    if sep and path.startswith("$"):
        return CodecError(message, path)
    return CodecError(text)  # e.g. "... at `key` in `$`": keep msgspec's own wording


#: The deepest nesting of containers (objects, arrays, messages) accepted from outside.
#: Far below what every encoder on the way out handles (msgspec's JSON and msgpack
#: encoders, the SSE and webhook framing around them all recurse: about 1000 levels minus
#: the caller's stack), so whatever is accepted can also be delivered.
MAX_NESTING = 100


def too_deep(value: Any, limit: int = MAX_NESTING) -> bool:
    """Whether ``value`` nests containers (dicts, lists, tuples, structs) deeper than ``limit``.

    Iterative: never raises RecursionError, whatever the depth.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        elif isinstance(item, msgspec.Struct):
            children = [getattr(item, f) for f in item.__struct_fields__]
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if not _is_scalar(child))
    return False


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | bytes) or value is None


def check_nesting(value: Any, brackets: int) -> Any:
    """``value``, or :class:`CodecError` if it nests deeper than :data:`MAX_NESTING`.

    ``brackets`` bounds the containers the input could hold (``[`` plus ``{`` in
    JSON, the byte count of msgpack): at most MAX_NESTING of them cannot nest
    deeper, so the common small input skips the walk.
    """
    if brackets > MAX_NESTING and too_deep(value):
        raise CodecError(f"nesting too deep (more than {MAX_NESTING} levels of containers)")
    return value


def decode_msgpack(data: bytes, target: Any) -> Any:
    """Decode msgpack ``data`` as ``target``; raises :class:`CodecError` (nesting deeper
    than :data:`MAX_NESTING` included)."""
    try:
        value = _msgpack_decoder(target).decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise decode_error(exc) from exc
    return check_nesting(value, len(data))


def decode_json(data: bytes, target: Any) -> Any:
    """Decode JSON ``data`` as ``target``; raises :class:`CodecError` (nesting deeper than
    :data:`MAX_NESTING` included)."""
    try:
        value = _json_decoder(target).decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise decode_error(exc) from exc
    return check_nesting(value, json_brackets(data))


def json_brackets(data: bytes) -> int:
    """How many containers JSON ``data`` could hold (strings' brackets counted too)."""
    return data.count(b"[") + data.count(b"{")


def roundtrip(message: Any) -> Any:
    """Encode ``message`` to msgpack and decode it back as its own type.

    Used by the ``serialize_messages`` setting to prove that a message can
    cross a process boundary. Raises :class:`CodecError` naming the message
    type and the field when it cannot: a value msgpack cannot encode, or one
    that comes back as something else (a ``set`` in an ``Any`` field comes
    back a ``list``).
    """
    name = type(message).__name__
    try:
        data = encode_msgpack(message)
    except (TypeError, msgspec.EncodeError, OverflowError) as exc:
        field = _unencodable_field(message)
        raise CodecError(f"{name} cannot be serialized: {exc}", field) from exc
    try:  # in-process messages: no nesting limit (that is for input from outside)
        decoded = _msgpack_decoder(message.__class__).decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise decode_error(exc) from exc
    if decoded != message:
        _check_same(name, message, decoded)
    return decoded


def _unencodable_field(message: Any) -> str:
    """The path of the first field msgpack cannot encode (``$`` if it is the message)."""
    for field in getattr(message, "__struct_fields__", ()):
        try:
            encode_msgpack(getattr(message, field))
        except (TypeError, msgspec.EncodeError, OverflowError):
            return f"$.{field}"
    return "$"


def _check_same(name: str, sent: Any, received: Any) -> None:
    """Raise CodecError for the first field of ``sent`` that came back different."""
    for field in getattr(sent, "__struct_fields__", ()):
        before, after = getattr(sent, field), getattr(received, field)
        if before == after or (before != before and after != after):  # NaN stays NaN
            continue
        raise CodecError(
            f"{name}.{field} does not survive serialization: a {type(before).__name__} came "
            f"back as a {type(after).__name__} (declare the field's type, e.g. set[str])",
            f"$.{field}",
        )
