"""The admission budgets (gateway._admission): settings, bookkeeping, and a real server in a thread.

The attacks themselves (a thousand streams, idle sockets, over-concurrency)
run against a real ``python -m gateway`` in tests/reliability/test_admission.py.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway import AppSettings, GatewayServer, create_app, parse_settings, uvicorn_config
from gateway._admission import (
    IDLE_CLOSE_REASONS,
    REFUSAL_REASONS,
    Admission,
    AdmissionLimits,
    Peer,
    is_stream_path,
)
from gateway._http_metrics import AdmissionMetrics
from gateway._protocol import header_limited
from gateway._server import ensure_descriptors
from gateway._settings import SettingsError
from vibe_actors import ActorSystem, SupervisorSpec

from tests.conftest import wait_until, worker
from tests.gateway.logs import problems

ROOT = Path(__file__).resolve().parents[2]

LIMIT_FLAGS = {
    "max_connections": ("--max-connections", "VIBE_MAX_CONNECTIONS", 2048, 100),
    "max_idle_per_client": ("--max-idle-per-client", "VIBE_MAX_IDLE_PER_CLIENT", 256, 7),
    "max_concurrency": ("--max-concurrency", "VIBE_MAX_CONCURRENCY", 1000, 20),
    "probe_reserve": ("--probe-reserve", "VIBE_PROBE_RESERVE", 16, 3),
    "max_streams": ("--max-streams", "VIBE_MAX_STREAMS", 256, 10),
    "max_streams_per_client": ("--max-streams-per-client", "VIBE_MAX_STREAMS_PER_CLIENT", 16, 4),
}
#: Budgets that fit together with each test value above.
SMALL = {
    "max_connections": "100", "max_idle_per_client": "50", "max_concurrency": "20",
    "probe_reserve": "5", "max_streams": "10", "max_streams_per_client": "5",
}  # fmt: skip


# -- settings ------------------------------------------------------------------------


@pytest.mark.parametrize("field", list(LIMIT_FLAGS))
def test_every_budget_has_a_default_a_flag_and_a_variable(field: str) -> None:
    flag, env, default, value = LIMIT_FLAGS[field]
    assert getattr(parse_settings([], {}), field) == default
    small = {f"VIBE_{k.upper()}": v for k, v in SMALL.items() if k != field}
    assert getattr(parse_settings([], {**small, env: str(value)}), field) == value
    from_flag = parse_settings([flag, str(value)], {**small, env: "1"})
    assert getattr(from_flag, field) == value  # the flag wins
    assert getattr(from_flag.admission_limits(), field) == value


def test_the_default_stream_budget_is_well_below_the_connection_limit() -> None:
    limits = parse_settings([], {}).admission_limits()
    assert limits.max_streams <= limits.max_connections // 4
    assert limits.max_concurrency + limits.probe_reserve + limits.max_streams < (
        limits.max_connections
    )


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--max-streams", "1500"], "max_streams (1500) must be at most half of max_connections"),
        (["--max-connections", "1200"], "max_concurrency + probe_reserve + max_streams (1272) "),
        (["--max-streams-per-client", "300"], "max_streams_per_client (300) must not exceed"),
        (["--max-idle-per-client", "5000"], "max_idle_per_client (5000) must not exceed"),
        (["--probe-reserve", "0"], "probe_reserve must be > 0, got 0"),
        (["--max-streams", "many"], "--max-streams / VIBE_MAX_STREAMS: Expected `int`"),
    ],
)
def test_a_bad_budget_is_one_line_naming_it(argv: list[str], problem: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings(argv, {})
    assert len(caught.value.problems) == 1 and problem in caught.value.problems[0], caught.value


def test_a_stream_budget_not_below_the_connections_stops_the_process_with_exit_2() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIBE_")}
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "--max-streams", "2000"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, env=env,
    )  # fmt: skip
    assert result.returncode == 2
    assert problems(result.stderr, "invalid_settings") == [
        "max_streams (2000) must be at most half of max_connections (2048): "
        "long-lived streams must leave connections for everything else"
    ]


def test_a_connection_limit_past_the_hard_descriptor_limit_is_refused(monkeypatch) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 4096))
    monkeypatch.setattr(resource, "setrlimit", lambda _, limits: calls.append(limits))
    assert ensure_descriptors(500) == 1024 and calls == []  # fits already
    assert ensure_descriptors(2048) == 2048 + 256 and calls == [(2304, 4096)]
    with pytest.raises(ValueError, match=r"max_connections \(8000\) needs 8256 open files"):
        ensure_descriptors(8000)


# -- bookkeeping -------------------------------------------------------------------------


class FakeConnection:
    def __init__(self) -> None:
        self.idle = True
        self.peer: Peer | None = None
        self.closed = False

    def close_idle(self) -> None:
        self.closed = True


def admission(**limits: int) -> Admission:
    base = {
        "max_connections": 8, "max_idle_per_client": 8, "max_concurrency": 2,
        "probe_reserve": 1, "max_streams": 2, "max_streams_per_client": 2,
    }  # fmt: skip
    return Admission(AdmissionLimits(**{**base, **limits}))


def test_past_the_idle_limit_of_an_address_its_oldest_idle_connection_is_closed() -> None:
    counts = admission(max_idle_per_client=3)
    first, busy, *rest = [FakeConnection() for _ in range(5)]
    counts.connect(first, "10.0.0.1")
    peer = counts.connect(busy, "10.0.0.1")
    assert peer is not None
    busy.idle = False  # a request in flight: as the protocol marks it
    peer.idle -= 1
    for connection in rest[:2]:
        assert counts.connect(connection, "10.0.0.1") is peer
    assert not first.closed  # 3 idle: at the limit, not past it
    counts.connect(rest[2], "10.0.0.1")
    assert first.closed and not busy.closed and first.peer is None
    counts.connect(FakeConnection(), "10.0.0.2")  # another address: its own count
    assert counts.idle_closed == {"client_idle": 1, "connections": 0}
    assert (counts.open_connections, counts.idle_connections, counts.clients) == (5, 4, 2)


def test_past_the_connection_limit_the_oldest_idle_of_any_address_is_closed() -> None:
    counts = admission()  # 8 connections
    connections = [FakeConnection() for _ in range(9)]
    for n, connection in enumerate(connections[:8]):
        counts.connect(connection, f"10.0.0.{n}")
    connections[0].idle = False
    assert counts.connect(connections[8], "10.0.0.99") is not None
    assert [c.closed for c in connections[:3]] == [False, True, False]
    assert counts.idle_closed["connections"] == 1 and counts.clients == 8  # 10.0.0.1 is gone


def test_with_every_connection_busy_a_new_one_is_refused() -> None:
    counts = admission()
    for _ in range(8):
        connection = FakeConnection()
        counts.connect(connection, "10.0.0.1")
        connection.idle = False
    assert counts.connect(FakeConnection(), "10.0.0.2") is None
    assert counts.refused["connections"] == 1 and counts.clients == 1


def test_disconnect_forgets_a_connection_once_and_an_address_without_any() -> None:
    counts = admission()
    connection = FakeConnection()
    peer = counts.connect(connection, "10.0.0.1")
    assert counts.admit_stream(peer) is None
    counts.disconnect(connection)
    counts.disconnect(connection)  # idempotent (closed to make room, then lost)
    assert (counts.open_connections, counts.clients) == (0, 1)  # its stream still runs
    counts.release_stream(peer)
    assert (counts.streams, counts.clients) == (0, 0)


def test_streams_are_refused_past_the_total_then_past_the_address() -> None:
    counts = admission(max_streams_per_client=1)
    one, two = Peer("10.0.0.1"), Peer("10.0.0.2")
    assert counts.admit_stream(one) is None
    assert counts.admit_stream(one) == "client_streams"
    assert counts.admit_stream(two) is None
    assert counts.admit_stream(Peer("10.0.0.3")) == "streams"
    assert (counts.streams, one.streams, two.streams) == (2, 1, 1)


@pytest.mark.parametrize(
    ("path", "stream"),
    [
        ("/v1/topics/t/events", True),
        ("/v1/topics/t/events/", True),  # the app ignores the slashes: so must its budget
        ("//v1/topics/t/events", True),
        ("/v1/agents/events/Ping", False),
        ("/v1/topics/t/events/x", False),
    ],
)
def test_stream_paths_are_matched_as_the_app_routes_them(path: str, stream: bool) -> None:
    assert is_stream_path(path) is stream


def test_header_limited_gives_each_server_its_own_admission() -> None:
    assert header_limited(1, 1024).admission is not header_limited(1, 1024).admission
    shared = Admission()
    assert header_limited(1, 1024, admission=shared).admission is shared


# -- a real server in a thread -----------------------------------------------------------


@pytest.fixture
def served(make_system: Callable[..., ActorSystem]) -> Iterator[tuple[int, Admission, Any]]:
    system = make_system(SupervisorSpec(name="root", children=(worker("w"),)))
    app = create_app(system, AppSettings())
    counts = admission(max_connections=16)
    app.metrics.registry.register(AdmissionMetrics(counts))
    config = uvicorn_config(app, "127.0.0.1", 0, drain_timeout=5, admission=counts)
    assert config.limit_concurrency is None  # the admission decides, not uvicorn
    server = GatewayServer(config)
    thread = threading.Thread(target=server.run, name="test-gateway", daemon=True)
    thread.start()
    try:
        assert server.started_event.wait(10), "the gateway did not start"
        yield server.servers[0].sockets[0].getsockname()[1], counts, app
    finally:
        server.should_exit = True
        thread.join(10)


def read_responses(sock: socket.socket, count: int) -> bytes:
    sock.settimeout(10)
    data = b""
    while data.count(b"HTTP/1.1 ") < count or not data.endswith(b"}"):
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return data


def test_pipelined_requests_are_each_admitted_and_given_back(served) -> None:
    port, counts, _ = served
    ping = b"POST /v1/agents/w/Ping HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    ping += b"Content-Length: 2\r\n\r\n{}"
    probe = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(ping * 3 + probe)
        data = read_responses(sock, 4)
        assert data.count(b"HTTP/1.1 200 ") == 4, data
        wait_until(lambda: counts.requests == counts.probes == 0, 5, "the places given back")
        assert counts.idle_connections == counts.open_connections == 1
    wait_until(lambda: counts.open_connections == 0, 5, "the connection to be forgotten")
    assert counts.clients == 0 and counts.refused == dict.fromkeys(REFUSAL_REASONS, 0)


def test_a_refusal_is_503_problem_json_with_retry_after(served) -> None:
    port, counts, _ = served
    counts.max_requests = 0  # the budget is spent
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /v1/agents HTTP/1.1\r\nHost: x\r\nX-Request-Id: r-1\r\n\r\n")
        head, _, body = read_responses(sock, 1).partition(b"\r\n\r\n")
        sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")  # same connection: kept
        assert read_responses(sock, 1).startswith(b"HTTP/1.1 200 ")  # probes: their reserve
    assert head.startswith(b"HTTP/1.1 503 ")
    for line in (b"content-type: application/problem+json", b"retry-after: 1",
                 b"x-request-id: r-1"):  # fmt: skip
        assert line in head.lower().split(b"\r\n"), head
    problem = json.loads(body)
    assert problem["type"] == "/problems/over-capacity" and problem["request_id"] == "r-1"
    assert "2 requests are in flight" in problem["detail"]
    assert counts.refused["concurrency"] == 1


def test_the_admission_metrics_have_stable_names_and_every_reason(served) -> None:
    port, counts, app = served
    registry = app.metrics.registry
    for reason in REFUSAL_REASONS:
        assert registry.get_sample_value("vibe_http_refused_total", {"reason": reason}) == 0
    for reason in IDLE_CLOSE_REASONS:
        assert registry.get_sample_value("vibe_http_idle_closed_total", {"reason": reason}) == 0
    for kind in ("request", "probe", "stream"):
        assert registry.get_sample_value("vibe_http_in_flight", {"kind": kind}) == 0
    with socket.create_connection(("127.0.0.1", port), timeout=10):
        wait_until(lambda: counts.open_connections == 1, 5, "the connection to be counted")
        assert registry.get_sample_value("vibe_http_connections", {"state": "idle"}) == 1
        assert registry.get_sample_value("vibe_http_connections", {"state": "busy"}) == 0
        assert registry.get_sample_value("vibe_http_clients") == 1


def test_uvicorn_config_refuses_the_old_max_concurrency_rather_than_ignore_it() -> None:
    with pytest.raises(TypeError, match="admission"):
        uvicorn_config(object(), "127.0.0.1", 0, max_concurrency=10)
