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
    stream_buffer: int = 256
    keepalive_seconds: float = 15.0

    #: Origins a browser page may call the API from (``*``: any); none: CORS is off.
    cors_origins: tuple[str, ...] = ()

    #: The circuit breaker per (agent, message type) against poison requests.
    breaker: BreakerSettings = BreakerSettings()

    def __repr__(self) -> str:
        return f"AppSettings(chaos={self.chaos}, tokens={len(self.tokens)} principals)"
