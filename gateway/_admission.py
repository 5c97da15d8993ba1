"""Admission control: separate budgets for connections, requests, probes and event streams.

uvicorn's ``limit_concurrency`` counted every connection and every request
against one number and answered past it with a ``text/plain`` 503: a thousand
open event streams, or a thousand idle sockets, made every request a 503,
``/healthz`` and ``/readyz`` included. Here each kind of load has its own
budget, counted by :class:`gateway._protocol.GatewayHttpProtocol` (uvicorn's
own limit is off):

* **Requests** (``max_concurrency``): requests in flight, from their complete
  headers until their task ends (a request whose client left still counts
  until its handler returns). Probes and event streams are not counted here.
* **Probes** (``probe_reserve``): ``GET /healthz``, ``/livez``, ``/readyz`` and
  ``/metrics`` (exact paths) have a budget of their own, so they are served
  however busy the rest is.
* **Event streams** (``max_streams`` in all, ``max_streams_per_client`` per
  client address): ``/v1/topics/{topic}/events`` and ``/v1/events``,
  long-lived, kept off the request budget.
* **Connections** (``max_connections`` in all, ``max_idle_per_client`` idle
  ones per client address). A connection is idle while no request of its is in
  flight (a new one is idle until its first request's headers are complete).
  A new connection past either limit closes the oldest idle connection (of its
  own address for the per-address limit, of any address for the total) to make
  room: idle sockets cannot lock out a client that has a request to send. Only
  if every connection is busy is the new one closed at once; the settings make
  that impossible in steady state, since the budgets of requests, probes and
  streams together stay below ``max_connections``.

A request refused by a budget is answered ``503 application/problem+json``
with ``Retry-After: 1``, and counted in ``vibe_http_refused_total{reason}``
(:data:`REFUSAL_REASONS`); a connection closed to make room is counted in
``vibe_http_idle_closed_total{reason}`` (:data:`IDLE_CLOSE_REASONS`).

The per-request work is a few integer compares and increments on plain
attributes, inline in the protocol: nothing is allocated per request.
Everything here runs on the server's event loop thread only.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

import msgspec
import structlog

from gateway._http import Receive, Scope, Send, header, respond
from gateway._problems import RETRY_AFTER, make_problem
from gateway._request import request_id

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = [
    "IDLE_CLOSE_REASONS",
    "PROBE_PATHS",
    "REFUSAL_REASONS",
    "Admission",
    "AdmissionLimits",
    "Peer",
    "is_stream_path",
]

_log = structlog.get_logger("gateway.admission")
_encode = msgspec.json.Encoder().encode
_PROBLEM = b"application/problem+json"

#: The probes' exact paths: served from ``probe_reserve``, never from the request budget.
PROBE_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics"})

#: Values of ``vibe_http_refused_total{reason}``: what a refused request (or, for
#: ``connections``, a connection closed at once) ran into.
REFUSAL_REASONS = ("concurrency", "probes", "streams", "client_streams", "connections")
#: Values of ``vibe_http_idle_closed_total{reason}``: the limit a new connection
#: passed when an idle one was closed to make room for it.
IDLE_CLOSE_REASONS = ("client_idle", "connections")

#: Seconds between two log lines about refusals of one reason (the counter has every one).
_LOG_EVERY = 10.0


def is_stream_path(path: str) -> bool:
    """True for ``/v1/topics/{topic}/events`` and ``/v1/events``, matched as the app routes
    them.

    The app ignores leading and trailing slashes, so this does too: a path the
    app serves as a stream is never counted as a plain request.
    """
    parts = path.strip("/").split("/")
    if len(parts) == 2:
        return parts[0] == "v1" and parts[1] == "events"
    return len(parts) == 4 and parts[0] == "v1" and parts[1] == "topics" and parts[3] == "events"


class AdmissionLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The budgets (see the module docstring). Raises ValueError naming a bad one."""

    max_connections: int = 2048
    max_idle_per_client: int = 256
    max_concurrency: int = 1000
    probe_reserve: int = 16
    max_streams: int = 256
    max_streams_per_client: int = 16

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.max_streams > self.max_connections // 2:
            raise ValueError(
                f"max_streams ({self.max_streams}) must be at most half of max_connections "
                f"({self.max_connections}): long-lived streams must leave connections for "
                "everything else"
            )
        busy = self.max_concurrency + self.probe_reserve + self.max_streams
        if busy >= self.max_connections:
            raise ValueError(
                f"max_concurrency + probe_reserve + max_streams ({busy}) must be below "
                f"max_connections ({self.max_connections}): a new connection finds room by "
                "closing an idle one, so some must be idle when every budget is spent"
            )
        if self.max_streams_per_client > self.max_streams:
            raise ValueError(
                f"max_streams_per_client ({self.max_streams_per_client}) must not exceed "
                f"max_streams ({self.max_streams})"
            )
        if self.max_idle_per_client > self.max_connections:
            raise ValueError(
                f"max_idle_per_client ({self.max_idle_per_client}) must not exceed "
                f"max_connections ({self.max_connections})"
            )


class Connection(Protocol):
    """What admission needs of a connection (:class:`gateway._protocol.GatewayHttpProtocol`)."""

    #: No request of this connection is in flight.
    idle: bool
    #: Its client address's counts; None once it is no longer counted.
    peer: Peer | None

    def close_idle(self) -> None:
        """Close the connection (it is idle): another needs its place."""


class Peer:
    """The connections and event streams of one client address."""

    __slots__ = ("connections", "host", "idle", "streams")

    def __init__(self, host: str) -> None:
        self.host = host
        #: Open connections, oldest first.
        self.connections: dict[Connection, None] = {}
        self.idle = 0
        self.streams = 0


