"""Admission against a real gateway process: probes always answer, every refusal is problem+json.

Each test runs ``python -m gateway`` (a pubsub agent and a Napper, small
budgets set by flags so the limits are reached with a handful of sockets) and
drives it with raw sockets and httpx. Client addresses other than 127.0.0.1
are other loopback addresses (127.0.0.2, ...), bound as the source of the
connection: the gateway counts idle connections and streams per address.

Two tests use the default budgets against the attacks that found the gap
(issue 16): a thousand event streams, and 1,100 idle sockets. Before the
admission, both made every request (probes too) uvicorn's 503 ``text/plain``.
"""

from __future__ import annotations

import contextlib
import json
import resource
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import wait_until
from tests.reliability.conftest import Gateway

pytestmark = pytest.mark.timeout(120)  # a gateway boots per test (busy CI machines)

PROBLEM = "application/problem+json"
PROBES = ("/healthz", "/readyz", "/metrics")
WIRING = """\
version: 1
root:
  name: root
  children:
    - name: pubsub
      agent: vibe_actors.agents.pubsub:PubSub
    - name: napper
      agent: tests.vibe_actors.agents:Napper
"""
#: Small budgets: 16 connections, 6 idle per address, 2 requests, 2 probes, 3 streams (2 each).
SMALL = (
    "--max-connections", "16", "--max-idle-per-client", "6", "--max-concurrency", "2",
    "--probe-reserve", "2", "--max-streams", "3", "--max-streams-per-client", "2",
)  # fmt: skip
STREAM_REQUEST = b"GET /v1/topics/t/events HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def start(gateways: Callable[..., Gateway], tmp_path: Path) -> Callable[..., Gateway]:
    wiring = tmp_path / "wiring.yaml"
    wiring.write_text(WIRING)

    def run(*args: str) -> Gateway:
        return gateways(wiring=wiring, chaos=False, args=args)

    return run


# -- clients from an address of our choosing -------------------------------------------


def source(n: int) -> str:
    return f"127.0.0.{n}"


def client(gateway: Gateway, address: int = 2) -> httpx.Client:
    """An httpx client whose connections come from 127.0.0.<address>."""
    transport = httpx.HTTPTransport(local_address=source(address))
    return httpx.Client(base_url=gateway.url, transport=transport, timeout=10)


def get(gateway: Gateway, path: str, address: int = 2) -> httpx.Response:
    """One request on a fresh connection from 127.0.0.<address>."""
    with client(gateway, address) as http:
        return http.get(path)


def connect(gateway: Gateway, address: int = 1) -> socket.socket:
    sock = socket.create_connection(
        ("127.0.0.1", gateway.port), timeout=10, source_address=(source(address), 0)
    )
    # Closed with a reset: a thousand closes leave no TIME_WAIT ports behind.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return sock


def samples(gateway: Gateway, name: str, address: int = 2) -> dict[str, float]:
    """Samples of metric ``name`` keyed by their one label's value ("" without labels)."""
    text = get(gateway, "/metrics", address).text
    return {
        next(iter(sample.labels.values()), ""): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def metric(gateway: Gateway, name: str, label: str = "", address: int = 2) -> float:
    return samples(gateway, name, address).get(label, 0.0)


def assert_refused(response: httpx.Response, slug: str) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == PROBLEM, response.headers
    assert response.headers["retry-after"] == "1"
    problem = response.json()
    assert problem["type"] == f"/problems/{slug}" and problem["status"] == 503
    assert problem["detail"] and problem["request_id"] == response.headers["x-request-id"]


def assert_probes_answer(gateway: Gateway, address: int = 2) -> None:
    for path in PROBES:
        response = get(gateway, path, address)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])


def read_head(sock: socket.socket, within: float = 10.0) -> bytes:
    """Bytes of a response up to its first SSE comment, or a whole short response."""
    deadline = time.monotonic() + within
    data = b""
    while time.monotonic() < deadline:
        if b"subscribed" in data or (data.endswith(b"}") and b"\r\n\r\n" in data):
            return data
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def open_stream(gateway: Gateway, address: int = 1) -> socket.socket:
    """An event stream from 127.0.0.<address>, open (the listener registered)."""
    sock = connect(gateway, address)
    sock.sendall(STREAM_REQUEST)
    head = read_head(sock)
    assert head.startswith(b"HTTP/1.1 200 ") and b"subscribed" in head, head[:400]
    return sock


