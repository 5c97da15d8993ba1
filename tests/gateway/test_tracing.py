"""Tracing through the gateway (issue 21): a request is a server span whose trace goes on
through every agent the request reaches; an incoming traceparent is continued and the
answer carries the request's own."""

from __future__ import annotations

from opentelemetry.trace import SpanKind, StatusCode

from vibe_actors import Agent, Message, WorkerSpec, handler

INCOMING = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class Greet(Message):
    who: str


class Greeting(Message):
    text: str


class Lookup(Message):
    who: str


class Front(Agent):
    @handler
    def greet(self, msg: Greet) -> Greeting:
        found = self.ref("back").ask(Lookup(who=msg.who))
        return Greeting(text=f"hello {found.text}")


class Back(Agent):
    @handler
    def lookup(self, msg: Lookup) -> Greeting:
        return Greeting(text=msg.who.upper())


def specs() -> list[WorkerSpec]:
    return [WorkerSpec(name="front", agent=Front), WorkerSpec(name="back", agent=Back)]


def _spans(exporter) -> dict[str, object]:
    return {span.name: span for span in exporter.get_finished_spans()}


def test_a_request_is_one_trace_through_the_agents_it_reaches(gateway, spans):
    _, client = gateway(specs())
    response = client.post("/v1/agents/front/Greet", json={"who": "ada"})
    assert response.status_code == 200
    found = _spans(spans)
    http = found["POST /v1/agents/{name}/{type}"]
    front, back = found["front Greet"], found["back Lookup"]
    assert http.kind is SpanKind.SERVER and http.parent is None
    assert front.parent.span_id == http.context.span_id
    assert back.parent.span_id == front.context.span_id
    assert len({s.context.trace_id for s in (http, front, back)}) == 1
    assert http.attributes["http.request.method"] == "POST"
    assert http.attributes["http.route"] == "/v1/agents/{name}/{type}"
    assert http.attributes["http.response.status_code"] == 200
    assert http.attributes["url.path"] == "/v1/agents/front/Greet"
    assert http.attributes["vibe.request_id"] == response.headers["x-request-id"]
    assert front.attributes["vibe.request_id"] == response.headers["x-request-id"]
    trace_id, span_id = f"{http.context.trace_id:032x}", f"{http.context.span_id:016x}"
    flags = f"{int(http.context.trace_flags):02x}"
    assert response.headers["traceparent"] == f"00-{trace_id}-{span_id}-{flags}"
    assert http.context.trace_flags.sampled


def test_an_incoming_traceparent_is_continued(gateway, spans):
    _, client = gateway(specs())
    response = client.post(
        "/v1/agents/front/Greet",
        json={"who": "ada"},
        headers={"traceparent": INCOMING, "tracestate": "vendor=1"},
    )
    assert response.status_code == 200
    http = _spans(spans)["POST /v1/agents/{name}/{type}"]
    assert f"{http.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert f"{http.parent.span_id:016x}" == "b7ad6b7169203331"
    assert http.context.trace_state.get("vendor") == "1"
    assert response.headers["traceparent"].split("-")[1] == "0af7651916cd43dd8448eb211c80319c"


def test_a_problem_answer_is_traced_too(gateway, spans):
    _, client = gateway(specs())
    response = client.post("/v1/agents/nobody/Greet", json={})
    assert response.status_code == 404
    assert "traceparent" in response.headers
    (http,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert http.attributes["http.response.status_code"] == 404
    assert http.status.status_code is StatusCode.UNSET  # a client's error is not the server's


def test_tracing_off_adds_no_header(gateway):
    _, client = gateway(specs())
    response = client.post("/v1/agents/front/Greet", json={"who": "ada"})
    assert response.status_code == 200
    assert "traceparent" not in response.headers


def test_an_unsampled_incoming_trace_stays_unsampled_all_the_way(gateway, spans):
    _, client = gateway(specs())
    unsampled = INCOMING[:-2] + "00"
    response = client.post(
        "/v1/agents/front/Greet", json={"who": "ada"}, headers={"traceparent": unsampled}
    )
    assert response.status_code == 200
    assert spans.get_finished_spans() == ()  # neither the request's nor the agents'
    returned = response.headers["traceparent"].split("-")
    assert (returned[1], returned[3]) == ("0af7651916cd43dd8448eb211c80319c", "00")
