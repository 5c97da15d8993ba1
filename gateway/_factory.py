"""``uvicorn gateway:app_factory --factory``: the gateway and its system under any ASGI server.

:func:`app_factory` reads the settings as ``python -m gateway`` does, from the
``VIBE_*`` variables only (the server's command line is the server's:
``uvicorn``'s or ``gunicorn``'s flags are not read), configures logging, and
returns an ASGI app whose lifespan starts the system from ``VIBE_WIRING``
(``lifespan.startup``) and stops it (``lifespan.shutdown``, after the server
has drained its connections: the runtime logs ``system_stopped``, then the
gateway ``gateway_stopped``). So
``uvicorn gateway:app_factory --factory`` or gunicorn's uvicorn worker
(``gunicorn 'gateway:app_factory()' -k uvicorn.workers.UvicornWorker``) serve
every agent of the wiring.

A wiring that does not load, or a system that does not start, fails the
lifespan startup (the server exits; the problems are logged one per line,
JSON with the json format). If the root supervisor gives up while serving,
the process is sent SIGTERM, so the server drains and exits. Under such a
server, its own settings apply to connections: uvicorn's
``--limit-concurrency``, ``--timeout-keep-alive`` and
``--timeout-graceful-shutdown``, not the gateway's admission budgets, header
and body timeouts (those need ``python -m gateway``'s protocol); event
streams end only when the graceful-shutdown timeout passes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from typing import Any

import msgspec
import structlog

import phoenix
from gateway._app import Gateway, create_app
from gateway._http import Receive, Scope, Send, respond
from gateway._logging import configure_logging, report_problems
from gateway._main import boot
from gateway._problems import make_problem
from gateway._request import request_id
from gateway._server import tune_gc
from gateway._settings import GatewaySettings, SettingsError
from gateway._settings_cli import parse_settings
from gateway._tracing import TracingNotInstalled
from gateway._tracing import configure as configure_tracing
from vibe_actors import ActorSystem, StartFailed, SystemFailed

__all__ = ["FactoryApp", "app_factory"]

_log = structlog.get_logger("gateway")
_encode = msgspec.json.Encoder().encode


def app_factory() -> FactoryApp:
    """The gateway app for ``uvicorn --factory``; see the module docstring.

    Raises :class:`gateway.SettingsError` (its problems already logged) for
    invalid ``VIBE_*`` settings.
    """
    try:
        settings = parse_settings([], os.environ)
    except SettingsError as exc:
        report_problems("invalid_settings", exc.problems, exc.log_format)
        raise
    configure_logging(settings.log_level, settings.log_format)
    tune_gc(settings.gc_threshold)
    app = FactoryApp(settings)
    if settings.otel:  # VIBE_OTEL: trace, configured by the OTEL_* variables
        try:
            app.tracer_provider = configure_tracing("vibe-gateway")
        except TracingNotInstalled as exc:
            report_problems("invalid_settings", [str(exc)], settings.log_format)
            raise SettingsError([str(exc)], settings.log_format) from exc
    return app


class FactoryApp:
    """An ASGI app that owns its system: started and stopped by the ASGI lifespan."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.system: ActorSystem | None = None
        #: The gateway app once the system runs (requests before get a 503 not-started).
        self.gateway: Gateway | None = None
        #: OpenTelemetry's SDK provider with VIBE_OTEL (shut down last: flushes the spans).
        self.tracer_provider: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway = self.gateway
        if gateway is not None and scope["type"] == "http":
            await gateway(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            rid = request_id(None)
            detail = "the system is not started: serve the app factory with the ASGI lifespan on"
            body = _encode(make_problem(503, "not-started", detail, rid))
            extra = ((b"x-request-id", rid.encode()), (b"retry-after", b"1"))
            await respond(send, 503, body, b"application/problem+json", extra)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                failure = await asyncio.to_thread(self._start)
                if failure is None:
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.startup.failed", "message": failure})
                    return
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self._stop)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _start(self) -> str | None:
        """Start the system (in a worker thread); the failure's first line, if any."""
        settings = self.settings
        fmt = settings.log_format
        try:
            system = boot(settings)
        except phoenix.WiringError as exc:
            problems = str(exc).splitlines()
            report_problems("invalid_wiring", problems, fmt)
            return problems[0] if problems else "invalid wiring"
        except StartFailed as exc:
            report_problems("start_failed", [str(exc)], fmt)
            return str(exc)
        self.system = system
        self.gateway = create_app(system, settings.app_settings())
        threading.Thread(
            target=_stop_serving_if_failed, args=(system,), name="gateway:watch-system", daemon=True
        ).start()
        _log.info(
            "gateway_started",
            wiring=settings.wiring,
            agents=len(system.names()),
            access_log=self.gateway.access is not None,
        )
        return None

    def _stop(self) -> None:
        """Stop the system (in a worker thread), after the server's drain."""
        gateway, system = self.gateway, self.system
        if gateway is not None:
            gateway.close_streams()
            if gateway.access is not None:
                gateway.access.flush()
        if system is not None:
            clean = system.shutdown(timeout=self.settings.drain_timeout)
            if system.failure is not None:
                failure = f"the actor system failed: {system.failure}"
                report_problems("gateway_failed", [failure], self.settings.log_format)
            _log.info("gateway_stopped", clean=clean)
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()


def _stop_serving_if_failed(system: ActorSystem) -> None:
    """The root gave up: the server is told to drain and exit (as by an orchestrator)."""
    try:
        system.wait()
    except SystemFailed as exc:
        _log.critical("system_failed_stopping_server", reason=exc.reason)
        os.kill(os.getpid(), signal.SIGTERM)
