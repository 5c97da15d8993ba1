"""``GET /v1/events``: the runtime's events as Server-Sent Events, resumable.

The system publishes what supervision does (:mod:`vibe_actors._events`:
crashes, restarts, give-ups, abandoned incarnations, opened circuits, dead
letters, dynamic children, reloads, hung agents declared by the watchdog) on
its :class:`~vibe_actors.EventStream`. The app subscribes once, when it is
created: the callback runs in the emitting agent's thread, numbers the event
and keeps it in a bounded history under a lock (never blocking the emitter),
and hands it to the event loop for the open streams. Each stream has its own
bounded queue: a slow client loses events (told with ``event: dropped``),
never slows an agent.

Wire format: ``retry:`` and a ``: subscribed`` comment first; then one event
per runtime event, ``event: <its type name>`` (``AgentCrashedEvent``,
``AgentRestarted``, ``DeadLettered``, ...), ``id`` its number in this app,
``data`` the JSON of its fields plus ``type``. A client reconnecting with
``Last-Event-ID: N`` first gets the kept events after ``N`` (an ``event: gap``
when the history no longer reaches back to ``N``), then the live ones.

The same history answers ``GET /v1/system`` (reloads and escalations since
the app started, :func:`RuntimeEvents.recent`).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import structlog

from gateway._app_settings import AppSettings
from gateway._sse_wire import (
    CLOSED,
    Dropped,
    StreamQueue,
    StreamRefused,
    parse_last_event_id,
    run_on_loop,
    sse_pump,
)
from vibe_actors import ActorSystem, RuntimeEvent

__all__ = ["RuntimeEvents"]

_log = structlog.get_logger("gateway.events")


class RuntimeEvents:
    """The runtime events of one system for one app: a numbered history and the open
    streams (the history is filled from agent threads; streams live on the event loop)."""

    def __init__(
        self,
        system: ActorSystem,
        *,
        history: int = 256,
        buffer: int = 256,
        keepalive: float = 15.0,
        max_streams: int = 256,
        retry_ms: int = 3000,
    ) -> None:
        self._lock = threading.Lock()
        self._history: deque[_Kept] = deque(maxlen=max(history, 1))
        self._seq = 0
        self._buffer = buffer
        self._keepalive = keepalive
        self._max_streams = max_streams
        self._opening = b"retry: %d\n: subscribed\n\n" % retry_ms
        self._streams: set[StreamQueue] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self.events_sent = 0
        self.dropped = 0
        self._unsubscribe: Callable[[], None] | None = system.events.subscribe(self._on_event)

    @classmethod
    def for_app(cls, system: ActorSystem, settings: AppSettings) -> RuntimeEvents:
        """The runtime events of an app: the topic streams' limits apply to these too."""
        return cls(
            system,
            history=settings.stream_history,
            buffer=settings.stream_buffer,
            keepalive=settings.keepalive_seconds,
            max_streams=settings.max_streams,
            retry_ms=settings.retry_ms,
        )

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    @property
    def last_id(self) -> int:
        """The id of the latest event (0: none yet)."""
        with self._lock:
            return self._seq

    def _on_event(self, event: RuntimeEvent) -> None:
        """In the emitting thread: number and keep ``event``, wake the streams (it is encoded
        only if a stream sends it: the emitter pays a lock and an append)."""
        with self._lock:
            self._seq += 1
            kept = _Kept(self._seq, event)
            self._history.append(kept)
            loop = self._loop
        if loop is not None and self._streams:
            try:
                loop.call_soon_threadsafe(self._offer, kept)
            except RuntimeError:  # the loop is closed: this app is gone
                _log.debug("runtime_event_after_close", event_type=type(event).__name__)

    def _offer(self, kept: _Kept) -> None:
        for stream in self._streams:
            if not stream.offer(kept):
                self.dropped += 1

    def recent(self, kinds: Iterable[type[RuntimeEvent]], limit: int = 50) -> list[RuntimeEvent]:
        """The kept events of ``kinds``, oldest first (at most ``limit``)."""
        wanted = tuple(kinds)
        with self._lock:
            found = [kept.event for kept in self._history if isinstance(kept.event, wanted)]
        return found[-limit:]

    def close_all(self) -> None:
        """Stop listening and end every open stream (the drain); safe from any thread."""
        self._closing = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        run_on_loop(self._loop, self._end_streams)

    def _end_streams(self) -> None:
        for stream in list(self._streams):
            stream.close()

    async def stream(
        self, send: Any, receive: Any, request_id: str, resume_header: bytes | None
    ) -> None:
        """Serve one stream until the client leaves or the server shuts down.

        Raises :class:`~gateway._sse_wire.StreamRefused` before the response starts:
        a malformed Last-Event-ID (400), too many streams or shutting down (503).
        """
        resume = parse_last_event_id(resume_header)
        if self._closing:
            raise StreamRefused(503, "shutting-down", "the server is shutting down")
        if len(self._streams) >= self._max_streams:
            raise StreamRefused(503, "too-many-streams", "too many open event streams")
        self._loop = asyncio.get_running_loop()
        stream = StreamQueue(self._buffer)
        with self._lock:  # the replay and the live events meet without a gap or a duplicate
            backlog = b"" if resume is None else self._replay(resume)
            self._streams.add(stream)
        log = _log.bind(request_id=request_id)
        log.info("events_stream_opened", streams=len(self._streams), resumed_from=resume)
        try:
            await sse_pump(
                send, receive, request_id, self._opening + backlog, stream.get, self._keepalive,
                self._encode_next(stream),
            )  # fmt: skip
        finally:
            self._streams.discard(stream)
            log.info(
                "events_stream_closed", streams=len(self._streams), dropped=stream.dropped_total
            )

    def _encode_next(self, stream: StreamQueue) -> Callable[[Any], bytes | None]:
        def encode(item: Any) -> bytes | None:
            if item is CLOSED:
                return None
            if isinstance(item, Dropped):
                return b"event: dropped\ndata: %s\n\n" % msgspec.json.encode(
                    {"dropped": item.count}
                )
            self.events_sent += 1
            kept: _Kept = item
            return kept.frame()

        return encode

    def _replay(self, after: int) -> bytes:
        """Under the lock: the kept events after ``after`` (a gap event if not all are kept)."""
        kept = self._history
        oldest = kept[0].seq if kept else self._seq + 1
        gap = b""
        if after > self._seq or after < oldest - 1:
            resumed = self._seq if after > self._seq else oldest - 1
            data = msgspec.json.encode({"last_event_id": after, "resumed_from": resumed})
            gap = b"id: %d\nevent: gap\ndata: %s\n\n" % (resumed, data)
            after = resumed
        return gap + b"".join(k.frame() for k in kept if k.seq > after)


class _Kept:
    """One numbered event, and its SSE frame once a stream needed it."""

    __slots__ = ("_frame", "event", "seq")

    def __init__(self, seq: int, event: RuntimeEvent) -> None:
        self.seq = seq
        self.event = event
        self._frame: bytes | None = None

    def frame(self) -> bytes:
        """``id``, ``event`` (the type's name) and ``data`` (its fields and ``type``), encoded
        once (on the event loop; two encodings racing would make the same bytes)."""
        if self._frame is None:
            name = type(self.event).__name__
            fields = msgspec.to_builtins(self.event)
            fields["type"] = name
            data = msgspec.json.encode(fields)
            self._frame = b"id: %d\nevent: %s\ndata: %s\n\n" % (self.seq, name.encode(), data)
        return self._frame
