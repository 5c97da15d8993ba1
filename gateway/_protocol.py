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

Both are per connection and need no state across connections or restarts.
Configure with :func:`header_limited` (the gateway's ``--header-timeout``,
``--body-timeout`` and ``--max-header-bytes``); the class goes to uvicorn's
``Config(http=...)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

import msgspec
import structlog
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from gateway._problems import make_problem
from gateway._request import request_id

__all__ = ["GatewayHttpProtocol", "header_limited"]

_log = structlog.get_logger("gateway.protocol")
_encode = msgspec.json.Encoder().encode


class GatewayHttpProtocol(HttpToolsProtocol):
    """See the module docstring. Use :func:`header_limited` to set the limits."""

    header_timeout: ClassVar[float] = 10.0
    body_timeout: ClassVar[float] = 30.0
    max_header_bytes: ClassVar[int] = 65_536
    #: Told the reason each time a request is cut off here, below the app
    #: ("header_timeout", "body_timeout", "headers_too_large"): for metrics.
    on_cut_off: ClassVar[Callable[[str], None] | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
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
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        self._cancel_body_timer()
        super().connection_lost(exc)

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
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._cancel_body_timer()
        super().on_message_complete()
        self._reading_headers = True  # what follows is the next request's header section
        self._header_bytes = 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # An idle keep-alive connection is closed by uvicorn's keep-alive timer, armed
        # just now; ours is needed only if that one is the longer (partial headers of
        # the next request arm ours in data_received).
        if self.timeout_keep_alive <= self.header_timeout:
            return
        # Idle unless uvicorn just started a pipelined request whose headers are complete.
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self.transport.is_closing():
            self._arm_header_timer()

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
            _log.info("request_header_timeout", client=_client(self.client),
                      received=self._header_bytes, timeout=self.header_timeout)  # fmt: skip
            detail = f"the request headers were not complete within {self.header_timeout:g} s"
            self._count("header_timeout")
            self._refuse(408, "header-timeout", detail)
        else:  # nothing of a request yet (or the rest of a refused body): just close
            self.transport.close()

    def _refuse_headers_too_large(self) -> None:
        _log.warning("request_headers_too_large", client=_client(self.client),
                     limit=self.max_header_bytes)  # fmt: skip
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
        head.extend(name + b": " + value + b"\r\n" for name, value in (
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", rid.encode()),
            (b"connection", b"close"),
        ))  # fmt: skip
        self.transport.write(b"".join(head) + b"\r\n" + body)
        self.transport.close()


def header_limited(
    header_timeout: float,
    max_header_bytes: int,
    body_timeout: float = 30.0,
    on_cut_off: Callable[[str], None] | None = None,
) -> type[GatewayHttpProtocol]:
    """A :class:`GatewayHttpProtocol` class with these limits, for ``uvicorn.Config(http=...)``.

    uvicorn builds one protocol per connection from the class it is given, so
    the limits travel as class attributes of a subclass.
    """
    if header_timeout <= 0 or max_header_bytes <= 0 or body_timeout <= 0:
        raise ValueError("header_timeout, body_timeout and max_header_bytes must be > 0")

    class Configured(GatewayHttpProtocol):
        pass

    Configured.header_timeout = header_timeout
    Configured.max_header_bytes = max_header_bytes
    Configured.body_timeout = body_timeout
    Configured.on_cut_off = on_cut_off
    Configured.__name__ = Configured.__qualname__ = "GatewayHttpProtocol"
    return Configured


def _client(client: tuple[str, int] | None) -> str | None:
    return None if client is None else f"{client[0]}:{client[1]}"