def closed_by_server(sock: socket.socket, within: float) -> bool:
    readable, _, _ = select.select([sock], [], [], within)
    if not readable:
        return False
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


@contextlib.contextmanager
def sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    try:
        yield opened
    finally:
        for sock in opened:
            sock.close()


def descriptors_for(count: int) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 256:
        pytest.skip(f"descriptor limit too low ({soft}) for {count} sockets")


# -- event streams -----------------------------------------------------------------------


def test_streams_past_their_budget_are_503_problem_json_while_probes_answer(start) -> None:
    gateway = start(*SMALL)
    with sockets() as streams:
        streams += [open_stream(gateway, 1), open_stream(gateway, 1)]
        # 127.0.0.1 has its 2: a third is refused for the address ...
        with client(gateway, 1) as http:
            assert_refused(http.get("/v1/topics/t/events"), "too-many-streams")
        streams.append(open_stream(gateway, 2))
        # ... and with 3 open in all, any address is refused for the total.
        with client(gateway, 3) as http:
            assert_refused(http.get("/v1/topics/t/events"), "too-many-streams")
        assert_probes_answer(gateway)
        assert_probes_answer(gateway, 1)
        with client(gateway, 1) as http:  # plain requests have a budget of their own
            assert http.post("/v1/agents/napper/Ping", json={}).status_code == 200
        refused = samples(gateway, "vibe_http_refused_total")
        assert (refused["client_streams"], refused["streams"]) == (1, 1), refused
        assert metric(gateway, "vibe_http_in_flight", "stream") == 3
        streams.pop().close()  # 127.0.0.2's stream ends: its place is free again

        def reopened() -> bool:
            if metric(gateway, "vibe_http_in_flight", "stream") != 2:
                return False
            streams.append(open_stream(gateway, 3))
            return True

        wait_until(reopened, 10, "a stream's place to be given back")


