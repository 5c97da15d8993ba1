"""The HTTP face of message types: their class names, whatever their wire tags.

The system agents tag their messages by agent (``pubsub.Subscribe``: see
:func:`vibe_actors._messages.namespaced`), so that same-named messages of two
agents never share a tag in msgpack, JSON or a store. Over HTTP a message
type keeps its class name, its *HTTP name*: the route segment
(``POST /v1/agents/pubsub/Subscribe``), the ``type`` of a request body (the
wire tag is accepted too), of a reply and of the error reply in a problem,
and the ``type`` of the JSON Schemas and the OpenAPI document. A user's
message type with a ``tag=`` of its own is shown with that tag, as ever.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from vibe_actors._messages import HTTP_NAMES

__all__ = ["http_json", "http_name", "retagged"]

_encode = msgspec.json.Encoder().encode
#: A tag as msgspec encodes it: the first key of its object.
_TAG = re.compile(rb'\{"type":"([^"\\]+)"')


def http_name(tag: str) -> str:
    """The HTTP name of the message type tagged ``tag`` (``tag`` itself if not namespaced)."""
    return HTTP_NAMES.get(tag, tag)


class _Namespaced(dict[type, bool]):
    """type -> whether its instances encode a namespaced tag (filled on first sight)."""

    def __missing__(self, cls: type) -> bool:
        tag = cls.__struct_config__.tag if issubclass(cls, msgspec.Struct) else None
        self[cls] = answer = isinstance(tag, str) and tag in HTTP_NAMES
        return answer


_NAMESPACED = _Namespaced()


def http_json(value: Any, inner: Any = None) -> bytes:
    """``value`` as JSON for an HTTP client: namespaced tags shown as HTTP names.

    Only a ``value`` (or ``inner``, a value it holds: a problem's reply) of a
    namespaced type is rewritten, with the messages it nests; any other is
    encoded as it is. Raises what :func:`msgspec.json.encode` raises.
    """
    body = _encode(value)
    if _NAMESPACED[type(value)] or (inner is not None and _NAMESPACED[type(inner)]):
        body = _TAG.sub(_shown, body)
    return body


def _shown(match: re.Match[bytes]) -> bytes:
    name = HTTP_NAMES.get(match.group(1).decode())
    return match.group(0) if name is None else b'{"type":"' + name.encode() + b'"'


def retagged(message_type: type, body: bytes) -> bytes | None:
    """``body`` with its ``type`` set to ``message_type``'s wire tag, if it named the type by
    its HTTP name instead; None when that is not so (not a JSON object, another ``type``,
    or a type whose tag is its name): then the body's own decoding error stands."""
    tag = message_type.__struct_config__.tag  # type: ignore[attr-defined]
    if tag == message_type.__name__ or not isinstance(tag, str):
        return None
    try:
        data = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("type") != message_type.__name__:
        return None
    data["type"] = tag
    return _encode(data)
