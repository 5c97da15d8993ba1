"""uvicorn's httptools protocol with header and body read timeouts and a header size limit.

uvicorn's httptools protocol arms no timeout until a connection's first
response, and its keep-alive timeout stops at the first byte of the next
request; httptools itself buffers header bytes without limit. So a silent
connection, or one trickling header bytes (slowloris), stayed open forever and
counted against ``limit_concurrency``: enough of them made every request a
503, probes included. :class:`GatewayHttpProtocol` adds:

* a header-read timeout: from the connection's opening, from the first read
  of a request whose headers did not arrive whole, or (when uvicorn's
  keep-alive timeout is the longer) from the end of the previous response,
  until the request headers are complete. When it passes the connection is
  closed (after a 408 problem if part of a request arrived). It is off while a
  request with complete headers is being served; an idle keep-alive
  connection is closed by whichever of the two timeouts is shorter.
* a body-read timeout: a request whose body has not fully arrived within
  ``body_timeout`` seconds of its headers is cut off (the connection is
  closed; the app sees the client disconnect). It costs nothing for a body
  that arrives with its headers, the usual case: the timer is armed only when
  a read ends with a body still incomplete.
* a header size limit: the request line and headers of one request may not
  exceed ``max_header_bytes``; past it the answer is a 431 problem and the
  connection is closed. Only the bytes that fit are ever handed to the parser,
  so a 4 MB header costs at most the limit in memory.

These need no state across connections. The protocol also applies the
server's admission budgets (:mod:`gateway._admission`): it counts its
connection (idle or busy) from ``connection_made`` to ``connection_lost``, and
admits each request in ``_start_asgi_task``, where uvicorn starts the
request's task (a pipelined one included): a request over its budget gets the
refusal app instead of the gateway's (503 problem+json). The place is given
back with the response, or, if the client leaves first, when the handler
returns. uvicorn's own ``limit_concurrency`` is off.

Configure with :func:`header_limited` (the gateway's ``--header-timeout``,
``--body-timeout``, ``--max-header-bytes`` and the admission budgets); the
class goes to uvicorn's ``Config(http=...)``.
"""

# Past ~400 lines by its docstrings: the code is about 280 lines, one HTTP/1.1 protocol
# class on uvicorn's hot path, kept whole rather than spread over modules.

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from typing import Any, ClassVar

import msgspec
import structlog
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http import h11_impl
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from gateway._admission import PROBE_PATHS, Admission, Peer, is_stream_path
from gateway._problems import REASON_PHRASES, make_problem
from gateway._request import request_id

__all__ = ["GatewayHttpProtocol", "header_limited"]

_log = structlog.get_logger("gateway.protocol")
_encode = msgspec.json.Encoder().encode

# Admission hooks the method uvicorn's httptools protocol starts each request's task
# with (uvicorn 0.45+, the range pyproject pins); without it every budget would be
# silently off, so a uvicorn without it is refused here, at import.
if not callable(getattr(HttpToolsProtocol, "_start_asgi_task", None)):
    raise RuntimeError("gateway needs a uvicorn whose HttpToolsProtocol has _start_asgi_task")


def use_rfc9110_reason_phrases() -> None:
    """Make uvicorn's status lines say RFC 9110's reason phrases (413 Content Too Large,
    422 Unprocessable Content, ...): uvicorn builds them from Python's http.HTTPStatus,
    whose phrases before 3.13 are RFC 7231's. Done once, when the gateway is imported;
    it changes uvicorn's tables for the process (its other servers too, to the same end)."""
    for status, phrase in REASON_PHRASES.items():
        STATUS_LINE[status] = b"HTTP/1.1 %d %s\r\n" % (status, phrase.encode())
        h11_impl.STATUS_PHRASES[status] = phrase.encode()


use_rfc9110_reason_phrases()


#: What a request in flight was admitted on (GatewayHttpProtocol._admitted).
_NONE, _REQUEST, _PROBE, _STREAM = 0, 1, 2, 3


