"""The gateway as a process: SIGTERM drains in-flight requests and exits 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_until
from tests.gateway.logs import events, problems

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


def run_gateway(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=30, env=env,
    )  # fmt: skip


BAD_SETTINGS = [
    "--port / VIBE_PORT: Expected `int`, got `str` (got 'eighty')",
    "--log-format / VIBE_LOG_FORMAT: Invalid enum value 'xml' (got 'xml')",
    "VIBE_TOKENS: entry 1 is not 'principal:token'",
]


def test_bad_settings_exit_2_with_one_json_line_per_problem():
    # An invalid format is no format: the problems are in the default one (json).
    env = {**os.environ, "VIBE_PORT": "eighty", "VIBE_TOKENS": "alice-without-colon"}
    result = run_gateway("--log-format", "xml", env=env)
    assert result.returncode == 2
    assert problems(result.stderr, "invalid_settings") == BAD_SETTINGS
    assert "alice-without-colon" not in result.stderr


def test_bad_settings_in_the_console_format_are_gateway_lines():
    env = {**os.environ, "VIBE_PORT": "eighty", "VIBE_TOKENS": "alice-without-colon"}
    result = run_gateway("--log-format", "console", "--log-level", "loud", env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "gateway: --port / VIBE_PORT: Expected `int`, got `str` (got 'eighty')",
        "gateway: --log-level / VIBE_LOG_LEVEL: Invalid enum value 'loud' (got 'loud')",
        "gateway: VIBE_TOKENS: entry 1 is not 'principal:token'",
    ]


def test_a_usage_error_is_a_json_problem_too():
    result = run_gateway("--no-such-flag")
    assert result.returncode == 2
    (problem,) = problems(result.stderr, "invalid_settings")
    assert problem.startswith("unrecognized arguments: --no-such-flag")


def test_an_invalid_wiring_exits_1_naming_file_and_line_in_json(tmp_path):
    bad = ROOT / "tests/phoenix/wirings/bad_enum.yaml"
    result = run_gateway("--wiring", str(bad), "--data-dir", str(tmp_path))
    assert result.returncode == 1
    found = problems(result.stderr, "invalid_wiring")  # and every line is JSON
    assert any(p.startswith(f"{bad}:7:16: $.root.children[0].restart: expected") for p in found)
    assert "Traceback" not in result.stderr


def test_an_uncaught_exception_is_one_json_line_with_its_traceback(tmp_path):
    # A bug that escapes main(): the process's excepthook logs it (in JSON) and it exits 1.
    code = (
        "import gateway._main as m, sys\n"
        "def boom(settings): raise RuntimeError('a bug')\n"
        "m.boot = boom\n"
        "sys.exit(m.main(['--data-dir', sys.argv[1]]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    (crash,) = [e for e in events(result.stderr) if e["event"] == "uncaught_exception"]
    assert crash["level"] == "critical" and "RuntimeError: a bug" in crash["exception"]


SYSTEM_AGENTS = {
    "policy", "quota", "ledger", "state", "audit", "registry", "pubsub", "webhooks",
    "scheduler", "jobs", "introspect", "schema", "watchdog",
}  # fmt: skip


def test_the_shipped_wiring_serves_all_13_system_agents(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--port", str(port), "--data-dir", str(tmp_path),
         "--gc-threshold", "2500"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: healthy(url) or process.poll() is not None, 20, "the gateway")
        assert httpx.get(f"{url}/readyz").json() == {"status": "ready"}
        names = {a["name"] for a in httpx.get(f"{url}/v1/agents").json()}
        assert names >= SYSTEM_AGENTS
        for name in SYSTEM_AGENTS:  # every one of them answers through HTTP
            pong = httpx.post(f"{url}/v1/agents/{name}/Ping", json={})
            assert pong.json() == {"type": "Pong", "agent": name, "incarnation": 1}
    finally:
        process.send_signal(signal.SIGTERM)
        _, logs = process.communicate(timeout=15)
    assert process.returncode == 0
    logged = events(logs)  # every line is JSON (the default format), uvicorn's included
    starting = [e for e in logged if e["event"] == "gateway_starting"]
    assert [e["gc_threshold"] for e in starting] == [2500]  # process tuning, at the edge
    assert starting[0]["access_log"] is True  # on by default with the json format
    pings = [e for e in logged if e["logger"] == "gateway.access" and e["method"] == "POST"]
    assert len(pings) == len(SYSTEM_AGENTS) and {e["status"] for e in pings} == {200}


def test_sighup_reloads_the_wiring_restarting_only_what_changed(tmp_path):
    wiring = tmp_path / "wiring.yaml"
    agent = "tests.vibe_actors.agents:Worker"
    tree = "version: 1\nroot:\n  name: root\n  children:\n"
    wiring.write_text(tree + f"    - name: keep\n      agent: {agent}\n")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--port", str(port), "--wiring", str(wiring),
         "--data-dir", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: healthy(url) or process.poll() is not None, 20, "the gateway")
        assert httpx.post(f"{url}/v1/agents/keep/Add", json={"n": 41}).status_code == 200
        wiring.write_text(
            tree
            + f"    - name: keep\n      agent: {agent}\n    - name: added\n      agent: {agent}\n"
        )
        process.send_signal(signal.SIGHUP)

        def added() -> bool:
            return httpx.post(f"{url}/v1/agents/added/Ping", json={}).status_code == 200

        wait_until(added, 10, "the reload to add an agent")
        kept = httpx.post(f"{url}/v1/agents/keep/Add", json={"n": 1}).json()
        assert kept == {"type": "Total", "total": 42}  # unchanged agent kept its state
        wiring.write_text("version: 1\nroot: [\n")  # broken: the reload is refused
        process.send_signal(signal.SIGHUP)

        def failed_reload_counted() -> bool:
            return 'vibe_reloads_total{outcome="failed"} 1.0' in httpx.get(f"{url}/metrics").text

        wait_until(failed_reload_counted, 10, "the failed reload")
        assert 'vibe_reloads_total{outcome="ok"} 1.0' in httpx.get(f"{url}/metrics").text
        assert httpx.post(f"{url}/v1/agents/added/Ping", json={}).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    assert "reload_failed" in process.stderr.read().decode()
