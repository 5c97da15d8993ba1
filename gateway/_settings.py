"""Gateway settings: one validated struct, and the parts of it each component takes.

``gateway._settings_cli.parse_settings`` fills it from command-line flags and VIBE_*
variables; code may build one directly (``__post_init__`` checks it either way).
"""

from __future__ import annotations

import math
import os
from typing import Annotated, Any, Literal

import msgspec

from gateway._admission import AdmissionLimits
from gateway._app_settings import AppSettings
from gateway._breaker import BreakerSettings
from gateway._cors import check_origins
from gateway._server import ServerLimits
from gateway._settings_flags import named
from vibe_actors.store import StoreUrlError, parse_store_url

__all__ = ["GatewaySettings", "SettingsError"]


class SettingsError(ValueError):
    """Invalid gateway configuration; ``problems`` holds one line per problem.

    ``log_format`` is the format the problems are reported in: the one asked
    for (``--log-format``/``VIBE_LOG_FORMAT``) when it is valid, else the default.
    """

    def __init__(self, problems: list[str], log_format: str = "json") -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        self.log_format = log_format


#: The defaults of each part's own settings, so that a flag's default cannot drift from them.
_APP = AppSettings()
_ADMISSION = AdmissionLimits()
_SERVER = ServerLimits()
_BREAKER = BreakerSettings()
#: Bounds checked by msgspec where a flag or variable is read (so the message names
#: them); __post_init__ checks them again for settings built in code.
_Crashes = Annotated[int, msgspec.Meta(ge=0)]
_Seconds = Annotated[float, msgspec.Meta(gt=0)]


class GatewaySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything the gateway process needs to know."""

    host: str = "127.0.0.1"
    port: int = 8000
    wiring: str = "wiring.yaml"
    data_dir: str = "./var"
    #: Where the durable agents keep their data (vibe_actors.store): "" keeps the wiring's
    #: ``system.store`` (by default the SQLite files in data_dir); ``postgresql://...`` is one
    #: database every replica shares. A secret (it may hold a password): never shown whole.
    store: str = ""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    #: One line per request (gateway._access); None: on with the json format, off with console.
    access_log: bool | None = None
    chaos: bool = False
    #: The console at /ui/ (gateway._console): on unless --no-ui / VIBE_UI=0.
    ui: bool = True
    #: Trace with OpenTelemetry (the otel extra; OTEL_* variables configure the exporter).
    otel: bool = False
    #: principal -> token, from VIBE_TOKENS ("alice:tok1,bob:tok2") or VIBE_TOKENS_FILE.
    tokens: dict[str, str] = {}
    #: What the app enforces per request (gateway._app.AppSettings; its defaults).
    max_body_bytes: int = _APP.max_body_bytes
    default_timeout_ms: int = _APP.default_timeout_ms
    max_timeout_ms: int = _APP.max_timeout_ms
    #: The admission budgets (gateway._admission.AdmissionLimits; its defaults).
    max_connections: int = _ADMISSION.max_connections
    max_idle_per_client: int = _ADMISSION.max_idle_per_client
    max_concurrency: int = _ADMISSION.max_concurrency
    probe_reserve: int = _ADMISSION.probe_reserve
    max_streams: int = _ADMISSION.max_streams
    max_streams_per_client: int = _ADMISSION.max_streams_per_client
    #: The server's limits (gateway._server.ServerLimits; its defaults), and the drain:
    #: bounded here (the orchestrator's grace period is 45 s), unbounded for an embedder.
    drain_timeout: float = 30.0
    keep_alive_timeout: int = _SERVER.keep_alive_timeout
    header_timeout: float = _SERVER.header_timeout
    body_timeout: float = _SERVER.body_timeout
    max_header_bytes: int = _SERVER.max_header_bytes
    #: Origins a browser page may call the API from, comma-separated ("*": any; "": off).
    cors_origins: str = ""
    #: Serving behind a proxy, or on a Unix socket, or over TLS (uvicorn's settings of the
    #: same names): the mount's path prefix, whether X-Forwarded-For/-Proto are trusted and
    #: from which addresses, a Unix socket path instead of host and port, the TLS key and
    #: certificate files ("": none).
    root_path: str = ""
    proxy_headers: bool = False
    forwarded_allow_ips: str = "127.0.0.1"
    uds: str = ""
    ssl_keyfile: str = ""
    ssl_certfile: str = ""
    #: Event streams (gateway._sse): each stream's queue, the keep-alive comment's interval,
    #: the events kept per topic for Last-Event-ID, how many topics keep them, and the
    #: reconnection delay the stream asks of its client.
    sse_buffer: int = _APP.stream_buffer
    sse_keepalive: float = _APP.keepalive_seconds
    sse_history: int = _APP.stream_history
    sse_history_topics: int = _APP.history_topics
    sse_retry_ms: int = _APP.retry_ms
    #: Young-generation threshold of Python's cyclic garbage collector; 0 keeps Python's 700.
    gc_threshold: int = 10_000
    #: The circuit breaker per (agent, message type) (gateway._breaker; its defaults are
    #: BreakerSettings'). breaker_crashes 0 turns it off.
    breaker_crashes: _Crashes = _BREAKER.crashes
    breaker_window: _Seconds = _BREAKER.window
    breaker_cooldown: _Seconds = _BREAKER.cooldown
    breaker_max_cooldown: _Seconds = _BREAKER.max_cooldown

    def __repr__(self) -> str:
        # Tokens are secrets: never in a repr, a log line or an error message.
        shown = {f: getattr(self, f) for f in self.__struct_fields__ if f != "tokens"}
        shown["tokens"] = {principal: "***" for principal in self.tokens}
        if self.store:
            shown["store"] = parse_store_url(self.store).shown
        return f"GatewaySettings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be 1..65535, got {self.port}")
        positive = (
            "max_body_bytes",
            "default_timeout_ms",
            "max_timeout_ms",
            "max_concurrency",
            "header_timeout",
            "body_timeout",
            "max_header_bytes",
        )
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):  # nan and inf are no duration
                raise ValueError(f"{name} must be > 0 and finite, got {value}")
        self._check_serving()
        self._check_streams()
        try:
            parse_store_url(self.store)
        except StoreUrlError as exc:
            raise ValueError(f"{named('store')}: {exc}") from None
        if not (math.isfinite(self.drain_timeout) and self.drain_timeout >= 0):
            raise ValueError(f"drain_timeout must be >= 0 and finite, got {self.drain_timeout}")
        if self.gc_threshold < 0:
            raise ValueError(f"gc_threshold must be >= 0, got {self.gc_threshold}")
        if self.default_timeout_ms > self.max_timeout_ms:
            raise ValueError("default_timeout_ms must not exceed max_timeout_ms")
        self.admission_limits()  # raises ValueError naming a bad budget
        problems = check_origins(self.cors_origin_list())
        if problems:
            raise ValueError(f"{named('cors_origins')}: " + "; ".join(problems))
        self._check_breaker()
        self.breaker_settings()  # and BreakerSettings' own checks, should it gain some

    def _check_serving(self) -> None:
        """root_path, TLS and the Unix socket, each named by its flag and variable."""
        root = self.root_path
        if root and (not root.startswith("/") or root.endswith("/")):
            raise ValueError(
                f"{named('root_path')}: must start with / and not end with one, got {root!r}"
            )
        if bool(self.ssl_keyfile) != bool(self.ssl_certfile):
            raise ValueError(
                f"{named('ssl_keyfile')} and {named('ssl_certfile')}: give both or neither"
            )
        for name in ("ssl_keyfile", "ssl_certfile"):
            path = getattr(self, name)
            if path and not os.access(path, os.R_OK):
                raise ValueError(f"{named(name)}: cannot read {path!r}")

    def _check_streams(self) -> None:
        """The event streams' settings, each named by its flag and variable."""
        at_least = {"sse_buffer": 1, "sse_history": 0, "sse_history_topics": 1, "sse_retry_ms": 0}
        for name, low in at_least.items():
            value = getattr(self, name)
            if value < low:
                raise ValueError(f"{named(name)}: must be >= {low}, got {value}")
        keepalive = self.sse_keepalive
        if not (math.isfinite(keepalive) and keepalive > 0):
            raise ValueError(
                f"{named('sse_keepalive')}: must be a finite number > 0, got {keepalive}"
            )

    def access_log_on(self) -> bool:
        """The access log's state: as set, else on for the json format, off for console."""
        return self.log_format == "json" if self.access_log is None else self.access_log

    def _check_breaker(self) -> None:
        """The breaker's settings, each named by its flag and variable (BreakerSettings'
        own messages would say ``window``: not what an operator typed)."""
        if self.breaker_crashes < 0:
            raise ValueError(
                f"{named('breaker_crashes')}: must be >= 0, got {self.breaker_crashes}"
            )
        for name in ("breaker_window", "breaker_cooldown", "breaker_max_cooldown"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{named(name)}: must be a finite number > 0, got {value}")
        if self.breaker_cooldown > self.breaker_max_cooldown:
            raise ValueError(
                f"{named('breaker_cooldown')} ({self.breaker_cooldown:g}) must not exceed "
                f"{named('breaker_max_cooldown')} ({self.breaker_max_cooldown:g})"
            )

    def breaker_settings(self) -> BreakerSettings:
        """The circuit breaker's settings (for AppSettings.breaker)."""
        return BreakerSettings(
            crashes=self.breaker_crashes,
            window=self.breaker_window,
            cooldown=self.breaker_cooldown,
            max_cooldown=self.breaker_max_cooldown,
        )

    def cors_origin_list(self) -> tuple[str, ...]:
        """The allowed CORS origins (empty: CORS is off)."""
        return tuple(o.strip() for o in self.cors_origins.split(",") if o.strip())

    def app_settings(self) -> AppSettings:
        """What the ASGI app needs (gateway.create_app)."""
        return AppSettings(
            max_body_bytes=self.max_body_bytes,
            default_timeout_ms=self.default_timeout_ms,
            max_timeout_ms=self.max_timeout_ms,
            chaos=self.chaos,
            ui=self.ui,
            tokens=self.tokens,
            max_streams=self.max_streams,
            cors_origins=self.cors_origin_list(),
            breaker=self.breaker_settings(),
            stream_buffer=self.sse_buffer,
            keepalive_seconds=self.sse_keepalive,
            stream_history=self.sse_history,
            history_topics=self.sse_history_topics,
            retry_ms=self.sse_retry_ms,
            access_log=self.access_log_on(),
        )

    def server_limits(self) -> ServerLimits:
        """What the server enforces per connection, and its drain (gateway.uvicorn_config)."""
        return ServerLimits(
            keep_alive_timeout=self.keep_alive_timeout,
            header_timeout=self.header_timeout,
            body_timeout=self.body_timeout,
            max_header_bytes=self.max_header_bytes,
            drain_timeout=self.drain_timeout,
        )

    def uvicorn_options(self) -> dict[str, Any]:
        """uvicorn's own settings of the same names (gateway.uvicorn_config's keywords)."""
        return {
            "root_path": self.root_path,
            "proxy_headers": self.proxy_headers,
            "forwarded_allow_ips": self.forwarded_allow_ips,
            "uds": self.uds or None,
            "ssl_keyfile": self.ssl_keyfile or None,
            "ssl_certfile": self.ssl_certfile or None,
        }

    def admission_limits(self) -> AdmissionLimits:
        """The admission budgets; raises ValueError (one line) if they do not fit together."""
        return AdmissionLimits(
            max_connections=self.max_connections,
            max_idle_per_client=self.max_idle_per_client,
            max_concurrency=self.max_concurrency,
            probe_reserve=self.probe_reserve,
            max_streams=self.max_streams,
            max_streams_per_client=self.max_streams_per_client,
        )
