"""``python -m gateway``: boot the system from wiring.yaml, serve it, drain, exit.

Exit codes: 0 after a clean drain and stop; 1 if the wiring is invalid, the
system fails to start, or the root supervisor gives up while serving; 2 for
invalid settings. Problems are reported one per line, never a traceback: with
``--log-format json`` (the default) each is a JSON ``error`` event naming the
problem, with ``console`` a ``gateway: ...`` line
(:func:`gateway._logging.report_problems`).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import structlog

import phoenix
from gateway._admission import Admission
from gateway._app import Gateway, create_app
from gateway._http_metrics import AdmissionMetrics
from gateway._logging import configure_logging, report_problems
from gateway._server import (
    GatewayServer,
    ensure_descriptors,
    tune_gc,
    uvicorn_config,
    watch_system,
)
from gateway._settings import GatewaySettings, SettingsError
from gateway._settings_cli import parse_settings
from gateway._tracing import TracingNotInstalled
from gateway._tracing import configure as configure_tracing
from vibe_actors import ActorSystem, ReloadRejected, StartFailed
from vibe_actors.store import StoreError, StoreUrlError, check_store

__all__ = ["main"]

_log = structlog.get_logger("gateway")


def _fail(lines: Sequence[str], code: int, fmt: str = "json", event: str = "gateway_failed") -> int:
    report_problems(event, lines, fmt)
    return code


def boot(settings: GatewaySettings) -> ActorSystem:
    """Load and validate the wiring, check the store, then start the system (data_dir, and
    the store when given, from the settings).

    Raises :class:`phoenix.WiringError`, :class:`vibe_actors.store.StoreUrlError` and
    :class:`vibe_actors.store.StoreError` (the database cannot be reached: one line, no
    password), and :class:`vibe_actors.StartFailed`.
    """
    root, system_config = phoenix.build(phoenix.load(settings.wiring))
    system_config = msgspec.structs.replace(
        system_config,
        data_dir=settings.data_dir,
        store=settings.store or system_config.store,
    )
    location = check_store(system_config.store)
    _log.info("store_checked", backend=location.kind, location=location.shown)
    return ActorSystem(root, system_config).start()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the gateway process; returns the exit code."""
    try:
        settings = parse_settings(argv)
    except SettingsError as exc:
        return _fail(exc.problems, 2, exc.log_format, "invalid_settings")
    fmt = settings.log_format
    configure_logging(settings.log_level, fmt)
    try:
        ensure_descriptors(settings.max_connections)
    except ValueError as exc:
        return _fail([str(exc)], 2, fmt, "invalid_settings")
    tune_gc(settings.gc_threshold)
    provider = None
    if settings.otel:
        try:
            provider = configure_tracing("vibe-gateway")
        except TracingNotInstalled as exc:
            return _fail([str(exc)], 2, fmt, "invalid_settings")
    try:
        return _boot_and_serve(settings)
    finally:
        if provider is not None:
            provider.shutdown()  # type: ignore[attr-defined] # the SDK's: flushes the spans


def _boot_and_serve(settings: GatewaySettings) -> int:
    fmt = settings.log_format
    try:
        system = boot(settings)
    except phoenix.WiringError as exc:
        return _fail(str(exc).splitlines(), 1, fmt, "invalid_wiring")
    except StartFailed as exc:
        return _fail([str(exc)], 1, fmt, "start_failed")
    except (StoreError, StoreUrlError) as exc:
        return _fail([str(exc)], 1, fmt, "store_unavailable")
    return serve(system, settings)


def reload_wiring(system: ActorSystem, wiring: str, app: Gateway) -> None:
    """SIGHUP: apply ``wiring`` to the running system; a bad file changes nothing.

    The outcome is counted (``vibe_reloads_total{outcome}``) and logged; an
    invalid wiring is ``reload_failed`` with one line per problem, never raised.
    """
    try:
        report = phoenix.reload(system, wiring)
    except (phoenix.WiringError, ValueError, TypeError) as exc:
        app.metrics.reloaded("failed")
        problems = str(exc).splitlines()
        _log.error("reload_failed", problems=problems)
        system.events.publish(ReloadRejected(problems=tuple(problems)))  # the reload history
        return
    app.catalog.clear()
    app.metrics.reloaded("ok" if not report.failed else "partial")
    _log.info(
        "wiring_reloaded",
        added=report.added,
        removed=report.removed,
        changed=report.changed,
        failed=report.failed,
    )


def serve(system: ActorSystem, settings: GatewaySettings) -> int:
    """Serve a started ``system`` until SIGTERM/SIGINT, then drain and stop it.

    Returns 0 after a clean drain and stop, 1 if the system failed meanwhile.
    The system is stopped here whatever happens: this function owns it now.
    """
    app = create_app(system, settings.app_settings())
    limits = settings.admission_limits()
    admission = Admission(limits)
    app.metrics.registry.register(AdmissionMetrics(admission))

    def reload() -> None:
        reload_wiring(system, settings.wiring, app)

    config = uvicorn_config(
        app,
        settings.host,
        settings.port,
        admission=admission,
        on_cut_off=app.metrics.cut_off,
        **settings.uvicorn_options(),
        **msgspec.structs.asdict(settings.server_limits()),
    )
    server = GatewayServer(config, on_reload=reload, on_shutdown=app.close_streams)
    watch_system(system, server)
    _log.info(
        "gateway_starting",
        host=settings.host,
        port=settings.port,
        wiring=settings.wiring,
        uds=settings.uds or None,
        root_path=settings.root_path,
        tls=bool(settings.ssl_certfile),
        access_log=app.access is not None,
        otel=settings.otel,
        agents=len(system.names()),
        gc_threshold=settings.gc_threshold,
        breaker=msgspec.structs.asdict(app.settings.breaker),
        **msgspec.structs.asdict(limits),
    )
    try:
        server.run()
    finally:  # whatever started the system stops it, also if serving failed
        clean = system.shutdown(timeout=settings.drain_timeout)
    if system.failure is not None:
        failure = f"the actor system failed: {system.failure}"
        return _fail([failure], 1, settings.log_format, "gateway_failed")
    _log.info("gateway_stopped", clean=clean)
    return 0