class Admission:
    """The budgets and counts of one server.

    Used only on the server's event loop thread. The protocol reads and writes
    the request, probe and stream counts directly (it is the per-request path);
    connections go through :meth:`connect` and :meth:`disconnect`.
    """

    def __init__(self, limits: AdmissionLimits | None = None) -> None:
        self.limits = limits = limits or AdmissionLimits()
        # Copied to plain attributes: read for every request.
        self.max_requests = limits.max_concurrency
        self.max_probes = limits.probe_reserve
        self.max_streams = limits.max_streams
        self.max_streams_per_client = limits.max_streams_per_client
        self.requests = 0
        self.probes = 0
        self.streams = 0
        self.refused = dict.fromkeys(REFUSAL_REASONS, 0)
        self.idle_closed = dict.fromkeys(IDLE_CLOSE_REASONS, 0)
        #: Open connections, oldest first.
        self._connections: dict[Connection, None] = {}
        self._peers: dict[str, Peer] = {}
        self._refusals = {reason: _Refusal(reason, limits) for reason in REFUSAL_REASONS}
        self._logged: dict[str, tuple[float, int]] = {}

    # -- figures (read at scrape time) ----------------------------------------------

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    @property
    def idle_connections(self) -> int:
        return sum(peer.idle for peer in self._peers.values())

    @property
    def clients(self) -> int:
        """Client addresses with an open connection or event stream."""
        return len(self._peers)

    # -- connections ------------------------------------------------------------------

    def connect(self, connection: Connection, host: str) -> Peer | None:
        """Count a new (idle) connection from ``host``; returns its address's :class:`Peer`.

        Past a connection limit an idle connection is closed first to make room
        (see the module docstring). Returns None, counting a refusal, when every
        connection is busy: the caller must then close the new one at once.
        """
        peer = self._peers.get(host)
        if peer is None:
            peer = self._peers[host] = Peer(host)
        if peer.idle >= self.limits.max_idle_per_client:
            self._close_idle(_oldest_idle(peer.connections), "client_idle")
        if len(self._connections) >= self.limits.max_connections:
            victim = _oldest_idle(self._connections)
            if victim is None:
                self._prune(peer)
                self.refuse("connections")
                return None
            self._close_idle(victim, "connections")
        self._connections[connection] = None
        peer.connections[connection] = None
        peer.idle += 1
        connection.peer = peer
        return peer

    def disconnect(self, connection: Connection) -> None:
        """Stop counting ``connection`` (closed, or closed to make room); idempotent."""
        peer = connection.peer
        if peer is None:
            return
        connection.peer = None
        del self._connections[connection]
        del peer.connections[connection]
        if connection.idle:
            peer.idle -= 1
        self._prune(peer)

    def _close_idle(self, victim: Connection | None, reason: str) -> None:
        if victim is None:  # the counts say one is idle: they would be wrong
            raise RuntimeError(f"admission counts are inconsistent ({reason})")
        self.disconnect(victim)
        self.idle_closed[reason] += 1
        victim.close_idle()

    def _prune(self, peer: Peer) -> None:
        if not peer.connections and not peer.streams and self._peers.get(peer.host) is peer:
            del self._peers[peer.host]

    # -- requests -----------------------------------------------------------------------

    def admit_stream(self, peer: Peer | None) -> str | None:
        """Count an event stream of ``peer``'s address; the refusal reason if over a budget."""
        if self.streams >= self.max_streams:
            return "streams"
        if peer is not None:
            if peer.streams >= self.max_streams_per_client:
                return "client_streams"
            peer.streams += 1
        self.streams += 1
        return None

    def release_stream(self, peer: Peer | None) -> None:
        self.streams -= 1
        if peer is not None:
            peer.streams -= 1
            self._prune(peer)

    def refuse(self, reason: str) -> AsgiApp:
        """Count a refusal; returns the ASGI app that answers it (503 problem+json)."""
        self.refused[reason] += 1
        now = time.monotonic()
        last, count_then = self._logged.get(reason, (-_LOG_EVERY, 0))
        if now - last >= _LOG_EVERY:  # a flood of refusals is one line every 10 s
            self._logged[reason] = (now, self.refused[reason])
            _log.warning(
                "admission_refused",
                reason=reason,
                since_last_line=self.refused[reason] - count_then,
            )
        return self._refusals[reason]


def _oldest_idle(connections: dict[Connection, None]) -> Connection | None:
    # Oldest by opening: on the path of a connection past its limit only.
    for connection in connections:
        if connection.idle:
            return connection
    return None


_DETAILS = {
    "concurrency": ("over-capacity", "{max_concurrency} requests are in flight, the limit"),
    "probes": ("over-capacity", "{probe_reserve} probe requests are in flight, their limit"),
    "streams": ("too-many-streams", "{max_streams} event streams are open, the limit"),
    "client_streams": (
        "too-many-streams",
        "this client address has {max_streams_per_client} event streams open, its limit",
    ),
    "connections": ("over-capacity", "every one of {max_connections} connections is busy"),
}


class _Refusal:
    """An ASGI app answering 503 problem+json with Retry-After, without reading the body."""

    def __init__(self, reason: str, limits: AdmissionLimits) -> None:
        slug, detail = _DETAILS[reason]
        self.slug = slug
        self.detail = detail.format(**msgspec.structs.asdict(limits)) + "; retry later"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = request_id(header(scope, b"x-request-id"))
        body = _encode(make_problem(503, self.slug, self.detail, rid))
        await respond(send, 503, body, _PROBLEM, ((b"x-request-id", rid.encode()), RETRY_AFTER))
