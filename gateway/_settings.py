"""Gateway settings: one validated struct, from command-line flags and VIBE_* variables.

Precedence: a flag given on the command line, else its environment variable,
else the default. Every problem is reported at once, one line each, naming the
flag and its variable; a token never appears in any message.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, NoReturn

import msgspec

import phoenix
from gateway._admission import AdmissionLimits
from gateway._app_settings import AppSettings
from gateway._breaker import BreakerSettings
from gateway._cors import check_origins
from gateway._server import ServerLimits
from vibe_actors.store import StoreUrlError, parse_store_url

__all__ = ["GatewaySettings", "SettingsError", "default_wiring_file", "parse_settings"]

#: The wiring of the working directory: the repository's, where `make run` starts.
LOCAL_WIRING = "wiring.yaml"


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
            raise ValueError(f"{_named('store')}: {exc}") from None
        if not (math.isfinite(self.drain_timeout) and self.drain_timeout >= 0):
            raise ValueError(f"drain_timeout must be >= 0 and finite, got {self.drain_timeout}")
        if self.gc_threshold < 0:
            raise ValueError(f"gc_threshold must be >= 0, got {self.gc_threshold}")
        if self.default_timeout_ms > self.max_timeout_ms:
            raise ValueError("default_timeout_ms must not exceed max_timeout_ms")
        self.admission_limits()  # raises ValueError naming a bad budget
        problems = check_origins(self.cors_origin_list())
        if problems:
            raise ValueError(f"{_named('cors_origins')}: " + "; ".join(problems))
        self._check_breaker()
        self.breaker_settings()  # and BreakerSettings' own checks, should it gain some

    def _check_serving(self) -> None:
        """root_path, TLS and the Unix socket, each named by its flag and variable."""
        root = self.root_path
        if root and (not root.startswith("/") or root.endswith("/")):
            raise ValueError(
                f"{_named('root_path')}: must start with / and not end with one, got {root!r}"
            )
        if bool(self.ssl_keyfile) != bool(self.ssl_certfile):
            raise ValueError(
                f"{_named('ssl_keyfile')} and {_named('ssl_certfile')}: give both or neither"
            )
        for name in ("ssl_keyfile", "ssl_certfile"):
            path = getattr(self, name)
            if path and not os.access(path, os.R_OK):
                raise ValueError(f"{_named(name)}: cannot read {path!r}")

    def _check_streams(self) -> None:
        """The event streams' settings, each named by its flag and variable."""
        at_least = {"sse_buffer": 1, "sse_history": 0, "sse_history_topics": 1, "sse_retry_ms": 0}
        for name, low in at_least.items():
            value = getattr(self, name)
            if value < low:
                raise ValueError(f"{_named(name)}: must be >= {low}, got {value}")
        keepalive = self.sse_keepalive
        if not (math.isfinite(keepalive) and keepalive > 0):
            raise ValueError(
                f"{_named('sse_keepalive')}: must be a finite number > 0, got {keepalive}"
            )

    def access_log_on(self) -> bool:
        """The access log's state: as set, else on for the json format, off for console."""
        return self.log_format == "json" if self.access_log is None else self.access_log

    def _check_breaker(self) -> None:
        """The breaker's settings, each named by its flag and variable (BreakerSettings'
        own messages would say ``window``: not what an operator typed)."""
        if self.breaker_crashes < 0:
            raise ValueError(
                f"{_named('breaker_crashes')}: must be >= 0, got {self.breaker_crashes}"
            )
        for name in ("breaker_window", "breaker_cooldown", "breaker_max_cooldown"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{_named(name)}: must be a finite number > 0, got {value}")
        if self.breaker_cooldown > self.breaker_max_cooldown:
            raise ValueError(
                f"{_named('breaker_cooldown')} ({self.breaker_cooldown:g}) must not exceed "
                f"{_named('breaker_max_cooldown')} ({self.breaker_max_cooldown:g})"
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


#: flag -> (environment variable, help). Flags map to fields by name.
_OPTIONS: dict[str, tuple[str, str]] = {
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


_FIELD_TYPES = {field.name: field.type for field in msgspec.structs.fields(GatewaySettings)}

#: Settings that uvicorn has under another flag of the same meaning: uvicorn's name first
#: (as `uvicorn` takes it), the gateway's own kept as an alias.
_UVICORN_NAMES = {
    "keep_alive_timeout": "--timeout-keep-alive",
    "max_concurrency": "--limit-concurrency",
    "drain_timeout": "--timeout-graceful-shutdown",
}
#: Switches: ``--x`` / ``--no-x`` (``--chaos`` has no negative), and their variables'
#: spellings of true and false.
_SWITCHES = {"chaos", "ui", "access_log", "proxy_headers", "otel"}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _flags(field: str) -> list[str]:
    """The flags of ``field``: uvicorn's spelling first where it has one."""
    own = "--" + field.replace("_", "-")
    return [_UVICORN_NAMES[field], own] if field in _UVICORN_NAMES else [own]


def _named(field: str) -> str:
    """How an operator sets ``field``: ``--breaker-window / VIBE_BREAKER_WINDOW``
    (every flag of it: ``--timeout-keep-alive / --keep-alive-timeout / VIBE_...``)."""
    return f"{' / '.join(_flags(field))} / {_OPTIONS[field][0]}"


class _Parser(argparse.ArgumentParser):
    """Usage errors (an unknown flag, a missing value) are settings problems like any other:
    reported in the log format, one line each, exit 2."""

    def error(self, message: str) -> NoReturn:
        raise SettingsError([f"{message} (python -m gateway --help lists the flags)"])


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m gateway",
        description="Start the actor system from wiring.yaml and serve it over HTTP.",
        epilog="Every flag can also be set by its VIBE_* variable; switches take 1/0, true/false, "
        "yes/no or on/off there. Bearer tokens come only from VIBE_TOKENS ('principal:token,...') "
        "or VIBE_TOKENS_FILE (one 'principal:token' a line).",
    )
    for field, (env, text) in _OPTIONS.items():
        flags = _flags(field)
        if field == "chaos":
            parser.add_argument(*flags, action="store_true", default=None, help=f"{text} [{env}]")
        elif field in _SWITCHES:
            parser.add_argument(
                *flags, action=argparse.BooleanOptionalAction, default=None, help=f"{text} [{env}]"
            )
        else:
            parser.add_argument(*flags, dest=field, default=None, help=f"{text} [{env}]")
    return parser


def _switch(raw: str) -> bool | None:
    """A switch's variable as a bool (None: not a spelling of either)."""
    value = raw.strip().lower()
    return True if value in _TRUE else False if value in _FALSE else None


def _requested_format(argv: Sequence[str] | None, environ: Mapping[str, str]) -> str:
    """The log format asked for, found without parsing the rest (to report usage errors in)."""
    args = list(sys.argv[1:] if argv is None else argv)
    for i, arg in enumerate(args):
        if arg == "--log-format" and i + 1 < len(args):
            return "console" if args[i + 1] == "console" else "json"
        if arg.startswith("--log-format="):
            return "console" if arg.partition("=")[2] == "console" else "json"
    return "console" if environ.get("VIBE_LOG_FORMAT") == "console" else "json"


def _tokens(environ: Mapping[str, str], problems: list[str]) -> dict[str, str]:
    raw = environ.get("VIBE_TOKENS", "")
    source = "VIBE_TOKENS"
    if not raw and environ.get("VIBE_TOKENS_FILE"):
        source = f"VIBE_TOKENS_FILE ({environ['VIBE_TOKENS_FILE']})"
        try:
            with open(environ["VIBE_TOKENS_FILE"], encoding="utf-8") as handle:
                raw = ",".join(line.strip() for line in handle if line.strip())
        except OSError as exc:
            problems.append(f"{source}: cannot read: {exc.strerror}")
            return {}
    tokens: dict[str, str] = {}
    for number, pair in enumerate(filter(None, (p.strip() for p in raw.split(","))), 1):
        principal, sep, token = pair.partition(":")
        if not sep or not principal or not token:
            problems.append(f"{source}: entry {number} is not 'principal:token'")  # no secret
        else:
            tokens[principal] = token
    return tokens


def default_wiring_file() -> str:
    """The wiring to boot when neither ``--wiring`` nor ``VIBE_WIRING`` names one.

    ``./wiring.yaml`` if it exists (the repository's, so ``make run`` is unchanged; one
    that exists but cannot be read fails the start, it is not skipped), else the wiring
    shipped in the package (:func:`phoenix.default_wiring`). Raises
    :class:`FileNotFoundError` if the package's copy is missing (a broken install).
    """
    if os.path.exists(LOCAL_WIRING):
        return LOCAL_WIRING
    return str(phoenix.default_wiring())


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> GatewaySettings:
    """Build the settings; raises :class:`SettingsError` listing every problem."""
    environ = os.environ if environ is None else environ
    try:
        args = vars(_parser().parse_args(argv))
    except SettingsError as exc:
        raise SettingsError(exc.problems, _requested_format(argv, environ)) from None
    problems: list[str] = []
    values: dict[str, object] = {}
    for field, (env, _) in _OPTIONS.items():
        value = args.get(field)
        if value is None and env in environ:
            value = environ[env]
            if field in _SWITCHES:
                value = _switch(environ[env])
                if value is None:
                    problems.append(
                        f"{_named(field)}: expected 1/0, true/false, yes/no or on/off "
                        f"(got {environ[env]!r})"
                    )
                    continue
        if value is None:
            continue
        try:
            values[field] = msgspec.convert(value, _FIELD_TYPES[field], strict=False)
        except msgspec.ValidationError as exc:
            problems.append(f"{_named(field)}: {exc} (got {value!r})".replace(" - at `$`", ""))
    if "wiring" not in values:
        try:
            values["wiring"] = default_wiring_file()
        except FileNotFoundError as exc:
            problems.append(f"{_named('wiring')}: not given, no ./wiring.yaml, and {exc}")
    values["tokens"] = _tokens(environ, problems)
    log_format = str(values.get("log_format", "json"))
    if problems:
        raise SettingsError(problems, log_format)
    try:
        return GatewaySettings(**values)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise SettingsError([str(exc)], log_format) from exc
