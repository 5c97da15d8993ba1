"""The gateway as a process: SIGTERM drains in-flight requests and exits 0."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def gateway_process():
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.gateway.serve_app", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: healthy(url) or process.poll() is not None, 20, "the gateway to start")
        assert process.poll() is None, process.stderr.read().decode()
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def test_sigterm_drains_in_flight_requests_then_exits_zero(gateway_process, tmp_path):
    process, url = gateway_process
    marker = tmp_path / "napping"
    result: dict[str, httpx.Response] = {}

    def slow_request() -> None:
        body = {"ms": 700, "marker": str(marker)}
        result["r"] = httpx.post(f"{url}/v1/agents/w/Nap", json=body, timeout=10)

    client = threading.Thread(target=slow_request)
    client.start()
    wait_until(marker.exists, 10, "the slow request to reach its handler")
    process.send_signal(signal.SIGTERM)
    client.join(10)
    assert result["r"].status_code == 200  # the in-flight request completed
    assert result["r"].json() == {"type": "Total", "total": 700}
    assert process.wait(15) == 0
    with pytest.raises(httpx.ConnectError):  # and nothing listens any more
        httpx.get(f"{url}/healthz", timeout=1)
    logs = process.stderr.read().decode()
    assert '"event": "gateway_stopped"' in logs and '"clean": true' in logs


def test_sigint_also_drains_and_exits_zero(gateway_process):
    process, url = gateway_process
    assert httpx.post(f"{url}/v1/agents/w/Ping", json={}).status_code == 200
    process.send_signal(signal.SIGINT)
    assert process.wait(15) == 0
