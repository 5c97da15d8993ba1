"""Reading a request: its headers (in one pass), its id, its route template."""

from __future__ import annotations

import itertools
import secrets

from gateway._http import Receive, Scope, Send
from vibe_actors.agents.schema import TIMEOUT_MS_DIGITS

__all__ = ["ASK_ROUTE", "MAX_TIMEOUT_DIGITS", "Headers", "lifespan", "request_id", "route_of"]

#: X-Timeout-Ms past this many digits is refused; they are counted before int() is called
#: (int() of thousands of digits raises). The OpenAPI document states the same rule.
MAX_TIMEOUT_DIGITS = TIMEOUT_MS_DIGITS


class Headers:
    """The request headers the gateway reads, gathered in one pass (the first of each wins)."""

    __slots__ = ("authorization", "content_length", "content_type", "request_id", "timeout")

    def __init__(self, scope: Scope) -> None:
        # One dict lookup per header rather than a chain of compares: this runs per request.
        values: list[bytes | None] = [None, None, None, None, None]
        wanted = _WANTED.get
        for key, value in scope["headers"]:
            index = wanted(key)
            if index is not None and values[index] is None:
                values[index] = value
        self.content_type, self.content_length, raw_id, self.timeout, self.authorization = values
        if raw_id is None:  # the common case, inline: this runs per request
            self.request_id = _ID_PREFIX + str(next(_id_counter))
        else:
            self.request_id = request_id(raw_id)


_WANTED = {
    b"content-type": 0,
    b"content-length": 1,
    b"x-request-id": 2,
    b"x-timeout-ms": 3,
    b"authorization": 4,
}


ASK_ROUTE = "/v1/agents/{name}/{type}"
_TEMPLATES = {
    ("agents", 1): "/v1/agents",
    ("agents", 2): "/v1/agents/{name}",
    ("agents", 3): "/v1/agents/{name}/{type}",
    ("tree", 1): "/v1/tree",
    ("openapi.json", 1): "/v1/openapi.json",
    ("topics", 3): "/v1/topics/{topic}/events",
}


def route_of(path: str) -> str:
    """The route template for metrics labels (bounded cardinality)."""
    parts = path.strip("/").split("/")
    if len(parts) == 1 and parts[0] in ("healthz", "readyz", "metrics"):
        return "/" + parts[0]
    if parts[0] != "v1" or len(parts) < 2:
        return "unmatched"
    if parts[1] == "chaos" and len(parts) == 4 and parts[3] in ("crash", "hang"):
        return f"/v1/chaos/{{name}}/{parts[3]}"
    return _TEMPLATES.get((parts[1], len(parts) - 1), "unmatched")


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
