"""The one codec: msgpack for the wire, JSON for HTTP, built once per type.

Encoders are shared module-level instances (msgspec encoders are thread-safe);
decoders are cached per target type, so the hot path never builds one.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

__all__ = [
    "CodecError",
    "decode_error",
    "decode_json",
    "decode_msgpack",
    "encode_json",
    "encode_msgpack",
    "roundtrip",
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


def decode_msgpack(data: bytes, target: Any) -> Any:
    """Decode msgpack ``data`` as ``target``; raises :class:`CodecError`."""
    try:
        return _msgpack_decoder(target).decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise decode_error(exc) from exc


def decode_json(data: bytes, target: Any) -> Any:
    """Decode JSON ``data`` as ``target``; raises :class:`CodecError`."""
    try:
        return _json_decoder(target).decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise decode_error(exc) from exc


def roundtrip(message: Any) -> Any:
    """Encode ``message`` to msgpack and decode it back as its own type.

    Used by the ``serialize_messages`` setting to prove that a message can
    cross a process boundary. Raises :class:`CodecError` (or msgspec's
    ``EncodeError``/``TypeError`` for unencodable values) when it cannot.
    """
    return decode_msgpack(encode_msgpack(message), message.__class__)
