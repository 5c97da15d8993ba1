"""``GET /v1/topics/{topic}/events``: a pubsub topic as Server-Sent Events.

Each connection registers an in-process listener with the pubsub agent
(:func:`vibe_actors.agents.pubsub.listen`). The listener runs in the pubsub
agent's thread and only hands the event to this connection's event loop
(``call_soon_threadsafe``) into a bounded queue: a slow HTTP client never
slows the publisher or other subscribers. When the queue is full new events
are dropped for this client, counted in ``vibe_sse_dropped_total``, and the
client is told how many with an ``event: dropped`` message before the next
event it gets.

Wire format: one SSE message per pubsub event, ``id`` the topic's sequence
number, ``event: message``, ``data`` the JSON of ``{topic, seq, data,
published_at}``. A comment line every ``keepalive`` seconds keeps proxies
from closing an idle stream. The stream ends when the client disconnects or
the server shuts down (:meth:`TopicStreams.close_all`, called at the start
of the drain so open streams do not hold the drain up).

How many streams may be open, in all and per client address, is decided
before the app by the server's admission (:mod:`gateway._admission`,
``--max-streams``, ``--max-streams-per-client``), which keeps streams off the
budget of plain requests and below the connection limit; ``max_streams`` here
is the same limit again, for an app served some other way.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import msgspec
import structlog

from vibe_actors import ActorSystem, AskError, ErrorReply, UnknownAgent
from vibe_actors.agents import pubsub

__all__ = ["TOPIC_PATTERN", "StreamRefused", "TopicStreams"]

_log = structlog.get_logger("gateway.sse")

Send = Callable[[dict[str, Any]], Any]
Receive = Callable[[], Any]

#: A topic a stream may name (the OpenAPI document states it as the path parameter's pattern).
TOPIC_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}"
_TOPIC = re.compile(TOPIC_PATTERN)
_CLOSE = object()


class StreamRefused(Exception):
    """A stream cannot start: ``status`` and ``slug`` say why (raised before any byte is sent)."""

    def __init__(self, status: int, slug: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail


class TopicStreams:
    """The open SSE streams of one gateway app (used only on its event loop)."""

    def __init__(
        self,
        system: ActorSystem,
        *,
        pubsub_agent: str = "pubsub",
        buffer: int = 256,
        keepalive: float = 15.0,
        max_streams: int = 256,
    ) -> None:
        self._system = system
        self._pubsub = pubsub_agent
        self._buffer = buffer
        self._keepalive = keepalive
        self._max_streams = max_streams
        self._open: set[_Stream] = set()
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.events_sent = 0
        self.dropped = 0

    @property
    def open_streams(self) -> int:
        return len(self._open)

    def close_all(self) -> None:
        """End every open stream (server shutdown); new streams are refused from now on.

        Safe from any thread: the streams are ended on their event loop.
        """
        self._closing = True
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:  # not on an event loop: hand the work to the streams' loop
            running = None
        if running is loop:
            self._end_streams()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._end_streams)

    def _end_streams(self) -> None:
        for stream in list(self._open):
            stream.close()

    async def stream(self, topic: str, send: Send, receive: Receive, request_id: str) -> None:
        """Serve one stream until the client leaves or the server shuts down.

        Raises :class:`StreamRefused` (before the response starts) for an
        invalid topic, too many streams, shutdown, or a pubsub agent that is
        missing or unavailable.
        """
        if not _TOPIC.fullmatch(topic):
            raise StreamRefused(422, "invalid-topic", f"invalid topic name {topic!r}")
        if self._closing:
            raise StreamRefused(503, "shutting-down", "the server is shutting down")
        if len(self._open) >= self._max_streams:
            raise StreamRefused(503, "too-many-streams", "too many open event streams")
        self._loop = loop = asyncio.get_running_loop()
        stream = _Stream(self, self._buffer)
        listener = await self._listen(topic, loop, stream)
        self._open.add(stream)
        log = _log.bind(topic=topic, request_id=request_id)
        log.info("sse_opened", streams=len(self._open))
        try:
            await self._pump(stream, send, receive, request_id)
        finally:
            self._open.discard(stream)
            listener.close()
            log.info("sse_closed", streams=len(self._open), dropped=stream.dropped_total)

    async def _listen(
        self, topic: str, loop: asyncio.AbstractEventLoop, stream: _Stream
    ) -> pubsub.Listener:
        def deliver(event: pubsub.Event) -> None:
            # In the pubsub agent's thread: hand over, never block.
            try:
                loop.call_soon_threadsafe(stream.offer, event)
            except RuntimeError:  # the loop is closed: this stream is gone
                _log.debug("sse_event_after_close", topic=topic)

        try:
            self._system.agent_class(self._pubsub)
        except UnknownAgent:
            raise StreamRefused(404, "no-pubsub", "this system has no pubsub agent") from None
        try:
            # listen() asks the pubsub agent (so no event published after it returns is
            # missed): a blocking call, made once per stream off the event loop.
            return await asyncio.to_thread(
                pubsub.listen, self._system, topic, deliver, pubsub=self._pubsub
            )
        except AskError as exc:
            reply = exc.reply
            status = reply.http_status if isinstance(reply, ErrorReply) else 503
            detail = f"the pubsub agent cannot take the stream ({type(reply).__name__})"
            raise StreamRefused(status, "pubsub-unavailable", detail) from None

    async def _pump(self, stream: _Stream, send: Send, receive: Receive, request_id: str) -> None:
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
        await send({"type": "http.response.body", "body": b": subscribed\n\n", "more_body": True})
        disconnected = asyncio.ensure_future(_disconnect(receive))
        try:
            while True:
                getting = asyncio.ensure_future(stream.queue.get())
                done, _ = await asyncio.wait(
                    {getting, disconnected},
                    timeout=self._keepalive,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if disconnected in done:
                    getting.cancel()
                    return
                if getting not in done:
                    getting.cancel()
                    await send(_chunk(b": keepalive\n\n"))
                    continue
                item = getting.result()
                if item is _CLOSE:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
                await send(_chunk(stream.encode(item)))
        finally:
            disconnected.cancel()


class _Stream:
    """One connection's bounded queue of events, and what it had to drop."""

    __slots__ = ("dropped", "dropped_total", "owner", "queue")

    def __init__(self, owner: TopicStreams, size: int) -> None:
        self.owner = owner
        self.queue: asyncio.Queue[Any] = asyncio.Queue(size)
        self.dropped = 0  # since the last event sent (reported to the client)
        self.dropped_total = 0

    def offer(self, event: pubsub.Event) -> None:
        """On the loop: queue ``event``, or drop and count it if the client is behind."""
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            self.dropped_total += 1
            self.owner.dropped += 1

    def close(self) -> None:
        """Make the stream end after what is queued (a full queue loses its oldest)."""
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(_CLOSE)

    def encode(self, event: pubsub.Event) -> bytes:
        prefix = b""
        if self.dropped:
            count, self.dropped = self.dropped, 0
            prefix = b"event: dropped\ndata: " + msgspec.json.encode({"dropped": count}) + b"\n\n"
        self.owner.events_sent += 1
        data = msgspec.json.encode(
            {
                "topic": event.topic,
                "seq": event.seq,
                "data": event.data,
                "published_at": event.published_at,
            }
        )
        return prefix + b"id: %d\nevent: message\ndata: %s\n\n" % (event.seq, data)


def _chunk(body: bytes) -> dict[str, Any]:
    return {"type": "http.response.body", "body": body, "more_body": True}


async def _disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
