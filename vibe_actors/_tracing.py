"""Tracing with OpenTelemetry: the runtime's side (off unless configured at the edge).

Off, the runtime pays one module-level flag load per send (:data:`ON`) and one
``None`` check per handled message (the envelope's ``trace``): nothing here is
called. On (:func:`enable`, from :mod:`vibe_actors.tracing` or the gateway's
``--otel``), a send records the span context current in the sending thread or
task (a handler's span, an HTTP request's span, the embedding program's own)
and when it was sent, in the envelope's ``trace``: ``(SpanContext,
perf_counter)``. The receive loop then handles the message inside a span of
its own (:func:`handle`), a child of the sender's, attached as the current
context so that the sends the handler makes carry it on, as deadlines are.

Only a sampled trace travels: a send outside any span, or in a span that is
not sampled, carries None, and its handling makes no span and costs what it
costs with tracing off. A trace begins at an edge (an HTTP request, the
embedding program's own span), so the runtime's own chatter (a flush, a
timer's fan-out) is no root span each; and parent-based sampling would have
dropped every descendant of an unsampled span anyway, at a cost per message.
Timer ticks and the runtime's own signals carry no trace.

Durable work (a reminder, a job, a webhook delivery) keeps its context as a W3C
``traceparent`` string (:func:`current_traceparent`) and resumes it later,
after a restart too, with :func:`resumed` or :func:`start`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode

from vibe_actors._messages import IS_ERROR_REPLY

if TYPE_CHECKING:
    from vibe_actors._envelope import Envelope

__all__ = [
    "ON",
    "answered",
    "close_failed",
    "current_context",
    "current_traceparent",
    "disable",
    "enable",
    "event",
    "finish",
    "handle",
    "headers_of",
    "outgoing",
    "resumed",
    "span",
    "start",
    "start_here",
    "start_under",
    "tracer",
    "using",
]

#: Whether tracing is on: the one check a send makes (a module global, read per send).
ON = False
_tracer: trace.Tracer | None = None
_perf = time.perf_counter
_get_current_span = trace.get_current_span
_set_span_in_context = trace.set_span_in_context
_attach, _detach = otel_context.attach, otel_context.detach
_SCOPE = "vibe_actors"


def _propagation() -> ModuleType:
    """OpenTelemetry's propagation API (W3C trace context, or what OTEL_PROPAGATORS names).

    Imported on first use, once tracing is on: importing it loads the propagators'
    entry points, a cost every ``import vibe_actors`` would otherwise pay.
    """
    from opentelemetry import propagate

    return propagate


def enable(provider: trace.TracerProvider | None = None) -> None:
    """Trace from now on, with ``provider`` (default: OpenTelemetry's global one)."""
    global ON, _tracer
    source = provider if provider is not None else trace.get_tracer_provider()
    _tracer = source.get_tracer(_SCOPE)
    ON = True


def disable() -> None:
    """Stop tracing: sends carry no context from now on (messages queued with one keep it)."""
    global ON, _tracer
    ON = False
    _tracer = None


def tracer() -> trace.Tracer:
    """The tracer spans are made with (a no-op one when tracing is off)."""
    return _tracer if _tracer is not None else trace.NoOpTracer()


def outgoing() -> tuple[SpanContext, float] | None:
    """What a send made now carries: the current span's context and the time it was sent
    (for the receiver's queue wait); None outside any span or in an unsampled one (see
    the module docstring)."""
    context = _get_current_span().get_span_context()
    return (context, _perf()) if context.trace_flags.sampled else None


def handle(host: Any, fn: Any, agent: Any, msg: Any, env: Envelope) -> Any:
    """Run handler ``fn`` for ``env`` inside a span (the receive loop's traced path).

    On an exception the span stays open and current, held by ``host.span``, so
    that the crash is logged with its trace ids; the loop closes it
    (:func:`close_failed`) once it has decided what the failure is.
    """
    parent, sent = env.trace
    active = _tracer
    if active is None:  # tracing went off since it was sent
        return fn(agent, msg)
    cls = msg.__class__
    attributes: dict[str, Any] = {
        "vibe.agent": host.cell.name,
        "vibe.message.type": cls.__name__,
        "vibe.incarnation": host.incarnation,
        "vibe.queue_wait_ms": (_perf() - sent) * 1000.0,
        "vibe.ask": env.reply is not None,
    }
    if env.request_id is not None:
        attributes["vibe.request_id"] = env.request_id
    if env.entity is not None:
        attributes["vibe.entity"] = env.entity
    current = active.start_span(
        f"{host.cell.name} {cls.__name__}",
        _set_span_in_context(NonRecordingSpan(parent)),
        SpanKind.CONSUMER,
        attributes,
    )
    token = _attach(_set_span_in_context(current))
    try:
        result = fn(agent, msg)
    except Exception as exc:
        current.record_exception(exc)
        current.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:200]))
        host.span = (current, token)
        raise
    if current.is_recording():
        if IS_ERROR_REPLY[result.__class__]:
            outcome = "error_reply"
        elif env.reply is None and attributes["vibe.ask"]:
            outcome = "deferred"
        else:
            outcome = "ok"
        current.set_attribute("vibe.outcome", outcome)
    _detach(token)
    current.end()
    return result