class GatewayHttpProtocol(HttpToolsProtocol):
    """See the module docstring. Use :func:`header_limited` to set the limits."""

    # Slots for this class's own attributes: uvicorn's ~28 fill the instance dict up to
    # CPython's limit for dicts that share their keys across instances (30); past it
    # every attribute read of a connection (uvicorn's too) takes the slower path.
    __slots__ = (
        "_admission",
        "_admitted",
        "_body_timer",
        "_header_bytes",
        "_header_timer",
        "_in_body",
        "_reading_headers",
        "_stream_peer",
        "_task",
        "idle",
        "peer",
    )

    header_timeout: ClassVar[float] = 10.0
    body_timeout: ClassVar[float] = 30.0
    max_header_bytes: ClassVar[int] = 65_536
    #: Told the reason each time a request is cut off here, below the app
    #: ("header_timeout", "body_timeout", "headers_too_large"): for metrics.
    on_cut_off: ClassVar[Callable[[str], None] | None] = None
    #: The server's budgets and counts (one per server: :func:`header_limited` makes it).
    admission: ClassVar[Admission | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        admission = type(self).admission
        if admission is None:
            raise TypeError("configure the protocol with header_limited(): it has no Admission")
        self._admission = admission
        #: No request of this connection is in flight (read by the admission).
        self.idle = True
        #: Its client address's counts while the admission counts this connection.
        self.peer: Peer | None = None
        #: The budget the request now in flight was admitted on (_NONE: none, or refused),
        #: its task, and for a stream its address's counts.
        self._admitted = _NONE
        self._task: asyncio.Task[None] | None = None
        self._stream_peer: Peer | None = None
        self._header_timer: asyncio.TimerHandle | None = None
        #: True from the end of a request (or the connection's start) to its successor's
        #: complete headers: the bytes received meanwhile are header bytes.
        self._reading_headers = True
        self._header_bytes = 0
        #: True between a request's complete headers and its complete body.
        self._in_body = False
        self._body_timer: asyncio.TimerHandle | None = None

    # -- connection ----------------------------------------------------------------

    def connection_made(  # type: ignore[override]  # as uvicorn's own
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        host = "" if self.client is None else self.client[0]  # "": a Unix socket
        if self._admission.connect(self, host) is None:
            transport.close()  # every connection is busy (counted and logged by the admission)
            return
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._admission.disconnect(self)
        if self._admitted != _NONE:
            # The client left mid-request: the place is given back when the handler
            # returns, not now (its work goes on, and must go on counting).
            admitted, self._admitted = self._admitted, _NONE
            task = self._task
            if task is None or task.done():
                self._release(admitted, self._stream_peer)
            else:
                task.add_done_callback(
                    functools.partial(self._release_when_done, admitted, self._stream_peer)
                )
        self._cancel_header_timer()
        self._cancel_body_timer()
        super().connection_lost(exc)

    def close_idle(self) -> None:
        """Close this idle connection: a new one needs its place (see gateway._admission)."""
        _log.debug("idle_connection_closed", client=_client(self.client))
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        self._parse(data)
        if self.transport.is_closing():
            return
        # Timers are armed only when a read ends inside a request: a request that
        # arrives whole (the usual case) costs none.
        if self._in_body and self._body_timer is None:
            self._body_timer = self.loop.call_later(self.body_timeout, self._body_timed_out)
        elif self._reading_headers and self._header_bytes and self._header_timer is None:
            self._arm_header_timer()

    def _parse(self, data: bytes) -> None:
        if not self._reading_headers:
            super().data_received(data)
            return
        room = self.max_header_bytes - self._header_bytes
        if len(data) <= room:
            self._header_bytes += len(data)
            super().data_received(data)
            return
        # Hand the parser only what still fits; if the headers do not end within it,
        # the limit is passed. Otherwise the rest is body or the next request.
        self._header_bytes = self.max_header_bytes
        super().data_received(data[:room])
        if self.transport.is_closing():
            return  # the parser refused the bytes (uvicorn answered 400)
        if self._reading_headers:
            self._refuse_headers_too_large()
            return
        self._parse(data[room:])
        # (Bytes of a pipelined request that follow a complete one inside the same chunk are
        # not counted: the count restarts at the message's end. That lets at most one read
        # buffer past the limit, never an unbounded amount.)

    # -- parser callbacks (httptools calls them from inside data_received) ---------

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._in_body = True
        self._cancel_header_timer()
        if self.idle:
            self.idle = False
            if self.peer is not None:
                self.peer.idle -= 1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._cancel_body_timer()
        super().on_message_complete()
        self._reading_headers = True  # what follows is the next request's header section
        self._header_bytes = 0

    def on_response_complete(self) -> None:
        # The request's place is given back with its response (before a pipelined
        # successor is admitted, in super()).
        admitted = self._admitted
        if admitted == _REQUEST:
            self._admission.requests -= 1
            self._admitted = _NONE
        elif admitted != _NONE:
            self._admitted = _NONE
            self._release(admitted, self._stream_peer)
        super().on_response_complete()
        # Idle unless uvicorn just started a pipelined request whose headers are complete.
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self.idle:
            self.idle = True
            if self.peer is not None:
                self.peer.idle += 1
        # An idle keep-alive connection is closed by uvicorn's keep-alive timer, armed
        # just now; ours is needed only if that one is the longer (partial headers of
        # the next request arm ours in data_received).
        if self.timeout_keep_alive <= self.header_timeout:
            return
        if idle and not self.transport.is_closing():
            self._arm_header_timer()

    # -- admission of each request ---------------------------------------------------

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        # uvicorn's own, with the request admitted against the budget of its kind first
        # (a few compares and increments: this runs for every request). The place is
        # given back in on_response_complete, or when the handler returns if the
        # client leaves first (connection_lost).
        admission = self._admission
        path = cycle.scope["path"]
        root = self.root_path  # uvicorn's --root-path is in front of every path
        if root and path.startswith(root):
            path = path[len(root) :]
        admitted = _NONE
        if path in PROBE_PATHS:
            if admission.probes < admission.max_probes:
                admission.probes += 1
                admitted = _PROBE
            else:
                app = self._refusal("probes")
        elif "events" in path and is_stream_path(path):
            refused = admission.admit_stream(self.peer)
            if refused is None:
                admitted = _STREAM
                self._stream_peer = self.peer
            else:
                app = self._refusal(refused)
        elif admission.requests < admission.max_requests:
            admission.requests += 1
            admitted = _REQUEST
        else:
            app = self._refusal("concurrency")
        if self.config.reset_contextvars:
            task = self.loop.create_task(cycle.run_asgi(app), context=contextvars.Context())
        else:
            task = self.loop.create_task(cycle.run_asgi(app))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)
        self._admitted = admitted
        self._task = task

    def _refusal(self, reason: str) -> ASGI3Application:
        refusal: ASGI3Application = self._admission.refuse(reason)  # type: ignore[assignment]
        return refusal

    def _release(self, admitted: int, peer: Peer | None) -> None:
        admission = self._admission
        if admitted == _REQUEST:
            admission.requests -= 1
        elif admitted == _PROBE:
            admission.probes -= 1
        else:
            admission.release_stream(peer)

    def _release_when_done(self, admitted: int, peer: Peer | None, _: asyncio.Task[None]) -> None:
        self._release(admitted, peer)

    # -- the timeout and the refusals ----------------------------------------------

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.transport.is_closing() or not self._in_body:
            return
        _log.info("request_body_timeout", client=_client(self.client), timeout=self.body_timeout)
        self._count("body_timeout")
        self.transport.close()  # the app's receive() sees http.disconnect

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self._reading_headers and self._header_bytes > 0:
            _log.info(
                "request_header_timeout",
                client=_client(self.client),
                received=self._header_bytes,
                timeout=self.header_timeout,
            )
            detail = f"the request headers were not complete within {self.header_timeout:g} s"
            self._count("header_timeout")
            self._refuse(408, "header-timeout", detail)
        else:  # nothing of a request yet (or the rest of a refused body): just close
            self.transport.close()

    def _refuse_headers_too_large(self) -> None:
        _log.warning(
            "request_headers_too_large", client=_client(self.client), limit=self.max_header_bytes
        )
        detail = f"the request line and headers are over {self.max_header_bytes} bytes"
        self._count("headers_too_large")
        self._refuse(431, "headers-too-large", detail)

    def _count(self, reason: str) -> None:
        counter = type(self).on_cut_off
        if counter is not None:
            counter(reason)

    def _refuse(self, status: int, slug: str, detail: str) -> None:
        """Answer a problem and close, unless a response is under way (then just close)."""
        self._cancel_header_timer()
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # a pipelined request: an answer now would cut into another
            return
        rid = request_id(None)
        body = _encode(make_problem(status, slug, detail, rid))
        head = [STATUS_LINE[status]]
        head.extend(
            name + b": " + value + b"\r\n"
            for name, value in (
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", rid.encode()),
                (b"connection", b"close"),
            )
        )
        self.transport.write(b"".join(head) + b"\r\n" + body)
        self.transport.close()


def header_limited(
    header_timeout: float,
    max_header_bytes: int,
    body_timeout: float = 30.0,
    on_cut_off: Callable[[str], None] | None = None,
    admission: Admission | None = None,
) -> type[GatewayHttpProtocol]:
    """A :class:`GatewayHttpProtocol` class with these limits, for ``uvicorn.Config(http=...)``.

    uvicorn builds one protocol per connection from the class it is given, so
    the limits travel as class attributes of a subclass. ``admission`` is the
    server's (a new one with the default budgets if None); give each server its
    own. Raises ValueError for a limit that is not positive.
    """
    if header_timeout <= 0 or max_header_bytes <= 0 or body_timeout <= 0:
        raise ValueError("header_timeout, body_timeout and max_header_bytes must be > 0")

    class Configured(GatewayHttpProtocol):
        pass

    Configured.header_timeout = header_timeout
    Configured.max_header_bytes = max_header_bytes
    Configured.body_timeout = body_timeout
    Configured.on_cut_off = on_cut_off
    Configured.admission = Admission() if admission is None else admission
    Configured.__name__ = Configured.__qualname__ = "GatewayHttpProtocol"
    return Configured


def _client(client: tuple[str, int] | None) -> str | None:
    return None if client is None else f"{client[0]}:{client[1]}"
