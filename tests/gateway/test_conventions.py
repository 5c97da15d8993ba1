"""HTTP and uvicorn conventions: uvicorn's flag names, /livez, HEAD in Allow, RFC 9110 phrases,
a root path, a Unix socket and TLS."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway import AppSettings, GatewayServer, SettingsError, create_app, parse_settings
from gateway import uvicorn_config as make_config
from gateway._problems import REASON_PHRASES, STATUS_TITLES
from vibe_actors import SupervisorSpec

from tests.conftest import worker


def tree():
    return SupervisorSpec(name="root", children=(worker("w"),))


@contextmanager
def served(system: Any, **options: Any) -> Iterator[GatewayServer]:
    app = create_app(system, AppSettings(max_body_bytes=64))
    server = GatewayServer(make_config(app, "127.0.0.1", 0, drain_timeout=5, **options))
    thread = threading.Thread(target=server.run, name="test-gateway", daemon=True)
    thread.start()
    try:
        assert server.started_event.wait(10), "the gateway did not start"
        yield server
    finally:
        server.should_exit = True
        thread.join(10)


def port_of(server: GatewayServer) -> int:
    return int(server.servers[0].sockets[0].getsockname()[1])


# -- flags --------------------------------------------------------------------------------

#: uvicorn's flag -> (the gateway's own, kept as an alias; its field; a value)
UVICORN_NAMES = {
    "--timeout-keep-alive": ("--keep-alive-timeout", "keep_alive_timeout", 9),
    "--limit-concurrency": ("--max-concurrency", "max_concurrency", 100),
    "--timeout-graceful-shutdown": ("--drain-timeout", "drain_timeout", 12.5),
}


@pytest.mark.parametrize("flag", list(UVICORN_NAMES))
def test_uvicorns_flag_names_and_the_gateways_own_set_the_same_setting(flag: str) -> None:
    alias, field, value = UVICORN_NAMES[flag]
    assert getattr(parse_settings([flag, str(value)], {}), field) == value
    assert getattr(parse_settings([alias, str(value)], {}), field) == value
    with pytest.raises(SettingsError) as caught:
        parse_settings([flag, "soon"], {})
    (problem,) = caught.value.problems
    assert problem.startswith(f"{flag} / {alias} / VIBE_{field.upper()}: Expected ")


def test_uvicorns_serving_flags_reach_uvicorn(tmp_path: Path) -> None:
    settings = parse_settings(
        ["--root-path", "/api", "--proxy-headers", "--forwarded-allow-ips", "10.0.0.1",
         "--uds", str(tmp_path / "gw.sock")],
        {},
    )  # fmt: skip
    assert settings.uvicorn_options() == {
        "root_path": "/api",
        "proxy_headers": True,
        "forwarded_allow_ips": "10.0.0.1",
        "uds": str(tmp_path / "gw.sock"),
        "ssl_keyfile": None,
        "ssl_certfile": None,
    }
    config = make_config(object(), "127.0.0.1", 0, **settings.uvicorn_options())
    assert (config.root_path, config.proxy_headers, config.uds) == (
        "/api",
        True,
        str(tmp_path / "gw.sock"),
    )
    from_env = parse_settings([], {"VIBE_PROXY_HEADERS": "yes", "VIBE_ROOT_PATH": "/x"})
    assert (from_env.proxy_headers, from_env.root_path) == (True, "/x")
    assert parse_settings([], {}).uvicorn_options()["proxy_headers"] is False  # no proxy trusted


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--root-path", "api"], "--root-path / VIBE_ROOT_PATH: must start with /"),
        (["--root-path", "/api/"], "--root-path / VIBE_ROOT_PATH: must start with /"),
        (["--ssl-keyfile", "/k.pem"], "--ssl-keyfile / VIBE_SSL_KEYFILE and --ssl-certfile"),
        (
            ["--ssl-keyfile", "/no/k.pem", "--ssl-certfile", "/no/c.pem"],
            "--ssl-keyfile / VIBE_SSL_KEYFILE: cannot read '/no/k.pem'",
        ),
    ],
)
def test_a_bad_serving_flag_is_one_line_naming_it(argv: list[str], problem: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings(argv, {})
    assert len(caught.value.problems) == 1 and caught.value.problems[0].startswith(problem)


def test_help_lists_uvicorns_names_first(capsys) -> None:
    with pytest.raises(SystemExit):
        parse_settings(["--help"], {})
    text = capsys.readouterr().out
    for flag, (alias, _, _) in UVICORN_NAMES.items():
        assert f"{flag} " in text and f"{alias} " in text
    for flag in ("--root-path", "--proxy-headers", "--forwarded-allow-ips", "--uds",
                 "--ssl-keyfile", "--ssl-certfile", "--access-log", "--no-access-log"):  # fmt: skip
        assert flag in text


# -- routes and status lines --------------------------------------------------------------


def test_livez_answers_as_healthz_and_is_documented(gateway) -> None:
    _, client = gateway(tree())
    live, health = client.get("/livez"), client.get("/healthz")
    assert live.status_code == health.status_code == 200
    assert live.json() == health.json() == {"status": "ok"}
    document = client.get("/v1/openapi.json").json()
    assert document["paths"]["/livez"]["get"]["responses"]["200"]
    assert client.head("/livez").status_code == 200


def test_a_405_allows_head_where_a_get_serves_it(gateway) -> None:
    _, client = gateway(tree())
    refused = client.post("/healthz")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"
    both = client.put("/v1/agents/w")  # GET and DELETE
    assert both.headers["allow"] == "GET, HEAD, DELETE"
    post_only = client.get("/v1/agents/w/Add")
    assert post_only.status_code == 405 and post_only.headers["allow"] == "POST"
    assert client.head("/v1/agents/w/Add").headers["allow"] == "POST"


def raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return sock.recv(65536)


def test_status_lines_and_titles_use_rfc_9110_reason_phrases(make_system) -> None:
    assert REASON_PHRASES[413] == "Content Too Large"
    assert REASON_PHRASES[422] == "Unprocessable Content"
    assert all(STATUS_TITLES[s] == REASON_PHRASES[s] for s in STATUS_TITLES)
    assert REASON_PHRASES[404] == HTTPStatus(404).phrase  # the rest are Python's
    with served(make_system(tree())) as server:
        port = port_of(server)
        big = b'{"n": 1' + b" " * 100 + b"}"
        head = b"POST /v1/agents/w/Add HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        too_large = raw(port, head + b"Content-Length: %d\r\n\r\n" % len(big) + big)
        assert too_large.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
        invalid = raw(port, head + b'Content-Length: 10\r\n\r\n{"n": "x"}')
        assert invalid.startswith(b"HTTP/1.1 422 Unprocessable Content\r\n")


# -- where it listens ---------------------------------------------------------------------


def test_a_root_path_is_taken_off_and_probes_stay_probes(make_system) -> None:
    with served(make_system(tree()), root_path="/api") as server:
        url = f"http://127.0.0.1:{port_of(server)}"
        assert httpx.get(f"{url}/livez").json() == {"status": "ok"}
        assert httpx.post(f"{url}/v1/agents/w/Add", json={"n": 3}).json()["total"] == 3
        document = httpx.get(f"{url}/v1/openapi.json").json()
        assert document["servers"] == [{"url": "/api"}]
        metrics = httpx.get(f"{url}/metrics").text
    assert 'vibe_http_requests_total{method="GET",route="/livez",status="200"} 1.0' in metrics


def test_a_unix_socket(make_system, tmp_path: Path) -> None:
    path = str(tmp_path / "gateway.sock")
    with served(make_system(tree()), uds=path):
        transport = httpx.HTTPTransport(uds=path)
        with httpx.Client(transport=transport, base_url="http://gateway") as client:
            assert client.get("/readyz").status_code == 200
            assert client.post("/v1/agents/w/Add", json={"n": 4}).json()["total"] == 4


def test_tls_with_a_key_and_certificate(make_system, tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    settings = parse_settings(["--ssl-keyfile", str(key), "--ssl-certfile", str(cert)], {})
    options = settings.uvicorn_options()
    with served(make_system(tree()), **options) as server:
        context = ssl.create_default_context(cafile=str(cert))
        url = f"https://127.0.0.1:{port_of(server)}"
        with httpx.Client(verify=context) as client:
            assert client.get(f"{url}/healthz").json() == {"status": "ok"}
        with pytest.raises(httpx.TransportError):  # plain HTTP is not served
            httpx.get(f"http://127.0.0.1:{port_of(server)}/healthz", timeout=5)
