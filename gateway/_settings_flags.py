"""Which flag and VIBE_* variable set each gateway setting, and the help that tells it.

One table (:data:`OPTIONS`) read by the command-line parser
(:mod:`gateway._settings_cli`) and by :class:`~gateway._settings.GatewaySettings`,
whose errors name the flag and variable of what was wrong (:func:`named`).
"""

from __future__ import annotations

from gateway._app_settings import AppSettings
from gateway._breaker import BreakerSettings

__all__ = ["OPTIONS", "SWITCHES", "UVICORN_NAMES", "flags", "named"]

#: The defaults the help texts tell (the parts' own, as GatewaySettings' defaults are).
_APP = AppSettings()
_BREAKER = BreakerSettings()

#: flag -> (environment variable, help). Flags map to fields by name.
OPTIONS: dict[str, tuple[str, str]] = {
    "host": ("VIBE_HOST", "interface to listen on"),
    "port": ("VIBE_PORT", "TCP port to listen on"),
    "wiring": (
        "VIBE_WIRING",
        "the wiring.yaml that describes the supervision tree (default: ./wiring.yaml if it "
        "exists, else the one shipped in the package: the 13 system agents)",
    ),
    "data_dir": ("VIBE_DATA_DIR", "directory for the agents' durable data (SQLite files)"),
    "store": (
        "VIBE_STORE",
        "where the durable agents keep their data: empty for the SQLite files in --data-dir "
        "(or the wiring's system.store), or postgresql://user:password@host:port/dbname for one "
        "database shared by every replica",
    ),
    "log_level": ("VIBE_LOG_LEVEL", "debug, info, warning or error"),
    "log_format": ("VIBE_LOG_FORMAT", "json (one object per line) or console (for people)"),
    "access_log": (
        "VIBE_ACCESS_LOG",
        "one log line per request (method, route, status, duration, request id, principal, "
        "client); default: on with --log-format json, off with console",
    ),
    "chaos": ("VIBE_CHAOS", "enable POST /v1/chaos/{name}/crash|hang (never in production)"),
    "ui": ("VIBE_UI", "serve the web console at /ui/ (--no-ui turns it off)"),
    "otel": (
        "VIBE_OTEL",
        "trace requests and messages with OpenTelemetry, exported over OTLP/HTTP (needs the "
        "otel extra; OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER... "
        "configure it)",
    ),
    "max_body_bytes": ("VIBE_MAX_BODY_BYTES", "largest request body accepted (413 beyond)"),
    "default_timeout_ms": ("VIBE_DEFAULT_TIMEOUT_MS", "ask deadline when X-Timeout-Ms is absent"),
    "max_timeout_ms": ("VIBE_MAX_TIMEOUT_MS", "largest X-Timeout-Ms honoured"),
    "max_connections": (
        "VIBE_MAX_CONNECTIONS",
        "open connections at once; past it a new connection closes the oldest idle one (or is "
        "closed if none is idle). Must exceed max-concurrency + probe-reserve + max-streams",
    ),
    "max_idle_per_client": (
        "VIBE_MAX_IDLE_PER_CLIENT",
        "idle connections (no request in flight) kept per client address; past it a new "
        "connection from that address closes the address's oldest idle one",
    ),
    "max_concurrency": (
        "VIBE_MAX_CONCURRENCY",
        "requests in flight at once, probes and event streams not counted "
        "(503 problem+json with Retry-After beyond)",
    ),
    "probe_reserve": (
        "VIBE_PROBE_RESERVE",
        "in-flight GET /healthz, /livez, /readyz and /metrics, served apart from max-concurrency "
        "(503 problem+json beyond)",
    ),
    "max_streams": (
        "VIBE_MAX_STREAMS",
        "open event streams (GET /v1/topics/{topic}/events) at once, at most half of "
        "max-connections (503 problem+json beyond)",
    ),
    "max_streams_per_client": (
        "VIBE_MAX_STREAMS_PER_CLIENT",
        "open event streams per client address (503 problem+json beyond)",
    ),
    "drain_timeout": ("VIBE_DRAIN_TIMEOUT", "seconds to finish in-flight requests on SIGTERM"),
    "keep_alive_timeout": (
        "VIBE_KEEP_ALIVE_TIMEOUT",
        "seconds an idle keep-alive connection lives",
    ),
    "header_timeout": (
        "VIBE_HEADER_TIMEOUT",
        "seconds from a connection's opening (or its previous response) to complete request "
        "headers; the connection is closed beyond",
    ),
    "body_timeout": (
        "VIBE_BODY_TIMEOUT",
        "seconds a request body may take to arrive after its headers; the connection is "
        "closed beyond",
    ),
    "max_header_bytes": (
        "VIBE_MAX_HEADER_BYTES",
        "largest request line and headers accepted (431 and close beyond)",
    ),
    "root_path": (
        "VIBE_ROOT_PATH",
        "the path prefix a proxy serves the gateway under (/api): taken off each request's "
        "path, and the OpenAPI document's server URL (as uvicorn's --root-path)",
    ),
    "proxy_headers": (
        "VIBE_PROXY_HEADERS",
        "trust X-Forwarded-For and X-Forwarded-Proto from --forwarded-allow-ips for the client "
        "address (access log) and scheme (default: off)",
    ),
    "forwarded_allow_ips": (
        "VIBE_FORWARDED_ALLOW_IPS",
        "comma-separated addresses or networks whose X-Forwarded-* headers are trusted with "
        "--proxy-headers, or * for any (default 127.0.0.1)",
    ),
    "uds": ("VIBE_UDS", "listen on this Unix socket instead of --host and --port"),
    "ssl_keyfile": ("VIBE_SSL_KEYFILE", "the TLS private key (PEM); with --ssl-certfile"),
    "ssl_certfile": ("VIBE_SSL_CERTFILE", "the TLS certificate chain (PEM); with --ssl-keyfile"),
    "sse_buffer": (
        "VIBE_SSE_BUFFER",
        "events queued per event stream for a slow client; past it events are dropped for "
        f"that client and reported to it (default {_APP.stream_buffer})",
    ),
    "sse_keepalive": (
        "VIBE_SSE_KEEPALIVE",
        "seconds between keep-alive comments on an idle event stream "
        f"(default {_APP.keepalive_seconds:g})",
    ),
    "sse_history": (
        "VIBE_SSE_HISTORY",
        "events kept per topic, replayed to a client reconnecting with Last-Event-ID "
        f"(default {_APP.stream_history}; 0: none, a reconnection is told it missed events)",
    ),
    "sse_history_topics": (
        "VIBE_SSE_HISTORY_TOPICS",
        "topics whose history is kept (the least recently streamed beyond it is forgotten; "
        f"default {_APP.history_topics})",
    ),
    "sse_retry_ms": (
        "VIBE_SSE_RETRY_MS",
        "the reconnection delay an event stream asks of its client (its retry: field; "
        f"default {_APP.retry_ms})",
    ),
    "gc_threshold": (
        "VIBE_GC_THRESHOLD",
        "allocations between young-generation runs of Python's cyclic garbage collector; "
        "0 keeps Python's default (700), which requests in flight outgrow",
    ),
    "cors_origins": (
        "VIBE_CORS_ORIGINS",
        "origins a browser page may call the API from, comma-separated (https://app.example), "
        "or * for any; answers CORS preflights and adds the headers (default: off)",
    ),
    "breaker_crashes": (
        "VIBE_BREAKER_CRASHES",
        "handler crashes of one (agent, message type) within breaker-window seconds that "
        "open its circuit: its requests are answered 503 circuit-open with Retry-After "
        f"(default {_BREAKER.crashes}; 0 turns the circuit breaker off)",
    ),
    "breaker_window": (
        "VIBE_BREAKER_WINDOW",
        f"seconds in which breaker-crashes crashes open a circuit (default {_BREAKER.window:g})",
    ),
    "breaker_cooldown": (
        "VIBE_BREAKER_COOLDOWN",
        "seconds an opened circuit refuses before one trial request goes through; each "
        f"crashed trial doubles it (default {_BREAKER.cooldown:g})",
    ),
    "breaker_max_cooldown": (
        "VIBE_BREAKER_MAX_COOLDOWN",
        "cap, in seconds, on the doubling of an opening after crashed trials; at least "
        f"breaker-cooldown (default {_BREAKER.max_cooldown:g})",
    ),
}

#: Settings that uvicorn has under another flag of the same meaning: uvicorn's name first
#: (as `uvicorn` takes it), the gateway's own kept as an alias.
UVICORN_NAMES = {
    "keep_alive_timeout": "--timeout-keep-alive",
    "max_concurrency": "--limit-concurrency",
    "drain_timeout": "--timeout-graceful-shutdown",
}
#: Switches: ``--x`` / ``--no-x`` (``--chaos`` has no negative).
SWITCHES = {"chaos", "ui", "access_log", "proxy_headers", "otel"}


def flags(field: str) -> list[str]:
    """The flags of ``field``: uvicorn's spelling first where it has one."""
    own = "--" + field.replace("_", "-")
    return [UVICORN_NAMES[field], own] if field in UVICORN_NAMES else [own]


def named(field: str) -> str:
    """How an operator sets ``field``: ``--breaker-window / VIBE_BREAKER_WINDOW``
    (every flag of it: ``--timeout-keep-alive / --keep-alive-timeout / VIBE_...``)."""
    return f"{' / '.join(flags(field))} / {OPTIONS[field][0]}"
