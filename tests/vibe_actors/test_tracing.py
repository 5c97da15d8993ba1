"""Tracing (issue 21): a message's handling is a span, child of its sender's; the context
flows from a handled message into the sends it makes; crashes and restarts are span events;
logs carry the trace ids; tracing off makes no span."""

from __future__ import annotations

import threading

import pytest
import structlog
from opentelemetry.trace import SpanKind

from vibe_actors import Agent, Message, WorkerSpec, handler, tracing

from tests.conftest import wait_until


class Ping2(Message):
    pass


class Pong(Message):
    pass


class Relay(Message):
    tell: bool = False


class Boom(Message):
    pass


TOLD = threading.Event()
LOGGED: list[dict] = []


class Leaf(Agent):
    @handler
    def ping(self, msg: Ping2) -> Pong:
        TOLD.set()
        return Pong()

    @handler
    def boom(self, msg: Boom) -> None:
        raise RuntimeError("boom")


class Middle(Agent):
    @handler
    def relay(self, msg: Relay) -> Pong | None:
        LOGGED.append(tracing.add_trace_ids(None, "info", {"event": "relaying"}))
        if msg.tell:
            self.ref("leaf").tell(Ping2())
            return None
        return self.ref("leaf").ask(Ping2())


def specs() -> list[WorkerSpec]:
    return [WorkerSpec(name="leaf", agent=Leaf), WorkerSpec(name="middle", agent=Middle)]


@pytest.fixture(autouse=True)
def _reset():
    TOLD.clear()
    LOGGED.clear()


def _by_name(exporter) -> dict[str, object]:
    return {span.name: span for span in exporter.get_finished_spans()}


def test_an_ask_through_two_agents_is_one_trace_in_order(make_system, spans):
    system = make_system(specs())
    tracer = spans.provider.get_tracer("test")
    with tracer.start_as_current_span("caller") as root:
        system.ref("middle").ask(Relay())
    found = _by_name(spans)
    middle, leaf = found["middle Relay"], found["leaf Ping2"]
    trace_id = root.get_span_context().trace_id
    assert {middle.context.trace_id, leaf.context.trace_id} == {trace_id}
    assert middle.parent.span_id == root.get_span_context().span_id
    assert leaf.parent.span_id == middle.context.span_id
    assert leaf.kind is SpanKind.CONSUMER
    assert leaf.attributes["vibe.agent"] == "leaf"
    assert leaf.attributes["vibe.message.type"] == "Ping2"
    assert leaf.attributes["vibe.incarnation"] == 1
    assert leaf.attributes["vibe.outcome"] == "ok"
    assert leaf.attributes["vibe.queue_wait_ms"] >= 0
    assert leaf.end_time <= middle.end_time


def test_a_tell_from_a_handler_carries_the_context(make_system, spans):
    system = make_system(specs())
    with spans.provider.get_tracer("test").start_as_current_span("caller") as root:
        system.ref("middle").tell(Relay(tell=True))
    assert TOLD.wait(5)
    wait_until(lambda: "leaf Ping2" in _by_name(spans), what="the leaf's span")
    found = _by_name(spans)
    middle, leaf = found["middle Relay"], found["leaf Ping2"]
    assert middle.parent.span_id == root.get_span_context().span_id
    assert leaf.parent.span_id == middle.context.span_id


def test_a_send_outside_any_trace_starts_none(make_system, spans):
    system = make_system(specs())
    system.ref("middle").ask(Relay())
    assert spans.get_finished_spans() == ()


def test_logs_in_a_handler_carry_the_trace_ids(make_system, spans):
    system = make_system(specs())
    with spans.provider.get_tracer("test").start_as_current_span("caller"):
        system.ref("middle").ask(Relay())
    middle = _by_name(spans)["middle Relay"]
    assert LOGGED[0]["trace_id"] == format(middle.context.trace_id, "032x")
    assert LOGGED[0]["span_id"] == format(middle.context.span_id, "016x")


