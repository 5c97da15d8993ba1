"""The access log: one line per request; every line JSON in the json format."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading

import pytest
import structlog

import gateway._logging
from gateway import GatewaySettings, parse_settings
from gateway._access import AccessLog
from gateway._logging import configure_logging
from vibe_actors import SupervisorSpec

from tests.conftest import worker
from tests.gateway.conftest import serving
from tests.gateway.logs import events


@pytest.fixture
def json_logs(monkeypatch):
    """The process's logging as ``python -m gateway --log-format json`` configures it, into
    a buffer; everything configured is put back after the test."""
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", line_buffering=True)
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, structlog.get_config(), sys.excepthook)
    saved_thread_hook = threading.excepthook
    uvicorn_access = logging.getLogger("uvicorn.access")
    saved_access = (uvicorn_access.handlers[:], uvicorn_access.propagate)
    configure_logging("info", "json")
    # Loggers first used now must not keep this configuration for the rest of the session.
    structlog.configure(cache_logger_on_first_use=False)
    # Loggers first used now must not keep this configuration for the rest of the session.
    structlog.configure(cache_logger_on_first_use=False)

    def lines() -> list[dict]:
        stream.flush()
        return events(stream.buffer.getvalue())

    try:
        yield lines
    finally:
        root.handlers[:], level, config, sys.excepthook = saved
        root.setLevel(level)
        structlog.configure(**config)
        threading.excepthook = saved_thread_hook
        uvicorn_access.handlers[:], uvicorn_access.propagate = saved_access
        logging.captureWarnings(False)
        monkeypatch.setattr(gateway._logging, "_json_lines", None)


def tree():
    return SupervisorSpec(name="root", children=(worker("w"),))


def access_lines(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["logger"] == "gateway.access"]


def test_one_json_line_per_request_with_its_figures(json_logs, make_system):
    system = make_system(tree())
    tokens = {"alice": "secret-token"}
    with serving(system, access_log=True, tokens=tokens) as client:
        auth = {"authorization": "Bearer secret-token", "x-request-id": "req-1"}
        assert client.post("/v1/agents/w/Add", json={"n": 2}, headers=auth).status_code == 200
        assert client.get("/v1/no/such/route/here", headers=auth).status_code == 404
        assert client.post("/v1/agents/w/Add", json={"n": 2}).status_code == 401
        assert client.get("/healthz").status_code == 200
        port = client.get("/livez").request.url.port
        assert port
    logged = access_lines(json_logs())
    ask, missing, unauthorized, health, live = logged
    assert ask["event"] == "request" and ask["level"] == "info"
    assert ask["timestamp"].endswith("Z") and ask["timestamp"][10] == "T"
    assert {k: ask[k] for k in ("method", "route", "status", "request_id", "principal")} == {
        "method": "POST",
        "route": "/v1/agents/{name}/{type}",  # the template: no path value is logged
        "status": 200,
        "request_id": "req-1",
        "principal": "alice",
    }
    assert 0 < ask["duration_ms"] < 10_000
    assert ask["client"] == "127.0.0.1" and ask["client_port"] > 0
    assert (missing["route"], missing["status"], missing["principal"]) == ("unmatched", 404, None)
    assert (unauthorized["status"], unauthorized["principal"]) == (401, None)
    assert (health["route"], live["route"]) == ("/healthz", "/livez")
    assert "secret-token" not in json.dumps(logged)


def test_every_line_is_json_with_the_same_keys_as_other_events(json_logs, make_system):
    system = make_system(tree())
    with serving(system, access_log=True) as client:
        client.post("/v1/agents/w/Add", json={"n": 1})
    lines = json_logs()  # events() asserts that every line is one JSON object
    other = [line for line in lines if line["logger"] != "gateway.access"]
    assert other, "the system's own events are in the same stream"
    (access,) = access_lines(lines)
    for line in (access, *other):
        assert {"event", "level", "logger", "timestamp"} <= line.keys()


def test_no_access_log_unless_asked(json_logs, make_system):
    system = make_system(tree())
    with serving(system) as client:  # AppSettings.access_log is off for an embedder
        client.post("/v1/agents/w/Add", json={"n": 1})
        assert client.app.access is None
    assert access_lines(json_logs()) == []


def test_python_warnings_and_uncaught_exceptions_are_json_lines(json_logs):
    import warnings

    warnings.warn("a library's warning", DeprecationWarning, stacklevel=1)
    thread = threading.Thread(target=lambda: 1 / 0, name="doomed")
    thread.start()
    thread.join(5)
    lines = json_logs()
    assert any("a library's warning" in line["event"] for line in lines), lines
    (crash,) = [line for line in lines if line["event"] == "uncaught_exception"]
    assert crash["thread"] == "doomed" and "ZeroDivisionError" in crash["exception"]


def test_the_console_path_emits_structlog_events():
    log = AccessLog(None)  # no JSON sink: the console format, or an embedder's own logging
    with structlog.testing.capture_logs() as captured:
        log.record("GET", "/healthz", 200, 0.0012345, "rid", None, ("10.0.0.1", 5555))
    assert captured == [
        {
            "event": "request",
            "log_level": "info",
            "method": "GET",
            "route": "/healthz",
            "status": 200,
            "duration_ms": 1.234,
            "request_id": "rid",
            "principal": None,
            "client": "10.0.0.1",
            "client_port": 5555,
        }
    ]


def test_the_access_log_is_on_with_json_off_with_console_and_settable() -> None:
    assert parse_settings([], {}).app_settings().access_log is True
    assert parse_settings(["--log-format", "console"], {}).app_settings().access_log is False
    console_on = parse_settings(["--log-format", "console", "--access-log"], {})
    assert console_on.app_settings().access_log is True
    assert parse_settings(["--no-access-log"], {}).app_settings().access_log is False
    assert parse_settings([], {"VIBE_ACCESS_LOG": "off"}).access_log_on() is False
    assert parse_settings(["--access-log"], {"VIBE_ACCESS_LOG": "0"}).access_log_on() is True
    assert GatewaySettings(log_format="console", access_log=True).access_log_on() is True


def test_a_bad_access_log_variable_names_it() -> None:
    from gateway import SettingsError

    with pytest.raises(SettingsError) as caught:
        parse_settings([], {"VIBE_ACCESS_LOG": "sometimes"})
    assert caught.value.problems == [
        "--access-log / VIBE_ACCESS_LOG: expected 1/0, true/false, yes/no or on/off "
        "(got 'sometimes')"
    ]
