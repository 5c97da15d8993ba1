"""Tracing with OpenTelemetry: turn it on at the edge, and join logs to traces.

Nothing is traced until the program says so (never on import): the gateway's
``--otel`` calls :func:`configure`; an embedding program calls :func:`configure`
too, or :func:`enable` with a tracer provider of its own. Then every message
sent through a :class:`~vibe_actors.Ref` carries the sender's span context, and
its handling is a span of its own, child of the sender's (see
docs/observability.md for the span tree of a request).

:func:`configure` needs the ``otel`` extra (``pip install 'vibe-actors[otel]'``):
OpenTelemetry's SDK and OTLP/HTTP exporter, configured by the standard
``OTEL_*`` environment variables (``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_SERVICE_NAME``, ``OTEL_TRACES_SAMPLER``, ``OTEL_TRACES_SAMPLER_ARG``,
``OTEL_RESOURCE_ATTRIBUTES``...).

:func:`add_trace_ids` is a structlog processor: with a span current, the event
gains ``trace_id`` and ``span_id`` (hex, as trace backends show them).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import MutableMapping
from typing import Any

from opentelemetry import trace

from vibe_actors import _tracing

__all__ = [
    "TracingNotInstalled",
    "add_trace_ids",
    "configure",
    "disable",
    "enable",
    "enabled",
    "tracer",
]


class TracingNotInstalled(RuntimeError):
    """:func:`configure` was called without OpenTelemetry's SDK installed (the otel extra)."""

    def __init__(self, missing: str) -> None:
        super().__init__(
            f"tracing needs the OpenTelemetry SDK and OTLP exporter ({missing} is not "
            "installed): pip install 'vibe-actors[otel]'"
        )


def enable(provider: trace.TracerProvider | None = None) -> None:
    """Trace with ``provider`` (default: OpenTelemetry's global tracer provider)."""
    _tracing.enable(provider)


def disable() -> None:
    """Stop tracing (spans already started end as usual)."""
    _tracing.disable()


def enabled() -> bool:
    """Whether tracing is on."""
    return _tracing.ON


def tracer() -> trace.Tracer:
    """The tracer the runtime makes its spans with (a no-op one when tracing is off)."""
    return _tracing.tracer()


def configure(service_name: str | None = None) -> trace.TracerProvider:
    """Set up OpenTelemetry's SDK for this process and trace with it.

    A tracer provider with the resource, sampler and limits the ``OTEL_*``
    environment variables describe (``service_name`` is the default of
    ``OTEL_SERVICE_NAME``), exporting in batches over OTLP/HTTP to
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` (default ``http://localhost:4318``). It
    becomes OpenTelemetry's global provider, and is returned (its
    ``shutdown()`` flushes the spans not exported yet). Raises
    :class:`TracingNotInstalled` without the ``otel`` extra.
    """
    for module in ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http"):
        if importlib.util.find_spec(module) is None:
            raise TracingNotInstalled(module)
    sdk_trace = importlib.import_module("opentelemetry.sdk.trace")
    sdk_resources = importlib.import_module("opentelemetry.sdk.resources")
    sdk_export = importlib.import_module("opentelemetry.sdk.trace.export")
    otlp = importlib.import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    defaults = {} if service_name is None else {"service.name": service_name}
    # Resource.create: OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME override the defaults.
    resource = sdk_resources.Resource.create(_env_wins(defaults))
    provider = sdk_trace.TracerProvider(resource=resource)  # sampler: OTEL_TRACES_SAMPLER
    provider.add_span_processor(sdk_export.BatchSpanProcessor(otlp.OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _tracing.enable(provider)
    tracer_provider: trace.TracerProvider = provider
    return tracer_provider


def _env_wins(defaults: dict[str, str]) -> dict[str, str]:
    """``defaults`` without what OTEL_SERVICE_NAME sets (Resource.create lets the
    attributes given win over the environment; the environment should win here)."""
    if os.environ.get("OTEL_SERVICE_NAME"):
        return {k: v for k, v in defaults.items() if k != "service.name"}
    return defaults


def add_trace_ids(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: ``trace_id`` and ``span_id`` of the current span, if any."""
    if _tracing.ON:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            event.setdefault("trace_id", format(context.trace_id, "032x"))
            event.setdefault("span_id", format(context.span_id, "016x"))
    return event