def test_a_crash_and_the_restart_are_events_of_the_trace(make_system, spans):
    system = make_system(specs())
    tracer = spans.provider.get_tracer("test")
    with tracer.start_as_current_span("caller"), pytest.raises(Exception, match="boom"):
        system.ref("leaf").ask(Boom())
    wait_until(
        lambda: any(
            e.name == "agent.restarted" for s in spans.get_finished_spans() for e in s.events
        ),
        what="the restart event",
    )
    found = _by_name(spans)
    crashed = found["leaf Boom"]
    assert crashed.attributes["vibe.outcome"] == "crashed"
    assert [e.name for e in crashed.events] == ["exception", "agent.crashed"]
    assert crashed.events[0].attributes["exception.type"] == "RuntimeError"
    supervising = next(s for s in spans.get_finished_spans() if s.name.endswith("ChildExited"))
    assert supervising.context.trace_id == crashed.context.trace_id
    assert supervising.parent.span_id == crashed.context.span_id


def test_an_unsampled_parent_makes_no_span_and_passes_the_decision_on(make_system, spans):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    system = make_system(specs())
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
    with unsampled.start_as_current_span("caller"):
        system.ref("middle").ask(Relay())
    assert spans.get_finished_spans() == ()


def test_tracing_off_makes_no_span_and_sends_carry_nothing(make_system):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    system = make_system(specs())
    assert not tracing.enabled()
    with provider.get_tracer("test").start_as_current_span("caller"):
        system.ref("middle").ask(Relay())
    assert [s.name for s in exporter.get_finished_spans()] == ["caller"]
    assert "trace_id" not in LOGGED[0]


def test_configure_without_the_sdk_says_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "opentelemetry.sdk" else real(name, *a),
    )
    with pytest.raises(tracing.TracingNotInstalled, match=r"vibe-actors\[otel\]"):
        tracing.configure()


def test_the_processor_leaves_events_alone_without_a_span(spans):
    assert tracing.add_trace_ids(None, "info", {"event": "x"}) == {"event": "x"}
    structlog.get_logger("t").info("fine")  # the test run's processors are untouched


def test_configure_builds_the_sdk_from_the_otel_variables(monkeypatch):
    from opentelemetry import trace

    installed = []
    monkeypatch.setattr(trace, "set_tracer_provider", installed.append)  # no global change
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    provider = tracing.configure(service_name="default-name")
    try:
        assert installed == [provider] and tracing.enabled()
        assert provider.resource.attributes["service.name"] == "from-env"
        assert provider.sampler.rate == 0.25
    finally:
        tracing.disable()
        provider.shutdown()
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    provider = tracing.configure(service_name="default-name")
    try:
        assert provider.resource.attributes["service.name"] == "default-name"
    finally:
        tracing.disable()
        provider.shutdown()


def test_pools_and_entities_carry_the_context(make_system, spans):
    from vibe_actors import PoolSpec

    from tests.vibe_actors.test_entities import Add
    from tests.vibe_actors.test_entities import kind as counters

    system = make_system(
        [WorkerSpec(name="leaves", agent=Leaf, pool=PoolSpec(size=2)), counters(shards=2)]
    )
    with spans.provider.get_tracer("test").start_as_current_span("caller") as root:
        system.ref("leaves").ask(Ping2())
        system.entity("counters", "cart-1").ask(Add(n=2))
    found = _by_name(spans)
    pooled = next(s for name, s in found.items() if name.startswith("leaves."))
    entity = next(s for name, s in found.items() if name.endswith(" Add"))
    span_id = root.get_span_context().span_id
    assert pooled.parent.span_id == span_id and entity.parent.span_id == span_id
    assert pooled.attributes["vibe.message.type"] == "Ping2"
    assert entity.attributes["vibe.entity"] == "cart-1"
