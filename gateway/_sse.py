"""``GET /v1/topics/{topic}/events``: a pubsub topic as Server-Sent Events, resumable.

Each topic that has been streamed has one in-process listener with the pubsub
agent (:func:`vibe_actors.agents.pubsub.listen`) and a bounded history of its
recent events (``history`` events). The listener runs in the pubsub agent's
thread and only hands the event to the event loop (``call_soon_threadsafe``);
there it is added to the topic's history and offered to each open stream of
the topic, into that stream's bounded queue: a slow HTTP client never slows
the publisher or other subscribers. When a stream's queue is full new events
are dropped for that client, counted in ``vibe_sse_dropped_total``, and the
client is told how many with an ``event: dropped`` message where they were
lost, at the latest once it has read what was queued before them
(:mod:`gateway._sse_wire`).

Resuming: a client that reconnects with ``Last-Event-ID: N`` (browsers'
``EventSource`` do by themselves) first gets, from the topic's history, every
event after ``N``, then the live ones, with no gap and no duplicate (the
replay is read and the stream attached in one step of the loop). When the
history cannot say what came after ``N`` (the events are older than it keeps,
the topic was not being kept then, or ``N`` is no id of this topic) the
client gets an ``event: gap`` first, never a silent gap, then all that the
history holds. The history keeps a topic once it has been streamed, also
while no client is connected (that is what a reconnecting client missed), for
the ``history_topics`` most recently streamed topics; a topic with a stream
open is never forgotten.

Wire format. The stream starts with ``retry: <retry_ms>`` (the reconnection
delay asked of the client) and a ``: subscribed`` comment. Every event has an
``id``: its position in the topic, the value to send back as Last-Event-ID.

* ``event: message``, ``id`` the topic's sequence number, ``data`` the JSON
  of ``{topic, seq, data, published_at}``;
* ``event: dropped``, ``data`` ``{"dropped": count}``: events this client's
  queue had no room for; ``id`` the last event delivered before them (send it
  back to have them replayed while the history holds them);
* ``event: gap``, ``data`` ``{"last_event_id": N, "resumed_from": id}``: the
  events after ``N`` up to ``resumed_from`` cannot be replayed; ``id`` is
  ``resumed_from``, and the events after it follow.

A comment line every ``keepalive`` seconds keeps proxies from closing an idle
stream. The stream ends when the client disconnects or the server shuts down
(:meth:`TopicStreams.close_all`, called at the start of the drain so open
streams do not hold the drain up).

How many streams may be open, in all and per client address, is decided
before the app by the server's admission (:mod:`gateway._admission`,
``--max-streams``, ``--max-streams-per-client``), which keeps streams off the
budget of plain requests and below the connection limit; ``max_streams`` here
is the same limit again, for an app served some other way.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict, deque
from typing import Any

import msgspec
import structlog

from gateway._sse_wire import (
    CLOSED,
    Dropped,
    Receive,
    Send,
    StreamQueue,
    StreamRefused,
    parse_last_event_id,
    run_on_loop,
    sse_pump,
)
from vibe_actors import ActorSystem, AskError, ErrorReply, UnknownAgent
from vibe_actors.agents import pubsub

__all__ = ["TOPIC_PATTERN", "TopicStreams"]

_log = structlog.get_logger("gateway.sse")

#: A topic a stream may name (the OpenAPI document states it as the path parameter's pattern).
TOPIC_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}"
_TOPIC = re.compile(TOPIC_PATTERN)


class TopicStreams:
    """The open SSE streams and the topic histories of one gateway app (used only on its
    event loop, but for :meth:`close_all`)."""

    def __init__(
        self,
        system: ActorSystem,
        *,
        pubsub_agent: str = "pubsub",
        buffer: int = 256,
        keepalive: float = 15.0,
        max_streams: int = 256,
        history: int = 256,
        history_topics: int = 256,
        retry_ms: int = 3000,
    ) -> None:
        self._system = system
        self._pubsub = pubsub_agent
        self._buffer = buffer
        self._keepalive = keepalive
        self._max_streams = max_streams
        self._history = history
        self._history_topics = history_topics
        self._opening = b"retry: %d\n: subscribed\n\n" % retry_ms
        self._open: set[_Stream] = set()
        #: topic -> its history, the least recently streamed first.
        self._topics: OrderedDict[str, _Topic] = OrderedDict()
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.events_sent = 0
        self.dropped = 0

    @property
    def open_streams(self) -> int:
        return len(self._open)

    @property
    def kept_topics(self) -> int:
        """Topics whose history is kept."""
        return len(self._topics)

    def close_all(self) -> None:
        """End every open stream (server shutdown); new streams are refused from now on.

        Safe from any thread: the streams are ended on their event loop.
        """
        self._closing = True
        run_on_loop(self._loop, self._end_streams)

    def _end_streams(self) -> None:
        for stream in list(self._open):
            stream.close()
        for topic in self._topics.values():
            topic.close()
        self._topics.clear()

    async def stream(
        self,
        topic: str,
        send: Send,
        receive: Receive,
        request_id: str,
        last_event_id: bytes | None = None,
    ) -> None:
        """Serve one stream until the client leaves or the server shuts down.

        ``last_event_id``: the Last-Event-ID header's value (the events after it
        are replayed first). Raises :class:`StreamRefused` (before the response
        starts) for an invalid topic or Last-Event-ID, too many streams,
        shutdown, or a pubsub agent that is missing or unavailable.
        """
        if not _TOPIC.fullmatch(topic):
            raise StreamRefused(422, "invalid-topic", f"invalid topic name {topic!r}")
        resume = parse_last_event_id(last_event_id)
        if self._closing:
            raise StreamRefused(503, "shutting-down", "the server is shutting down")
        if len(self._open) >= self._max_streams:
            raise StreamRefused(503, "too-many-streams", "too many open event streams")
        self._loop = asyncio.get_running_loop()
        kept = await self._topic(topic)
        # From here to the stream's registration nothing awaits: the replay and the live
        # events meet without a gap or a duplicate.
        stream = _Stream(self, self._buffer, kept.latest if resume is None else resume)
        backlog = b"" if resume is None else kept.replay(stream, resume)
        kept.streams.add(stream)
        self._open.add(stream)
        log = _log.bind(topic=topic, request_id=request_id)
        log.info("sse_opened", streams=len(self._open), resumed_from=resume)
        try:
            await self._pump(stream, send, receive, request_id, backlog)
        finally:
            self._open.discard(stream)
            kept.streams.discard(stream)
            log.info("sse_closed", streams=len(self._open), dropped=stream.dropped_total)

    async def _topic(self, topic: str) -> _Topic:
        """The kept topic, listened to (its first stream starts listening)."""
        while True:
            kept = self._topics.get(topic)
            if kept is None:
                return await self._keep(topic)
            self._topics.move_to_end(topic)
            if not kept.ready.done():  # another stream is starting to listen: wait for it
                await asyncio.wait({kept.ready})
            if kept.ready.cancelled():
                continue  # that stream was cancelled before it listened: start anew
            refused = kept.ready.exception()
            if refused is not None:
                raise refused
            return kept

    async def _keep(self, topic: str) -> _Topic:
        self._check_pubsub()
        kept = self._topics[topic] = _Topic(self._history)
        self._forget_idle()
        try:
            kept.listener, kept.floor = await self._listen(topic, kept)
        except BaseException as exc:
            if self._topics.get(topic) is kept:
                del self._topics[topic]
            kept.failed(exc)
            raise
        if self._closing:  # the server began to drain meanwhile
            kept.close()
            raise StreamRefused(503, "shutting-down", "the server is shutting down")
        kept.latest = max(kept.latest, kept.floor)
        kept.ready.set_result(None)
        return kept

    def _forget_idle(self) -> None:
        """Forget the least recently streamed topics past ``history_topics``, sparing those
        with an open stream (or one starting)."""
        excess = len(self._topics) - self._history_topics
        if excess <= 0:
            return
        for name, kept in list(self._topics.items()):
            if excess == 0:
                break
            if not kept.streams and kept.ready.done():
                del self._topics[name]
                kept.close()
                excess -= 1

    def _check_pubsub(self) -> None:
        try:
            self._system.agent_class(self._pubsub)
        except UnknownAgent:
            raise StreamRefused(404, "no-pubsub", "this system has no pubsub agent") from None

    async def _listen(self, topic: str, kept: _Topic) -> tuple[pubsub.Listener, int]:
        """Listen to ``topic`` for ``kept``; returns the listener and the topic's sequence
        number read after it was registered (every later event reaches ``kept``)."""
        loop = asyncio.get_running_loop()

        def deliver(event: pubsub.Event) -> None:
            # In the pubsub agent's thread: hand over, never block.
            try:
                loop.call_soon_threadsafe(kept.offer, event)
            except RuntimeError:  # the loop is closed: this app is gone
                _log.debug("sse_event_after_close", topic=topic)

        try:
            # listen() and the sequence number are asks of the pubsub agent (so no event
            # published after they return is missed): blocking calls, made once per kept
            # topic, off the event loop.
            listener = await asyncio.to_thread(
                pubsub.listen, self._system, topic, deliver, pubsub=self._pubsub
            )
        except AskError as exc:
            raise _unavailable(exc) from None
        try:
            topics = await asyncio.to_thread(self._system.ask, self._pubsub, pubsub.Topics())
        except AskError as exc:
            listener.close()
            raise _unavailable(exc) from None
        except BaseException:
            listener.close()
            raise
        seq = next((t.seq for t in topics.topics if t.topic == topic), 0)
        return listener, seq

    async def _pump(
        self, stream: _Stream, send: Send, receive: Receive, request_id: str, backlog: bytes
    ) -> None:
        def encode(item: Any) -> bytes | None:
            return None if item is CLOSED else stream.encode(item)

        await sse_pump(
            send, receive, request_id, self._opening + backlog, stream.get,
            self._keepalive, encode,
        )  # fmt: skip


class _Topic:
    """One kept topic: its listener, its recent events, and its open streams.

    Every event published with a sequence number above ``floor`` is in
    ``events`` (``floor`` rises as the oldest ones are let go); ``latest`` is
    the last sequence number known.
    """

    __slots__ = ("_size", "events", "floor", "latest", "listener", "ready", "streams")

    def __init__(self, size: int) -> None:
        self.events: deque[pubsub.Event] = deque()
        self._size = size
        self.floor = 0
        self.latest = 0
        self.listener: pubsub.Listener | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.streams: set[_Stream] = set()

    def offer(self, event: pubsub.Event) -> None:
        """On the loop: keep ``event`` and offer it to every open stream of the topic."""
        if event.seq <= self.latest and self.ready.done():
            # The numbering started over (a pubsub agent without persistence restarted):
            # the ids kept mean nothing any more.
            self.events.clear()
            self.floor = event.seq - 1
        self.latest = event.seq
        events = self.events
        if self._size:
            if len(events) >= self._size:
                self.floor = events.popleft().seq
            events.append(event)
        else:
            self.floor = event.seq
        for stream in self.streams:
            stream.offer(event)

    def replay(self, stream: _Stream, after: int) -> bytes:
        """What a stream resuming after id ``after`` is sent before the live events."""
        gap = b""
        if after < self.floor or after > self.latest:
            resumed = self.floor if after < self.floor else self.latest
            data = msgspec.json.encode({"last_event_id": after, "resumed_from": resumed})
            gap = b"id: %d\nevent: gap\ndata: %s\n\n" % (resumed, data)
            after = resumed
            stream.position = resumed
        return gap + b"".join(stream.encode(e) for e in self.events if e.seq > after)

    def failed(self, exc: BaseException) -> None:
        """Listening failed: a refusal is every waiting stream's; anything else (a
        cancellation) makes them start anew."""
        if self.ready.done():
            return
        if isinstance(exc, StreamRefused):
            self.ready.set_exception(exc)
            self.ready.exception()  # marked retrieved: the waiters raise it, or none does
        else:
            self.ready.cancel()

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None


class _Stream(StreamQueue):
    """One connection's bounded queue of events (:class:`~gateway._sse_wire.StreamQueue`),
    and the id of the last event it was sent."""

    __slots__ = ("owner", "position")

    def __init__(self, owner: TopicStreams, size: int, position: int) -> None:
        super().__init__(size)
        self.owner = owner
        #: The id of the last event this client was sent (or resumed from).
        self.position = position

    def offer(self, event: pubsub.Event) -> bool:
        """On the loop: queue ``event``, or drop and count it if the client is behind."""
        if super().offer(event):
            return True
        self.owner.dropped += 1
        return False

    def encode(self, item: pubsub.Event | Dropped) -> bytes:
        if isinstance(item, Dropped):
            data = msgspec.json.encode({"dropped": item.count})
            return b"id: %d\nevent: dropped\ndata: %s\n\n" % (self.position, data)
        self.owner.events_sent += 1
        self.position = item.seq
        data = msgspec.json.encode(
            {
                "topic": item.topic,
                "seq": item.seq,
                "data": item.data,
                "published_at": item.published_at,
            }
        )
        return b"id: %d\nevent: message\ndata: %s\n\n" % (item.seq, data)


def _unavailable(exc: AskError) -> StreamRefused:
    reply = exc.reply
    status = reply.http_status if isinstance(reply, ErrorReply) else 503
    detail = f"the pubsub agent cannot take the stream ({type(reply).__name__})"
    return StreamRefused(status, "pubsub-unavailable", detail)
