"""Serving the gateway with uvicorn (uvloop, httptools), with a clean drain.

The HTTP protocol is :class:`gateway._protocol.GatewayHttpProtocol`: uvicorn's
httptools protocol with a header-read timeout, a header size limit and the
admission budgets of :mod:`gateway._admission` (uvicorn's own
``limit_concurrency``, which answered ``text/plain`` and counted idle sockets
and event streams against the one limit, is off).

uvicorn 0.29+ re-raises a captured SIGTERM after its graceful shutdown, so a
plain ``Server.serve()`` exits with -15. The gateway's contract is exit 0
after a clean drain, so :class:`GatewayServer` installs its own handlers:
SIGTERM/SIGINT stop accepting and drain (a second SIGINT forces), SIGHUP
calls the reload hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import resource
import signal
import threading
from collections.abc import Callable, Generator
from typing import Any

import msgspec
import structlog
import uvicorn

from gateway._admission import Admission
from gateway._protocol import header_limited
from vibe_actors import ActorSystem, SystemFailed

__all__ = [
    "GatewayServer",
    "ServerLimits",
    "ensure_descriptors",
    "tune_gc",
    "uvicorn_config",
    "watch_system",
]

_log = structlog.get_logger("gateway.server")


class ServerLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the server enforces per connection, and how long it drains (one source of defaults).

    ``header_timeout``/``body_timeout``: seconds a request's headers/body may
    take to arrive; ``max_header_bytes``: the size of its headers;
    ``keep_alive_timeout``: seconds an idle connection stays open;
    ``drain_timeout``: seconds in-flight requests get at shutdown (None: no
    limit); ``backlog``: the listen queue.
    """

    keep_alive_timeout: int = 5
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_header_bytes: int = 65_536
    drain_timeout: float | None = None
    backlog: int = 2048


# Over 50 lines by its signature, its docstring and the one uvicorn.Config call (a keyword a
# line); the logic is three lines.
def uvicorn_config(
    app: Any,
    host: str,
    port: int,
    *,
    admission: Admission | None = None,
    on_cut_off: Callable[[str], None] | None = None,
    root_path: str = "",
    proxy_headers: bool = False,
    forwarded_allow_ips: str | None = None,
    uds: str | None = None,
    ssl_keyfile: str | None = None,
    ssl_certfile: str | None = None,
    **limits: Any,
) -> uvicorn.Config:
    """The one uvicorn configuration (used by the gateway and by its benchmark baseline).

    HTTP/1.1 is uvicorn's httptools protocol with the gateway's header timeout
    and header size limit (:mod:`gateway._protocol`): without them, silent or
    slow connections stay open forever. ``limits`` are :class:`ServerLimits`
    fields (an unknown one is a TypeError, not ignored). ``admission`` (an
    :class:`gateway._admission.Admission`, one per server; the default budgets
    if absent) decides which connections and requests are served; uvicorn's
    ``limit_concurrency`` is off, so that a refusal is a 503 problem+json and
    probes keep a reserve. WebSocket upgrades are off: the gateway serves none,
    and an upgraded connection would leave the protocol that counts it.

    ``root_path``, ``proxy_headers``, ``forwarded_allow_ips``, ``uds``,
    ``ssl_keyfile`` and ``ssl_certfile`` are uvicorn's settings of those names:
    no proxy is trusted by default (that saves a middleware hop per request);
    ``uds`` listens on a Unix socket instead of ``host`` and ``port``.
    """
    if "max_concurrency" in limits:  # uvicorn's limit once; silently ignored, it would mislead
        raise TypeError("max_concurrency is a budget of the admission: pass admission=Admission()")
    server = ServerLimits(**limits)
    protocol = header_limited(
        server.header_timeout,
        server.max_header_bytes,
        server.body_timeout,
        on_cut_off,
        admission if admission is not None else Admission(),
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=protocol,
        ws="none",
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
        root_path=root_path,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
        uds=uds,
        ssl_keyfile=ssl_keyfile,
        ssl_certfile=ssl_certfile,
        limit_concurrency=None,  # the admission decides (see above)
        timeout_keep_alive=server.keep_alive_timeout,
        # Annotated int by uvicorn, used as asyncio.wait_for's seconds: a float is right.
        timeout_graceful_shutdown=server.drain_timeout,  # type: ignore[arg-type]
        backlog=server.backlog,
    )


def tune_gc(threshold: int) -> None:
    """Run the cyclic garbage collector's young generation every ``threshold`` allocations.

    Process configuration, done at the edge (``python -m gateway``, and the
    gateway benchmark for both of its servers), never by the library. With
    Python's default of 700, the objects of a few dozen requests in flight
    (coroutines, futures, scopes, envelopes) trip a collection every few
    requests, which scans them all and promotes the survivors, most of which
    die a moment later. 0 leaves Python's thresholds as they are.
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    if threshold:
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(threshold, older, oldest)


def ensure_descriptors(connections: int) -> int:
    """Raise this process's soft limit of open files to fit ``connections`` and some more.

    Process configuration, done at the edge like :func:`tune_gc`: past the
    limit the kernel refuses to accept connections before the admission can
    count them, probes included. Returns the soft limit now in force. Raises
    ValueError if even the hard limit is too low (lower ``max_connections`` or
    raise the hard limit).
    """
    needed = connections + _SPARE_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise ValueError(
            f"max_connections ({connections}) needs {needed} open files, and the hard limit "
            f"is {hard}: lower max_connections or raise the limit (ulimit -Hn)"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return needed


#: Descriptors besides the connections: the listening socket, SQLite files, logs, pipes.
_SPARE_DESCRIPTORS = 256


class GatewayServer(uvicorn.Server):
    """uvicorn's server with the gateway's signal handling (see the module docstring)."""

    def __init__(
        self,
        config: uvicorn.Config,
        on_reload: Callable[[], None] | None = None,
        on_shutdown: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self._on_reload = on_reload
        self._on_shutdown = on_shutdown
        self.started_event = threading.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # embedded in a thread (tests, another app): the owner stops it
            return
        loop = asyncio.get_running_loop()
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        for sig in handled:
            loop.add_signal_handler(sig, self._signal, sig)
        try:
            yield
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)

    def _signal(self, sig: int) -> None:
        if sig == signal.SIGHUP:
            if self._on_reload is not None:
                asyncio.get_running_loop().run_in_executor(None, self._reload)
            return
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True
        _log.info("shutdown_requested", signal=signal.Signals(sig).name)

    def _reload(self) -> None:
        assert self._on_reload is not None
        try:
            self._on_reload()
        except Exception:  # noqa: BLE001 - a failed reload changes nothing and is reported
            _log.exception("reload_failed")

    async def shutdown(self, sockets: Any = None) -> None:
        # Before uvicorn waits for connections: long-lived responses (event
        # streams) must end, or they would hold the drain up to its timeout.
        if self._on_shutdown is not None:
            self._on_shutdown()
        await super().shutdown(sockets)

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.started_event.set()


def watch_system(system: ActorSystem, server: GatewayServer) -> threading.Thread:
    """Stop serving if the system fails on its own (the root gave up)."""

    def wait() -> None:
        try:
            system.wait()
        except SystemFailed as exc:
            _log.critical("system_failed_stopping_server", reason=exc.reason)
            server.should_exit = True

    thread = threading.Thread(target=wait, name="gateway:watch-system", daemon=True)
    thread.start()
    return thread