def close_failed(host: Any, outcome: str, directive: str) -> Any:
    """End the span of the message whose handler raised (``outcome``: crashed or failed).

    Returns its context, for the supervisor's signal (None if it was not sampled).
    """
    current, token = host.span
    host.span = None
    current.set_attribute("vibe.outcome", outcome)
    current.add_event(f"agent.{outcome}", {"vibe.directive": directive})
    _detach(token)
    current.end()
    context = current.get_span_context()
    return context if context.is_valid else None


def answered(deferred: SpanContext) -> None:
    """A deferred reply is given: the current span (the handling that gives it, if traced)
    links to the span of the message that deferred it."""
    current = _get_current_span()
    if current.is_recording():
        current.add_link(deferred, {"vibe.link": "deferred_reply"})


def event(name: str, attributes: Mapping[str, Any]) -> None:
    """Add an event to the current span (for example a supervisor's restart of a child)."""
    current = _get_current_span()
    if current.is_recording():
        current.add_event(name, dict(attributes))


@contextmanager
def span(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    links: Iterable[SpanContext] = (),
) -> Iterator[trace.Span]:
    """A child span of the current one, current inside the block (store transactions),
    linked to the spans of ``links`` (the other writers of a group commit).

    Only when :data:`ON`; callers check it first, so that tracing off costs no call.
    """
    with tracer().start_as_current_span(
        name, attributes=attributes, links=[Link(context) for context in links]
    ) as inner:
        yield inner


def current_context() -> SpanContext | None:
    """The current span's context (None outside any span)."""
    context = _get_current_span().get_span_context()
    return context if context.is_valid else None


def current_traceparent() -> str | None:
    """The current context as a W3C ``traceparent`` (None when tracing is off or no span
    is current): what durable work keeps to join its trace later."""
    if not ON:
        return None
    carrier: dict[str, str] = {}
    _propagation().inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def resumed(
    name: str,
    traceparent: str | None,
    attributes: Mapping[str, Any] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Iterator[trace.Span | None]:
    """A span continuing the trace ``traceparent`` was taken from (a reminder's delivery, a
    job's attempt), current inside the block.

    Yields None, and makes no span, when tracing is off or ``traceparent`` is None (the
    work began outside any trace: it starts none).
    """
    if not ON or traceparent is None:
        yield None
        return
    parent = _propagation().extract({"traceparent": traceparent})
    with tracer().start_as_current_span(
        name, parent, kind, attributes=attributes, record_exception=True
    ) as inner:
        yield inner


def start(
    name: str,
    traceparent: str | None,
    attributes: Mapping[str, Any],
    kind: SpanKind = SpanKind.INTERNAL,
) -> trace.Span | None:
    """A span continuing ``traceparent``'s trace, started now and ended by :func:`finish`
    (work spanning several messages: a job's attempt, a webhook's POST); None when
    tracing is off or ``traceparent`` is None."""
    if not ON or traceparent is None:
        return None
    parent = _propagation().extract({"traceparent": traceparent})
    return tracer().start_span(name, parent, kind, attributes)


def start_here(name: str, attributes: Mapping[str, Any]) -> trace.Span:
    """A ``CLIENT`` span, child of the current one, started now and ended by :func:`finish`
    (a call to another process: a Ray-placed agent's handling)."""
    return tracer().start_span(name, None, SpanKind.CLIENT, attributes)


def start_under(parent: SpanContext, name: str, attributes: Mapping[str, Any]) -> trace.Span:
    """As :func:`start_here`, the child of ``parent`` (a context carried by an envelope)."""
    context = _set_span_in_context(NonRecordingSpan(parent))
    return tracer().start_span(name, context, SpanKind.CLIENT, attributes)


def headers_of(current: trace.Span) -> dict[str, str]:
    """The W3C headers (traceparent, tracestate) naming ``current`` as the parent: what an
    outgoing request carries, so that the server's spans join the trace."""
    carrier: dict[str, str] = {}
    _propagation().inject(carrier, _set_span_in_context(current))
    return carrier


@contextmanager
def using(current: trace.Span) -> Iterator[None]:
    """``current`` as the current span inside the block (the sends made there carry it)."""
    token = _attach(_set_span_in_context(current))
    try:
        yield
    finally:
        _detach(token)


def finish(current: trace.Span, outcome: str, error: str | None = None) -> None:
    """End ``current`` (from :func:`start`) with its ``outcome`` (and ``error``, if failed)."""
    current.set_attribute("vibe.outcome", outcome)
    if error is not None:
        current.set_status(Status(StatusCode.ERROR, error[:200]))
    current.end()
