"""A request's input, checked: media type, declared length, body size, JSON shape, deadline.

Each check raises :class:`~gateway._problems.Reject` with the problem a
client sees: 415 (not JSON), 400 (malformed JSON, a Content-Length or
X-Timeout-Ms that is no number), 413 (over the body limit), 422 (a body of
the wrong shape, naming the field; nested deeper than :data:`MAX_NESTING`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway._http import BodyTooLarge, Receive, read_body
from gateway._problems import FieldError, Reject, make_problem
from gateway._request import MAX_TIMEOUT_DIGITS
from vibe_actors import CodecError, check_nesting, decode_error, json_brackets

__all__ = [
    "MAX_LENGTH_DIGITS",
    "check_declared_length",
    "check_json_nesting",
    "invalid_body",
    "parse_timeout",
    "read_rest",
    "require_json",
    "too_large",
]

#: Content-Length past 18 digits is no size anyone can send (checked before int() is called).
MAX_LENGTH_DIGITS = 18


def require_json(raw: bytes | None, request_id: str) -> None:
    """415 unless the body is declared application/json (parameters allowed)."""
    if raw == b"application/json":
        return
    content_type = (raw or b"").split(b";")[0].strip().lower()
    if content_type != b"application/json":
        detail = "the body must be application/json"
        raise Reject(make_problem(415, "unsupported-media-type", detail, request_id))


def check_declared_length(declared: bytes, limit: int, request_id: str) -> None:
    """413 at once when Content-Length alone is over ``limit``; 400 when it is no length.

    The parser lets any run of digits through; more than 18 of them is no
    size a client can send (and int() of thousands of digits raises).
    """
    if len(declared) > MAX_LENGTH_DIGITS:
        detail = f"Content-Length must be a number of at most {MAX_LENGTH_DIGITS} digits"
        raise Reject(make_problem(400, "bad-content-length", detail, request_id))
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit, request_id)


def too_large(limit: int, request_id: str) -> Reject:
    """The 413 of a body over ``limit`` bytes."""
    # No "connection: close": closing with body bytes unread makes the kernel send
    # a reset that can destroy the 413 before the client reads it. uvicorn discards
    # the rest of the body; the header timeout (gateway._protocol) bounds that.
    detail = f"the body is over {limit} bytes"
    return Reject(make_problem(413, "body-too-large", detail, request_id))


async def read_rest(receive: Receive, received: int, limit: int, request_id: str) -> bytes:
    """The rest of a body that did not come in one message (``received`` bytes so far),
    within ``limit``; raises the 413."""
    try:
        if received > limit:
            raise BodyTooLarge
        return await read_body(receive, limit - received)
    except BodyTooLarge:
        raise too_large(limit, request_id) from None


def invalid_body(
    message_type: type,
    exc: msgspec.DecodeError | UnicodeDecodeError | RecursionError,
    request_id: str,
) -> Reject:
    """422 naming the field for a body of the wrong shape; 400 for malformed JSON."""
    error = decode_error(exc)
    if isinstance(exc, msgspec.ValidationError):
        field = FieldError(path=error.path, message=error.message)
        detail = f"the body is not a valid {message_type.__name__}: {exc}"
        return Reject(make_problem(422, "invalid-body", detail, request_id, [field]))
    return Reject(make_problem(400, "malformed-json", f"malformed JSON: {error}", request_id))


def check_json_nesting(message: Any, body: bytes, request_id: str) -> None:
    """422 for a body nested deeper than every encoder on the way out can take."""
    try:
        check_nesting(message, json_brackets(body))
    except CodecError as exc:
        raise Reject(make_problem(422, "nesting-too-deep", str(exc), request_id)) from None


def parse_timeout(raw: bytes, max_timeout_ms: int, request_id: str) -> float:
    """X-Timeout-Ms as seconds, capped at ``max_timeout_ms``; 400 unless a positive integer."""
    # The length first: int() of thousands of digits raises (Python's digit limit).
    if len(raw) > MAX_TIMEOUT_DIGITS or not raw.isdigit() or int(raw) == 0:
        detail = (
            "X-Timeout-Ms must be a positive integer of milliseconds,"
            f" at most {MAX_TIMEOUT_DIGITS} digits (it is capped at {max_timeout_ms})"
        )
        raise Reject(make_problem(400, "bad-timeout", detail, request_id))
    return min(int(raw), max_timeout_ms) / 1000
