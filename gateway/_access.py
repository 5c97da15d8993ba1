"""The access log: one line per request the app answers.

Each line is an ``info`` event ``request`` of the logger ``gateway.access``
with ``method``, ``route`` (the route template, the ``route`` label of the
metrics: bounded, and no path parameter, so nothing secret a client put in a
path), ``status``, ``duration_ms`` (to the microsecond), ``request_id``,
``principal`` (null when unauthenticated), and ``client`` and
``client_port``, the peer's address (the proxy's client with
``--proxy-headers``; null on a Unix socket).

The figures are those the request's metrics already have
(``Gateway.__call__``). With the json format configured at the edge
(:func:`gateway._logging.json_lines`), a line is a small fixed-layout
msgspec struct appended to a list, made of the request's own objects (no
formatting per request); the lines of one turn of the event loop are stamped,
encoded in one ``encode_lines`` call and written in one write at the end of
that turn, through the log handler (under its lock, so lines never
interleave with other records). So a line's ``timestamp`` is when it was
written, at most one turn of the loop after the response. No dict is built,
and structlog's processor chain is not run per request. Otherwise (the
console format, or an embedding application's own logging) each line is a
structlog event of the same name and fields.
"""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec
import structlog

from gateway._logging import JsonLines, json_lines

__all__ = ["AccessLine", "AccessLog"]

_LOGGER = "gateway.access"
_log = structlog.get_logger(_LOGGER)


class AccessLine(msgspec.Struct, gc=False):
    """One access line as written in the json format (the same keys as every event)."""

    event: str
    level: str
    logger: str
    timestamp: str
    method: str
    route: str
    status: int
    duration_ms: float
    request_id: str
    principal: str | None
    client: str | None
    client_port: int | None


class AccessLog:
    """Writes the access log of one app (used on its event loop only)."""

    def __init__(self, sink: JsonLines | None) -> None:
        self._sink = sink
        self._pending: list[AccessLine] = []
        self._encode_lines = msgspec.json.Encoder().encode_lines
        #: The ISO timestamp of the current second (a timestamp's only changing part is
        #: its microseconds within one second).
        self._second = -1
        self._prefix = ""

    @classmethod
    def for_process(cls) -> AccessLog | None:
        """The access log as the process's logging is configured, or None when its logger
        is below ``info`` (nothing to write)."""
        if not logging.getLogger(_LOGGER).isEnabledFor(logging.INFO):
            return None
        return cls(json_lines())

    def record(
        self,
        method: str,
        route: str,
        status: int,
        duration: float,
        request_id: str,
        principal: str | None,
        client: tuple[str, int] | None,
    ) -> None:
        """One request's line (``duration`` in seconds)."""
        duration_ms = int(duration * 1_000_000) / 1000  # cheaper than round(), same digits
        host, port = (None, None) if client is None else client
        sink = self._sink
        if sink is None:
            _log.info(
                "request",
                method=method,
                route=route,
                status=status,
                duration_ms=duration_ms,
                request_id=request_id,
                principal=principal,
                client=host,
                client_port=port,
            )
            return
        pending = self._pending
        # Positional: the fields in order; the timestamp is set when the line is written.
        line = AccessLine("request", "info", _LOGGER, "", method, route, status, duration_ms,
                          request_id, principal, host, port)  # fmt: skip
        pending.append(line)
        if len(pending) == 1:  # the first of this turn of the loop: write them at its end
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Stamp and write the lines recorded so far (the loop does at the end of each turn)."""
        pending = self._pending
        if not pending or self._sink is None:
            return
        self._pending = []
        timestamp = self._timestamp()
        for line in pending:
            line.timestamp = timestamp
        self._sink.write(self._encode_lines(pending))

    def _timestamp(self) -> str:
        """Now, as structlog's ISO stamp in UTC (the second's part made once a second)."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"
