"""What the ASGI app needs to know (a subset of the process's GatewaySettings)."""

from __future__ import annotations

import msgspec

from gateway._admission import AdmissionLimits
from gateway._breaker import BreakerSettings

__all__ = ["AppSettings"]


class AppSettings(msgspec.Struct, frozen=True):
    """What the ASGI app needs (a subset of the process's GatewaySettings)."""

    max_body_bytes: int = 1_048_576
    default_timeout_ms: int = 5_000
    max_timeout_ms: int = 60_000
    chaos: bool = False
    tokens: dict[str, str] = {}
    #: The introspect agent behind /v1/agents and /v1/tree (described in-process if absent).
    introspect: str = "introspect"
    #: The pubsub agent behind /v1/topics/{topic}/events, and the SSE limits.
    pubsub: str = "pubsub"
    #: The streams the app serves at once (the admission's stream budget, by default).
    max_streams: int = AdmissionLimits().max_streams
    #: Events queued per stream for a slow client, and seconds between keep-alive comments.
    stream_buffer: int = 256
    keepalive_seconds: float = 15.0
    #: Events kept per topic for a client reconnecting with Last-Event-ID, in how many
    #: topics at most, and the reconnection delay (ms) each stream asks of its client.
    stream_history: int = 256
    history_topics: int = 256
    retry_ms: int = 3000

    #: The console at /ui/ (gateway._console).
    ui: bool = True

    #: One line per request (gateway._access): method, route, status, duration, ids, client.
    access_log: bool = False

    #: Origins a browser page may call the API from (``*``: any); none: CORS is off.
    cors_origins: tuple[str, ...] = ()

    #: The circuit breaker per (agent, message type) against poison requests.
    breaker: BreakerSettings = BreakerSettings()

    def __repr__(self) -> str:
        return f"AppSettings(chaos={self.chaos}, tokens={len(self.tokens)} principals)"
