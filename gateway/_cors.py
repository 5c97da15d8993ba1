"""CORS: letting a browser page on another origin use the API (off unless configured).

``--cors-origins`` (``VIBE_CORS_ORIGINS``) lists the origins allowed
(``https://app.example,https://admin.example``), or ``*`` for any. For a
request whose ``Origin`` is allowed, every response (problems and event
streams included) carries ``Access-Control-Allow-Origin`` and exposes
``X-Request-Id``, ``Retry-After`` and ``traceparent`` (tracing on). A preflight (``OPTIONS`` with
``Access-Control-Request-Method``) is answered by the gateway itself, before
authentication (a browser sends no credentials with it): 204 with the
methods the path serves and the request headers the API reads, or 403
problem+json when the origin or the method is not allowed. Without the
setting nothing changes: no CORS header is sent and ``OPTIONS`` is 405.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

from gateway._http import Send

__all__ = ["ALLOWED_REQUEST_HEADERS", "Cors", "check_origins"]

#: The request headers the API reads (a preflight may ask for any of them).
ALLOWED_REQUEST_HEADERS = (
    b"authorization, content-type, last-event-id, x-request-id, x-timeout-ms,"
    b" traceparent, tracestate"
)
_EXPOSED = (b"access-control-expose-headers", b"retry-after, x-request-id, traceparent")
_VARY = (b"vary", b"origin")
#: How long a browser may keep a preflight's answer.
_MAX_AGE = (b"access-control-max-age", b"600")


def check_origins(origins: Iterable[str]) -> list[str]:
    """The problems of a list of origins (each ``*`` or ``scheme://host[:port]``, no path)."""
    problems = []
    for origin in origins:
        scheme, sep, rest = origin.partition("://")
        if origin == "*":
            continue
        if not sep or scheme not in ("http", "https") or not rest or "/" in rest:
            problems.append(f"{origin!r} is not an origin (scheme://host[:port], or *)")
    return problems


class Cors:
    """The CORS answers for the allowed ``origins`` (see the module docstring)."""

    def __init__(self, origins: Iterable[str]) -> None:
        origins = list(origins)
        self._any = "*" in origins
        self._origins = {origin.encode() for origin in origins if origin != "*"}

    def allows(self, origin: bytes) -> bool:
        return self._any or origin in self._origins

    def _allow_origin(self, origin: bytes) -> tuple[bytes, bytes]:
        return (b"access-control-allow-origin", b"*" if self._any else origin)

    def wrap(self, send: Send, origin: bytes) -> Send:
        """``send`` with the CORS headers added to the response's start."""
        extra = (self._allow_origin(origin), _EXPOSED, _VARY)

        async def send_with_cors(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        return send_with_cors

    def preflight_headers(
        self, origin: bytes, methods: Iterable[str]
    ) -> tuple[tuple[bytes, bytes], ...]:
        """The headers of a 204 answer to an allowed preflight."""
        allow_methods = ", ".join(methods).encode()
        return (
            self._allow_origin(origin),
            (b"access-control-allow-methods", allow_methods),
            (b"access-control-allow-headers", ALLOWED_REQUEST_HEADERS),
            _MAX_AGE,
            _VARY,
        )
