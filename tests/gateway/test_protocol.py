"""The header-read timeout and header size limit (gateway._protocol) on a real server.

A real uvicorn in a thread with short limits (0.5 s, 4 KiB), driven by raw
sockets so each test controls exactly which bytes arrive and when.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from gateway import AppSettings, GatewayServer, create_app, uvicorn_config
from gateway._protocol import GatewayHttpProtocol, header_limited
from gateway._settings import SettingsError
from gateway._settings_cli import parse_settings
from vibe_actors import SupervisorSpec, WorkerSpec

from tests.conftest import worker
from tests.vibe_actors.agents import Napper

TIMEOUT = 0.5
BODY_TIMEOUT = 1.0
LIMIT = 4096
GET = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
CUT_OFF: list = []  # the running app's HttpMetrics


def cut_off(reason: str) -> float:
    """vibe_http_cut_off_total{reason} of the running app."""
    value = CUT_OFF[0].registry.get_sample_value("vibe_http_cut_off_total", {"reason": reason})
    return value or 0.0


@pytest.fixture
def port(make_system) -> Iterator[int]:
    system = make_system(
        SupervisorSpec(name="root", children=(worker("w"), WorkerSpec(name="napper", agent=Napper)))
    )
    app = create_app(system, AppSettings())
    config = uvicorn_config(
        app, "127.0.0.1", 0, drain_timeout=5, header_timeout=TIMEOUT, max_header_bytes=LIMIT,
        body_timeout=BODY_TIMEOUT, keep_alive_timeout=30, on_cut_off=app.metrics.cut_off,  # longer than the header timeout: that one must close first
    )  # fmt: skip
    server = GatewayServer(config)
    thread = threading.Thread(target=server.run, name="test-gateway", daemon=True)
    thread.start()
    try:
        assert server.started_event.wait(10), "the gateway did not start"
        CUT_OFF.clear()
        CUT_OFF.append(app.metrics)
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def read_until_closed(sock: socket.socket, within: float = 10.0) -> tuple[bytes, float | None]:
    """(everything received, seconds until the server closed) — None if it did not."""
    started = time.monotonic()
    data = b""
    while time.monotonic() - started < within:
        sock.settimeout(max(0.01, within - (time.monotonic() - started)))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return data, time.monotonic() - started
        if not chunk:
            return data, time.monotonic() - started
        data += chunk
    return data, None


def one_response(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"}"):
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return data


def test_a_silent_connection_is_closed_after_the_header_timeout(port: int) -> None:
    with connect(port) as sock:
        data, closed = read_until_closed(sock, 5)
    assert data == b"" and closed is not None
    assert TIMEOUT * 0.8 < closed < TIMEOUT + 2, closed


def test_partial_headers_get_a_408_problem_and_a_close(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
        data, closed = read_until_closed(sock, 5)
    assert closed is not None and closed < TIMEOUT + 2
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert b"application/problem+json" in data and b"/problems/header-timeout" in data
    assert b"connection: close" in data
    assert cut_off("header_timeout") == 1


def test_trickled_header_bytes_do_not_extend_the_timeout(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        closed = None
        while time.monotonic() - started < 5:
            try:
                sock.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                closed = time.monotonic() - started
                break
            time.sleep(0.05)
    assert closed is not None and closed < TIMEOUT + 2, closed


def test_complete_headers_stop_the_timeout_and_keep_alive_rearms_it(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(GET)
        assert one_response(sock).startswith(b"HTTP/1.1 200 ")
        time.sleep(TIMEOUT / 2)
        sock.sendall(GET)  # within the timeout after the first response: served
        assert one_response(sock).startswith(b"HTTP/1.1 200 ")
        # Then idle: closed by the header timeout (armed at the response's end), well
        # before the 30 s keep-alive timeout.
        data, closed = read_until_closed(sock, 5)
    assert data == b"" and closed is not None and closed < TIMEOUT + 2, closed


def post_head(length: int) -> bytes:
    return (
        b"POST /v1/agents/w/Echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % length
    )


def test_a_body_that_stops_arriving_is_cut_off_after_the_body_timeout(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(post_head(100) + b'{"text": "half')  # the rest never comes
        data, closed = read_until_closed(sock, 10)
    assert data == b"" and closed is not None, (data, closed)
    assert BODY_TIMEOUT * 0.8 < closed < BODY_TIMEOUT + 3, closed
    assert cut_off("body_timeout") == 1 and cut_off("header_timeout") == 0


def test_a_body_arriving_in_pieces_within_the_timeout_is_served(port: int) -> None:
    body = b'{"text": "in pieces"}'
    with connect(port) as sock:
        sock.sendall(post_head(len(body)) + body[:5])
        time.sleep(BODY_TIMEOUT / 4)
        sock.sendall(body[5:])
        response = one_response(sock)
    assert response.startswith(b"HTTP/1.1 200 ") and b"in pieces" in response


def test_a_slow_ask_is_not_cut_by_the_header_timeout(port: int) -> None:
    body = b'{"ms": %d}' % (TIMEOUT * 3000)  # three header timeouts in the handler
    with connect(port) as sock:
        sock.sendall(
            b"POST /v1/agents/napper/Nap HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        assert one_response(sock).startswith(b"HTTP/1.1 200 "), "cut by the header timeout"


def test_headers_over_the_limit_are_a_431_problem_and_a_close(port: int) -> None:
    big = b"X-Big: " + b"a" * (4 * LIMIT) + b"\r\n"
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
        data, closed = read_until_closed(sock, 5)
    assert data.startswith(b"HTTP/1.1 431 "), data[:200]
    assert b"/problems/headers-too-large" in data and closed is not None
    assert cut_off("headers_too_large") == 1


def test_many_small_headers_over_the_limit_are_a_431(port: int) -> None:
    many = b"".join(b"X-H%04d: v\r\n" % i for i in range(400))  # 12 bytes each: 4800 in all
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for start in range(0, len(many), 1200):  # the limit passes in the last piece
            sock.sendall(many[start : start + 1200])
            time.sleep(0.02)
        data, _ = read_until_closed(sock, 5)
    assert data.startswith(b"HTTP/1.1 431 "), data[:200]


def test_headers_just_within_the_limit_and_a_body_in_the_same_write_are_served(port: int) -> None:
    body = b'{"text": "' + b"b" * (2 * LIMIT) + b'"}'  # the body is not counted as headers
    head = (
        b"POST /v1/agents/w/Echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n" % len(body)
    )
    pad = b"X-Pad: " + b"p" * (LIMIT - len(head) - len(b"X-Pad: \r\n\r\n")) + b"\r\n\r\n"
    request = head + pad + body
    assert len(head + pad) == LIMIT
    with connect(port) as sock:
        sock.sendall(request)
        assert one_response(sock).startswith(b"HTTP/1.1 200 ")
        sock.sendall(request)  # the count restarts for the next request on the connection
        assert one_response(sock).startswith(b"HTTP/1.1 200 ")


def test_pipelined_requests_are_all_served(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(GET * 3)
        data = b""
        while data.count(b"HTTP/1.1 200 ") < 3:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk


def test_header_limited_makes_a_configured_subclass() -> None:
    configured = header_limited(2.5, 1024, 7.0)
    assert configured.body_timeout == 7.0
    assert issubclass(configured, GatewayHttpProtocol)
    assert (configured.header_timeout, configured.max_header_bytes) == (2.5, 1024)
    assert GatewayHttpProtocol.header_timeout == 10.0  # the base keeps its defaults
    with pytest.raises(ValueError):
        header_limited(0, 1024)


def test_the_limits_are_settings_with_flags_and_variables() -> None:
    settings = parse_settings(["--header-timeout", "2.5"], {"VIBE_MAX_HEADER_BYTES": "8192"})
    assert (settings.header_timeout, settings.max_header_bytes) == (2.5, 8192)
    defaults = parse_settings([], {})
    assert (defaults.header_timeout, defaults.max_header_bytes) == (10.0, 65_536)
    with pytest.raises(SettingsError, match="header_timeout must be > 0"):
        parse_settings(["--header-timeout", "0"], {})
