"""What every Server-Sent Events stream of the gateway shares.

Two kinds of stream exist (a pubsub topic, :mod:`gateway._sse`; the runtime's
events, :mod:`gateway._runtime_events`); both serve a connection with
:func:`sse_pump` from a :class:`StreamQueue`, refuse with
:class:`StreamRefused` before the first byte, and read ``Last-Event-ID`` with
:func:`parse_last_event_id`.

Drops. A connection's queue holds at most ``size`` events. An event offered
to a full queue is dropped for that client only and counted; the client is
told with a :class:`Dropped` notice placed exactly where the lost events
were: before the first event queued after them, or, when nothing came after
them, as soon as the client has read what the queue held. A client therefore
learns of every loss once it catches up, and the notice's position says which
events it lost (those after the last event it received before the notice).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "CLOSED",
    "LAST_EVENT_ID_PATTERN",
    "Dropped",
    "Receive",
    "Send",
    "StreamQueue",
    "StreamRefused",
    "parse_last_event_id",
    "run_on_loop",
    "sse_pump",
]

Send = Callable[[dict[str, Any]], Any]
Receive = Callable[[], Any]

#: A Last-Event-ID the gateway can have sent (empty: none, as after an id-less event).
LAST_EVENT_ID_PATTERN = r"[0-9]{0,18}"
_LAST_EVENT_ID = re.compile(LAST_EVENT_ID_PATTERN)

#: What :meth:`StreamQueue.get` returns once the stream is closed: end the response.
CLOSED: Any = object()


class StreamRefused(Exception):
    """A stream cannot start: ``status`` and ``slug`` say why (raised before any byte is sent)."""

    def __init__(self, status: int, slug: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail


class Dropped:
    """A notice in a stream: ``count`` events after the last one delivered were lost."""

    __slots__ = ("count",)

    def __init__(self, count: int) -> None:
        self.count = count


class StreamQueue:
    """One connection's queue: at most ``size`` events, the drops between them as
    :class:`Dropped` notices, then :data:`CLOSED` once closed. Used on one event loop."""

    __slots__ = ("_items", "_queued", "_size", "_unreported", "dropped_total")

    def __init__(self, size: int) -> None:
        # Unbounded underneath: the bound is on events; a notice rides along with them.
        self._items: asyncio.Queue[Any] = asyncio.Queue()
        self._size = max(size, 1)
        self._queued = 0
        self._unreported = 0
        self.dropped_total = 0

    def offer(self, event: Any) -> bool:
        """Queue ``event``; False when the client is ``size`` events behind (dropped, counted
        and reported to it later)."""
        if self._queued >= self._size:
            self._unreported += 1
            self.dropped_total += 1
            return False
        if self._unreported:
            self._items.put_nowait(Dropped(self._unreported))
            self._unreported = 0
        self._items.put_nowait(event)
        self._queued += 1
        return True

    async def get(self) -> Any:
        """The next event, :class:`Dropped` notice, or :data:`CLOSED`."""
        if self._unreported and self._items.empty():
            # The client has read everything queued before the loss: tell it now.
            notice, self._unreported = Dropped(self._unreported), 0
            return notice
        item = await self._items.get()
        if item is not CLOSED and not isinstance(item, Dropped):
            self._queued -= 1
        return item

    def close(self) -> None:
        """End the stream after what is queued (and a last notice of drops, if any)."""
        if self._unreported:
            self._items.put_nowait(Dropped(self._unreported))
            self._unreported = 0
        self._items.put_nowait(CLOSED)


async def sse_pump(
    send: Send,
    receive: Receive,
    request_id: str,
    opening: bytes,
    get: Callable[[], Any],
    keepalive: float,
    encode: Callable[[Any], bytes | None],
) -> None:
    """Serve an event stream: the headers and ``opening``, then ``encode(await get())``
    until it is None (the server closes the stream) or the client disconnects; a
    keep-alive comment after ``keepalive`` idle seconds."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
                (b"x-request-id", request_id.encode()),
            ],
        }
    )
    await send(_chunk(opening))
    disconnected = asyncio.ensure_future(_disconnect(receive))
    try:
        while True:
            getting = asyncio.ensure_future(get())
            done, _ = await asyncio.wait(
                {getting, disconnected}, timeout=keepalive, return_when=asyncio.FIRST_COMPLETED
            )
            if disconnected in done:
                getting.cancel()
                return
            if getting not in done:
                getting.cancel()
                await send(_chunk(b": keepalive\n\n"))
                continue
            body = encode(getting.result())
            if body is None:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(_chunk(body))
    finally:
        disconnected.cancel()


def run_on_loop(loop: asyncio.AbstractEventLoop | None, work: Callable[[], None]) -> None:
    """Run ``work`` on ``loop`` (the streams' loop): now if this thread runs it, else
    handed to it; nothing if there is no loop or it is closed. Safe from any thread."""
    if loop is None or loop.is_closed():
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:  # not on an event loop: hand the work to the streams' loop
        running = None
    if running is loop:
        work()
    else:
        loop.call_soon_threadsafe(work)


def parse_last_event_id(raw: bytes | None) -> int | None:
    """The id a client resumes after (None: a new stream); raises StreamRefused (400)."""
    if not raw:
        return None
    text = raw.decode("latin-1").strip()
    if not _LAST_EVENT_ID.fullmatch(text):
        detail = "Last-Event-ID must be an id this stream sent: up to 18 digits"
        raise StreamRefused(400, "bad-last-event-id", detail)
    return int(text) if text else None


def _chunk(body: bytes) -> dict[str, Any]:
    return {"type": "http.response.body", "body": body, "more_body": True}


async def _disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
