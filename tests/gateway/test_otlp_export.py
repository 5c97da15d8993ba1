"""``python -m gateway --otel`` (issue 21): configured by the standard OTEL_* variables, it
exports its spans over OTLP/HTTP. A tiny collector on 127.0.0.1 decodes the protobuf
payloads with opentelemetry-proto and checks that the request's trace arrived whole, and
the crash it caused was logged with its trace id."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import wait_until
from tests.gateway.logs import events
from tests.gateway.test_process import ROOT, free_port, healthy

INCOMING_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING = f"00-{INCOMING_TRACE}-00f067aa0ba902b7-01"


class Collector:
    """What the receiver got: every ExportTraceServiceRequest, decoded."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()

    def spans(self) -> list[tuple[dict[str, str], object]]:
        """(resource attributes, span) for every span received."""
        found = []
        with self.lock:
            for request in self.requests:
                for resource_spans in request.resource_spans:
                    resource = {
                        a.key: a.value.string_value for a in resource_spans.resource.attributes
                    }
                    for scope_spans in resource_spans.scope_spans:
                        found.extend((resource, span) for span in scope_spans.spans)
        return found


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        collector: Collector = self.server.collector  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with collector.lock:
            collector.requests.append(request)
            collector.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[Collector, str]]:
    collector = Collector()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    server.collector = collector  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield collector, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_the_gateway_exports_a_request_s_trace_over_otlp(collector, tmp_path):
    received, endpoint = collector
    wiring = tmp_path / "wiring.yaml"
    wiring.write_text(
        "version: 1\nroot:\n  name: root\n  children:\n"
        "    - name: w\n      agent: tests.vibe_actors.agents:Worker\n"
    )
    port = free_port()
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_SERVICE_NAME": "otel-test",
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--otel", "--port", str(port), "--wiring", str(wiring),
         "--data-dir", str(tmp_path)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: healthy(url) or process.poll() is not None, 20, "the gateway")
        answer = httpx.post(f"{url}/v1/agents/w/Boom", json={}, headers={"traceparent": INCOMING})
        assert answer.status_code == 503  # AgentCrashed
        assert answer.headers["traceparent"].split("-")[1] == INCOMING_TRACE
    finally:
        process.send_signal(signal.SIGTERM)
        _, logs = process.communicate(timeout=20)
    assert process.returncode == 0  # the spans still queued were flushed on the way out
    spans = {span.name: (resource, span) for resource, span in received.spans()}
    resource, http = spans["POST /v1/agents/{name}/{type}"]
    _, handled = spans["w Boom"]
    assert set(received.paths) == {"/v1/traces"}
    assert resource["service.name"] == "otel-test"
    assert http.trace_id.hex() == handled.trace_id.hex() == INCOMING_TRACE
    assert http.parent_span_id.hex() == "00f067aa0ba902b7"
    assert handled.parent_span_id == http.span_id
    assert [e.name for e in handled.events] == ["exception", "agent.crashed"]
    (crashed,) = [e for e in events(logs) if e["event"] == "agent_crashed"]
    assert crashed["trace_id"] == INCOMING_TRACE
    assert crashed["span_id"] == handled.span_id.hex()
