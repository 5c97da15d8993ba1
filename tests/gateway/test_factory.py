"""``uvicorn gateway:app_factory --factory``: uvicorn's own command line serves every agent,
the system started and stopped by the ASGI lifespan."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import gateway._factory
from gateway import FactoryApp, GatewaySettings, SettingsError, app_factory

from tests.conftest import wait_until
from tests.gateway.logs import events, problems
from tests.gateway.test_process import ROOT, free_port, healthy

WIRING = """version: 1
root:
  name: root
  children:
    - name: w
      agent: tests.vibe_actors.agents:Worker
"""


def uvicorn(tmp_path: Path, wiring: str, port: int) -> subprocess.Popen[bytes]:
    path = tmp_path / "wiring.yaml"
    path.write_text(wiring)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIBE_")}
    env.update(VIBE_WIRING=str(path), VIBE_DATA_DIR=str(tmp_path / "var"), VIBE_DRAIN_TIMEOUT="10")
    log = (tmp_path / "uvicorn.log").open("wb")  # a file, not a pipe: it cannot fill up
    with log:
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "gateway:app_factory", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--timeout-graceful-shutdown", "5"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip


def test_uvicorn_factory_serves_the_wiring_and_sigterm_stops_the_system(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = uvicorn(tmp_path, WIRING, port)
    try:
        wait_until(lambda: healthy(url) or process.poll() is not None, 30, "uvicorn to serve")
        assert process.poll() is None, (tmp_path / "uvicorn.log").read_text()
        assert httpx.get(f"{url}/readyz").json() == {"status": "ready"}
        reply = httpx.post(f"{url}/v1/agents/w/Add", json={"n": 5}, headers={"x-request-id": "f1"})
        assert reply.json() == {"type": "Total", "total": 5}
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    # uvicorn ends by re-raising the SIGTERM it handled, after its graceful shutdown.
    assert code in (0, -signal.SIGTERM), code
    logged = events((tmp_path / "uvicorn.log").read_bytes())  # every line is JSON, uvicorn's too
    names = [e["event"] for e in logged]
    assert names.index("gateway_started") < names.index("system_stopped")
    (stopped,) = [e for e in logged if e["event"] == "system_stopped"]  # the runtime's
    (gateway_stopped,) = [e for e in logged if e["event"] == "gateway_stopped"]
    assert stopped["clean"] is True and gateway_stopped["clean"] is True
    assert any(e["logger"].startswith("uvicorn") for e in logged)  # uvicorn's lines, as JSON
    (ask,) = [e for e in logged if e.get("request_id") == "f1" and e["logger"] == "gateway.access"]
    assert (ask["route"], ask["status"]) == ("/v1/agents/{name}/{type}", 200)
    assert not [e for e in logged if e["level"] in ("error", "critical")], logged


def test_a_bad_wiring_fails_the_startup_in_json(tmp_path):
    process = uvicorn(tmp_path, "version: 1\nroot: [\n", free_port())
    code = process.wait(30)
    assert code != 0
    text = (tmp_path / "uvicorn.log").read_bytes()
    assert problems(text, "invalid_wiring"), text  # every line is JSON
    assert b"Traceback" not in text


def test_requests_before_the_lifespan_started_the_system_are_503_problems():
    app = FactoryApp(GatewaySettings())
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/readyz", "headers": []}
    asyncio.run(app(scope, receive, send))
    start, body = sent
    assert start["status"] == 503
    assert (b"content-type", b"application/problem+json") in start["headers"]
    assert b'"type":"/problems/not-started"' in body["body"]


def test_the_factory_reads_vibe_variables_only(monkeypatch):
    reported = []
    monkeypatch.setattr(  # not the test process's logging: record what would be logged
        gateway._factory, "report_problems", lambda *args: reported.append(args)
    )
    monkeypatch.setattr(sys, "argv", ["uvicorn", "--port", "1", "--no-such-gateway-flag"])
    monkeypatch.setenv("VIBE_PORT", "eighty")
    with pytest.raises(SettingsError) as caught:
        app_factory()
    problem = "--port / VIBE_PORT: Expected `int`, got `str` (got 'eighty')"
    assert caught.value.problems == [problem]
    assert reported == [("invalid_settings", [problem], "json")]


def test_vibe_otel_configures_tracing_and_its_provider_is_shut_down_last(monkeypatch):
    from opentelemetry import trace

    from vibe_actors import tracing

    monkeypatch.setattr(gateway._factory, "configure_logging", lambda *args: None)
    monkeypatch.setattr(trace, "set_tracer_provider", lambda provider: None)  # no global change
    monkeypatch.setenv("VIBE_OTEL", "1")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    app = app_factory()
    try:
        assert app.tracer_provider is not None and tracing.enabled()
    finally:
        tracing.disable()
    provider, shut = app.tracer_provider, []
    real_shutdown = provider.shutdown
    monkeypatch.setattr(provider, "shutdown", lambda: shut.append(real_shutdown()))
    app._stop()  # no system was started: only the provider to shut down
    assert shut == [None]


def test_gunicorns_uvicorn_worker_serves_the_factory_and_sigterm_drains(tmp_path):
    """``gunicorn 'gateway:app_factory()' -k uvicorn_worker.UvicornWorker``: as users run
    Starlette apps; the worker's lifespan starts and stops the system."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    path = tmp_path / "wiring.yaml"
    path.write_text(WIRING)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIBE_")}
    env.update(VIBE_WIRING=str(path), VIBE_DATA_DIR=str(tmp_path / "var"), VIBE_DRAIN_TIMEOUT="10")
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "gateway:app_factory()",
             "-k", "uvicorn_worker.UvicornWorker", "-w", "1", "-b", f"127.0.0.1:{port}",
             "--graceful-timeout", "15"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        wait_until(lambda: healthy(url) or process.poll() is not None, 30, "gunicorn to serve")
        assert process.poll() is None, log_path.read_text()
        assert httpx.get(f"{url}/readyz").json() == {"status": "ready"}
        reply = httpx.post(f"{url}/v1/agents/w/Add", json={"n": 5})
        assert reply.json() == {"type": "Total", "total": 5}
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    assert code == 0, log_path.read_text()
    # gunicorn's own lines are its format; the gateway's (and the worker's uvicorn's) JSON.
    lines = [line for line in log_path.read_text().splitlines() if line.startswith("{")]
    logged = events("\n".join(lines))
    names = [e["event"] for e in logged]
    assert names.index("gateway_started") < names.index("system_stopped")
    (stopped,) = [e for e in logged if e["event"] == "system_stopped"]
    assert stopped["clean"] is True
