"""Reading a request: its path below the mount, its headers (in one pass), its id."""

from __future__ import annotations

import itertools
import secrets

from gateway._http import Receive, Scope, Send
from vibe_actors.agents.schema import TIMEOUT_MS_DIGITS

__all__ = ["MAX_TIMEOUT_DIGITS", "Request", "lifespan", "request_id"]

#: X-Timeout-Ms past this many digits is refused; they are counted before int() is called
#: (int() of thousands of digits raises). The OpenAPI document states the same rule.
MAX_TIMEOUT_DIGITS = TIMEOUT_MS_DIGITS


_WANTED = {
    b"content-type": 0,
    b"content-length": 1,
    b"x-request-id": 2,
    b"x-timeout-ms": 3,
    b"authorization": 4,
    b"origin": 5,
    b"access-control-request-method": 6,
}


class Request:
    """One HTTP request as the gateway's endpoints see it.

    The headers the gateway reads are gathered in one pass (the first of each
    wins): ``content_type``, ``content_length``, ``timeout`` (X-Timeout-Ms),
    ``authorization``, and ``request_id`` (X-Request-Id if printable, else a
    generated one). ``path`` is the route's part of the path: under a mount
    (Starlette's ``Mount``, uvicorn's ``--root-path``) the ASGI ``path`` holds
    the whole path and ``root_path`` the mount's prefix, which is taken off.
    ``principal`` is set once the bearer token is checked; ``params`` once the
    route is matched (the template's parameters, in order).
    """

    __slots__ = (
        "authorization",
        "cors_method",
        "origin",
        "content_length",
        "content_type",
        "method",
        "ok",
        "params",
        "path",
        "principal",
        "receive",
        "request_id",
        "scope",
        "send",
        "timeout",
    )

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.method: str = scope["method"]
        path: str = scope["path"]
        root = scope.get("root_path")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        self.path = path
        # One dict lookup per header rather than a chain of compares: this runs per request.
        values: list[bytes | None] = [None, None, None, None, None, None, None]
        wanted = _WANTED.get
        for key, value in scope["headers"]:
            index = wanted(key)
            if index is not None and values[index] is None:
                values[index] = value
        # Origin, and a preflight's Access-Control-Request-Method: for gateway._cors.
        (
            self.content_type,
            self.content_length,
            raw_id,
            self.timeout,
            self.authorization,
            self.origin,
            self.cors_method,
        ) = values
        self.request_id = request_id(raw_id)
        #: The headers of every successful answer.
        self.ok = ((b"x-request-id", self.request_id.encode()),)
        self.principal: str | None = None
        self.params: tuple[str, ...] = ()


# Generated request ids: a random per-process prefix (16 hex digits) and a counter.
# Unique and unguessable enough for correlation, and ~10x cheaper than uuid4 (no
# syscall). The counter is written in decimal from 10**15, so an id is always 32
# characters of [0-9a-f] (the width of a uuid's hex) at half the cost of formatting hex.
_ID_PREFIX = secrets.token_hex(8)
_id_counter = itertools.count(10**15)


def request_id(raw: bytes | None) -> str:
    if raw and _printable(raw):
        return raw.decode("ascii")
    return _ID_PREFIX + str(next(_id_counter))


def _printable(raw: bytes) -> bool:
    return len(raw) <= 128 and all(33 <= c < 127 for c in raw)


async def lifespan(receive: Receive, send: Send) -> None:
    # The system's lifetime belongs to whoever created it; just acknowledge.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
