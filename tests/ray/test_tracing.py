"""Tracing a Ray-placed agent (issue 21): its handling joins the trace of the message,
whether the ask goes through the proxy's mailbox or is answered in the asker's thread.

The call's span (``{name} {Type} on ray``, CLIENT) is made by the proxy around the Ray
call, so the host's process needs no tracing of its own."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import SpanKind

from vibe_actors import Agent, Message, WorkerSpec, handler
from vibe_actors.ray import RaySettings, placed

from tests.ray.agents import Add, Boom, Tally, Total


class Relay(Message):
    amount: int


class Relayer(Agent):
    """Asks the placed tally (named by its config) through the proxy's mailbox."""

    @handler
    def relay(self, msg: Relay) -> Total:
        return self.ref(self.config).ask_future(Add(amount=msg.amount), timeout=20).wait()


def test_a_ray_placed_agent_s_handling_joins_the_trace(
    ray_settings: RaySettings, make_system: Any, spans: Any
) -> None:
    system = make_system(
        [
            WorkerSpec(name="tally-traced", agent=placed(Tally, ray_settings)),
            WorkerSpec(name="relayer", agent=Relayer, config="tally-traced"),
        ]
    )
    tracer = spans.provider.get_tracer("test")
    with tracer.start_as_current_span("inline") as inline:
        assert system.ref("tally-traced").ask(Add(amount=2), timeout=20).value == 2
    with tracer.start_as_current_span("relayed") as relayed:
        assert system.ref("relayer").ask(Relay(amount=3), timeout=20).value == 5
    calls = [s for s in spans.get_finished_spans() if s.name == "tally-traced Add on ray"]
    by_trace = {s.context.trace_id: s for s in calls}
    assert set(by_trace) == {
        inline.get_span_context().trace_id,
        relayed.get_span_context().trace_id,
    }
    direct = by_trace[inline.get_span_context().trace_id]
    assert direct.parent.span_id == inline.get_span_context().span_id  # the asker's span
    assert direct.kind is SpanKind.CLIENT
    assert direct.attributes["vibe.placement"] == "ray"
    assert direct.attributes["vibe.outcome"] == "ok"
    through = by_trace[relayed.get_span_context().trace_id]
    proxied = next(
        s for s in spans.get_finished_spans() if s.context.span_id == through.parent.span_id
    )
    assert proxied.name == "tally-traced Add"  # the proxy's handling of the message
    relaying = next(s for s in spans.get_finished_spans() if s.name == "relayer Relay")
    assert proxied.parent.span_id == relaying.context.span_id


def test_a_crash_on_ray_ends_its_span_in_error(
    ray_settings: RaySettings, make_system: Any, spans: Any
) -> None:
    import pytest

    from vibe_actors import AskError

    system = make_system([WorkerSpec(name="tally-traced-boom", agent=placed(Tally, ray_settings))])
    with (
        spans.provider.get_tracer("test").start_as_current_span("caller"),
        pytest.raises(AskError),
    ):
        system.ref("tally-traced-boom").ask(Boom(), timeout=20)
    (call,) = [s for s in spans.get_finished_spans() if s.name.endswith("Boom on ray")]
    assert call.attributes["vibe.outcome"] == "crashed"
    assert call.status.status_code.name == "ERROR"
