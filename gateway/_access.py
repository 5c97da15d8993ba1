"""The access log: one line per request the app answers.

Each line is an ``info`` event ``request`` of the logger ``gateway.access``
with ``method``, ``route`` (the route template, the ``route`` label of the
metrics: bounded, and no path parameter, so nothing secret a client put in a
path), ``status``, ``duration_ms``, ``request_id``, ``principal`` (null when
unauthenticated) and ``client`` (``host:port``; null on a Unix socket).

The figures are those the request's metrics already have
(``Gateway.__call__``). With the json format configured at the edge
(:func:`gateway._logging.json_lines`), a line is a small fixed-layout
msgspec struct appended to a list; the lines of one turn of the event loop
are encoded in one ``encode_lines`` call and written in one write, at the
end of that turn, through the log handler (under its lock, so lines never
interleave with other records). No dict is built, and structlog's processor
chain is not run per request. Otherwise (the console format, or an
embedding application's own logging) each line is a structlog event of the
same name and fields.
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
        address = None if client is None else f"{client[0]}:{client[1]}"
        duration_ms = round(duration * 1000, 3)
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
                client=address,
            )
            return
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        timestamp = f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"
        pending = self._pending
        pending.append(
            AccessLine(
                "request",
                "info",
                _LOGGER,
                timestamp,
                method,
                route,
                status,
                duration_ms,
                request_id,
                principal,
                address,
            )  # fmt: skip
        )
        if len(pending) == 1:  # the first of this turn of the loop: write them at its end
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write the lines recorded so far (the loop does at the end of each turn)."""
        pending = self._pending
        if not pending or self._sink is None:
            return
        self._pending = []
        self._sink.write(self._encode_lines(pending))