def test_a_thousand_streams_leave_probes_and_requests_answering(start) -> None:
    """The attack of issue 16, default budgets: 1,000 streams from 63 addresses."""
    descriptors_for(1000)
    gateway = start()
    with sockets() as streams:
        for n in range(1000):
            sock = connect(gateway, 2 + n // 16)  # 16 per address, the per-address limit
            sock.sendall(STREAM_REQUEST)
            streams.append(sock)
        heads = [read_head(sock) for sock in streams]
        opened = sum(head.startswith(b"HTTP/1.1 200 ") for head in heads)
        refused = [head for head in heads if head.startswith(b"HTTP/1.1 503 ")]
        assert opened == 256, opened  # --max-streams' default
        assert len(refused) == 1000 - 256
        assert all(b"application/problem+json" in h and b"retry-after: 1" in h for h in refused)
        assert_probes_answer(gateway, 1)
        with client(gateway, 1) as http:
            assert http.post("/v1/agents/napper/Ping", json={}).status_code == 200
        print(f"1000 stream requests: {opened} open, {len(refused)} refused 503 problem+json; "
              "probes and asks 200")  # fmt: skip


# -- idle connections --------------------------------------------------------------------


def test_idle_sockets_from_one_address_cannot_lock_it_out(start) -> None:
    gateway = start(*SMALL)
    with sockets() as idle:
        idle += [connect(gateway, 1) for _ in range(6)]  # the address's idle limit

        def counted() -> bool:
            return metric(gateway, "vibe_http_connections", "idle") >= 6

        wait_until(counted, 10, "the server to count the idle sockets")
        assert get(gateway, "/healthz", address=1).status_code == 200  # a fresh connection
        assert closed_by_server(idle[0], 5), "the address's oldest idle socket stays open"
        assert metric(gateway, "vibe_http_idle_closed_total", "client_idle") == 1
        idle += [connect(gateway, 1) for _ in range(30)]  # many more: the newest 6 stay
        wait_until(lambda: closed_by_server(idle[-7], 0.05), 10, "older idle sockets to close")
        assert_probes_answer(gateway, 1)
        assert_probes_answer(gateway, 2)
        with client(gateway, 1) as http:
            assert http.post("/v1/agents/napper/Ping", json={}).status_code == 200
        assert metric(gateway, "vibe_http_idle_closed_total", "client_idle") >= 30


def test_past_the_connection_limit_an_idle_connection_makes_room(start) -> None:
    gateway = start(*SMALL)
    with sockets() as idle:
        for address, count in ((1, 6), (2, 5), (3, 5)):  # within the per-address limit
            idle += [connect(gateway, address) for _ in range(count)]  # 16: the limit
        # Accepted in order after them, each probe's connection is a 17th: the oldest
        # idle one is closed to make room.
        assert_probes_answer(gateway, 4)
        assert closed_by_server(idle[0], 5), "the oldest idle socket stays open"
        assert metric(gateway, "vibe_http_idle_closed_total", "connections", 4) >= 1
        assert metric(gateway, "vibe_http_refused_total", "connections", 4) == 0


def test_a_thousand_and_one_hundred_idle_sockets_leave_probes_answering(start) -> None:
    """The attack of issue 16, default budgets: /healthz is 200 at once, not 503 text/plain."""
    descriptors_for(1100)
    gateway = start()
    with sockets() as idle:
        idle += [connect(gateway) for _ in range(1100)]
        started = time.monotonic()
        response = get(gateway, "/healthz", address=1)
        took = time.monotonic() - started
        assert response.status_code == 200, (response.status_code, response.text[:200])
        assert_probes_answer(gateway, 1)
        with client(gateway, 1) as http:
            assert http.post("/v1/agents/napper/Ping", json={}).status_code == 200
        kept = metric(gateway, "vibe_http_connections", "idle")
        print(f"1100 idle sockets: /healthz 200 in {took * 1000:.0f} ms, {kept:.0f} kept idle")
        assert kept <= 256 + 1  # --max-idle-per-client's default (+ the metrics' own)


# -- requests ----------------------------------------------------------------------------


def nap(gateway: Gateway, marker: Path, ms: int, results: list[int]) -> threading.Thread:
    def run() -> None:
        with client(gateway, 5) as http:
            body = {"ms": ms, "marker": str(marker)}
            headers = {"x-timeout-ms": "20000"}
            response = http.post("/v1/agents/napper/Nap", json=body, headers=headers, timeout=30)
            results.append(response.status_code)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_requests_past_the_concurrency_are_503_problem_json_while_probes_answer(
    start, tmp_path: Path
) -> None:
    gateway = start(*SMALL)
    results: list[int] = []
    naps = [nap(gateway, tmp_path / f"nap{n}", 1500, results) for n in range(2)]
    wait_until(
        lambda: metric(gateway, "vibe_http_in_flight", "request") == 2, 10, "two naps in flight"
    )
    with client(gateway, 1) as http:
        refused = http.post("/v1/agents/napper/Ping", json={})
    assert_refused(refused, "over-capacity")
    assert_probes_answer(gateway)  # their own reserve
    assert metric(gateway, "vibe_http_refused_total", "concurrency") == 1
    for thread in naps:
        thread.join(30)
    assert results == [200, 200]
    with client(gateway, 1) as http:
        assert http.post("/v1/agents/napper/Ping", json={}).status_code == 200


def test_a_request_whose_client_left_keeps_its_place_until_its_handler_returns(
    start, tmp_path: Path
) -> None:
    gateway = start(*SMALL)
    marker = tmp_path / "napping"
    body = b'{"ms": 1500, "marker": "%s"}' % str(marker).encode()
    with connect(gateway, 1) as sock:
        sock.sendall(
            b"POST /v1/agents/napper/Nap HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        wait_until(marker.exists, 10, "the nap to reach its handler")
    # The connection is gone; the handler is not: the request still counts.
    wait_until(
        lambda: metric(gateway, "vibe_http_connections", "busy") == 1,  # the scrape's own
        10,
        "the server to see the client leave",
    )
    assert metric(gateway, "vibe_http_in_flight", "request") == 1
    wait_until(lambda: metric(gateway, "vibe_http_in_flight", "request") == 0, 10, "the nap to end")


def test_the_budgets_are_logged_at_startup(start) -> None:
    gateway = start(*SMALL)
    lines = [json.loads(line) for line in gateway.logs().splitlines() if line.startswith("{")]
    starting = [line for line in lines if line["event"] == "gateway_starting"]
    assert len(starting) == 1
    budgets = {key: starting[0][key] for key in (
        "max_connections", "max_idle_per_client", "max_concurrency", "probe_reserve",
        "max_streams", "max_streams_per_client",
    )}  # fmt: skip
    assert budgets == {
        "max_connections": 16, "max_idle_per_client": 6, "max_concurrency": 2,
        "probe_reserve": 2, "max_streams": 3, "max_streams_per_client": 2,
    }  # fmt: skip
