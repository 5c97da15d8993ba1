"""Security: authentication, secrets in logs and error bodies, the webhooks SSRF guard.

Real ``python -m gateway`` processes with VIBE_TOKENS set and JSON logs at
debug level; every assertion about logs reads the process's captured
stdout+stderr. A unit test pins the constant-time comparison (every configured
token is compared, with ``hmac.compare_digest``, whatever matches first).
"""

from __future__ import annotations

import hmac
import inspect
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from gateway import AppSettings, GatewaySettings, create_app
from gateway._app import Gateway as App
from gateway._request import Request
from vibe_actors import ActorSystem, WorkerSpec

from tests.gateway.test_process import free_port
from tests.reliability.conftest import ROOT, Gateway
from tests.vibe_actors.agents import Worker

#: The first test of the module also waits for its gateway to boot (busy CI machines).
pytestmark = pytest.mark.timeout(120)

TOKENS = {"alice": "tok-alice-7f3c9a1e5b", "bob": "tok-bob-0d4e8b2c6a"}
WRONG = ["tok-alice-7f3c9a1e5c", "tok-mallory-123456789", "tok-alice-7f3c9a1e5b-and-more"]
WIRING_SECRET = "wiring-secret-4b1d9e7a"
PROBLEM = "application/problem+json"


class SecureGateway(Gateway):
    """The conftest's gateway process, with extra environment (it strips VIBE_* otherwise)."""

    def __init__(self, tmp: Path, wiring: Path, env: dict[str, str], args: tuple[str, ...]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / "gateway.log"
        data = tmp / "data"
        data.mkdir(exist_ok=True)
        command = [sys.executable, "-m", "gateway", "--port", str(self.port)]
        command += ["--data-dir", str(data), "--wiring", str(wiring), *args]
        clean = {k: v for k, v in os.environ.items() if not k.startswith("VIBE_")}
        with open(self.log_path, "wb") as sink:
            self.process = subprocess.Popen(
                command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, env={**clean, **env}
            )
        self.pid = self.process.pid
        self.started = time.monotonic()


def secure_wiring(tmp: Path, allow: str = "[]") -> Path:
    """wiring.yaml with the webhooks allow-list and user agent (a secret) from the env."""
    text = (ROOT / "wiring.yaml").read_text()
    marker = "            allow: []"
    assert marker in text, "wiring.yaml changed: update secure_wiring()"
    replaced = f"            allow: {allow}\n            user_agent: ${{RELIABILITY_WEBHOOK_UA}}"
    path = tmp / "wiring.yaml"
    path.write_text(text.replace(marker, replaced, 1))
    return path


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureGateway]:
    tmp = tmp_path_factory.mktemp("secure")
    env = {
        "VIBE_TOKENS": ",".join(f"{p}:{t}" for p, t in TOKENS.items()),
        "VIBE_LOG_FORMAT": "json",
        "VIBE_LOG_LEVEL": "debug",
        "VIBE_CHAOS": "1",
        "RELIABILITY_WEBHOOK_UA": WIRING_SECRET,
    }
    served = SecureGateway(tmp, secure_wiring(tmp), env, ())
    try:
        served.wait_healthy()
        yield served
    finally:
        served.close()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


ALICE = bearer(TOKENS["alice"])


def assert_problem(response: httpx.Response, status: int, slug: str) -> None:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == f"/problems/{slug}"


# -- constant-time comparison -----------------------------------------------------------


async def _never() -> None:
    raise AssertionError("authentication reads no body and sends nothing")


def test_tokens_are_compared_with_compare_digest_and_no_early_exit(
    make_system: Callable[..., ActorSystem], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = inspect.getsource(App._authenticate)
    assert "hmac.compare_digest(" in source and "break" not in source and "return" in source
    system = make_system([WorkerSpec(name="w", agent=Worker)])
    tokens = {f"p{i}": f"token-{i:02d}" for i in range(5)}
    app = create_app(system, AppSettings(tokens=tokens))
    calls: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest  # the patch below replaces it in the shared hmac module

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr("gateway._app.hmac.compare_digest", counting)
    for presented, principal in [(b"token-00", "p0"), (b"token-04", "p4"), (b"nope", None)]:
        calls.clear()
        scope = {
            "method": "GET",
            "path": "/v1/agents",
            "headers": [(b"authorization", b"Bearer " + presented)],
        }
        request = Request(scope, _never, _never)
        if principal is None:
            with pytest.raises(Exception, match="bearer token"):
                app._authenticate(request)
        else:
            assert app._authenticate(request) == principal
        assert len(calls) == len(tokens), "every token is compared, whichever matches"
        assert all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in calls)


def test_settings_never_show_tokens() -> None:
    settings = GatewaySettings(tokens=TOKENS)
    app_settings = AppSettings(tokens=TOKENS)
    for text in (repr(settings), str(settings), repr(app_settings), str(app_settings)):
        assert all(token not in text for token in TOKENS.values()), text


# -- authentication over HTTP -------------------------------------------------------------

PROTECTED = [
    ("POST", "/v1/agents/state/Ping"),
    ("POST", "/v1/agents/nobody/Ping"),  # 401 before revealing whether the agent exists
    ("GET", "/v1/agents"),
    ("GET", "/v1/agents/state"),
    ("GET", "/v1/tree"),
    ("GET", "/v1/openapi.json"),
    ("GET", "/v1/topics/news/events"),
    ("POST", "/v1/chaos/state/crash"),
    ("GET", "/v1/no-such-route"),
]

BAD_CREDENTIALS = {
    "none": {},
    "empty": {"authorization": ""},
    "scheme-only": {"authorization": "Bearer"},
    "basic-scheme": {"authorization": f"Basic {TOKENS['alice']}"},
    "no-scheme": {"authorization": TOKENS["alice"]},
    "principal-as-token": bearer("alice"),
    **{f"wrong-{i}": bearer(token) for i, token in enumerate(WRONG)},
    "prefix": bearer(TOKENS["alice"][:-1]),
    "two-spaces": {"authorization": f"Bearer  {TOKENS['alice']}"},
}


@pytest.mark.parametrize("credentials", list(BAD_CREDENTIALS.values()), ids=list(BAD_CREDENTIALS))
@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
def test_without_a_valid_token_every_v1_route_is_401(
    secure: SecureGateway, method: str, path: str, credentials: dict[str, str]
) -> None:
    headers = {"content-type": "application/json", **credentials}
    response = httpx.request(method, f"{secure.url}{path}", content=b"{}", headers=headers)
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == 'Bearer realm="vibe"'
    assert all(token not in response.text for token in TOKENS.values())


@pytest.mark.parametrize("principal", list(TOKENS))
def test_a_valid_token_is_served(secure: SecureGateway, principal: str) -> None:
    headers = {"content-type": "application/json", **bearer(TOKENS[principal])}
    response = httpx.post(f"{secure.url}/v1/agents/state/Ping", content=b"{}", headers=headers)
    assert response.status_code == 200, response.text
    assert httpx.get(f"{secure.url}/v1/agents", headers=headers).status_code == 200
    scheme = {"authorization": f"bearer {TOKENS[principal]}"}  # the scheme is case-insensitive
    assert httpx.get(f"{secure.url}/v1/tree", headers=scheme).status_code == 200


def test_probes_stay_open_for_the_orchestrator(secure: SecureGateway) -> None:
    for probe in ("/healthz", "/readyz", "/metrics"):
        assert httpx.get(f"{secure.url}{probe}").status_code in (200, 503), probe


# -- secrets: never in logs, never in error bodies -------------------------------------------

SSRF_TARGETS = [
    "http://127.0.0.1:9/hook",
    "http://localhost:9/hook",
    "http://[::1]:9/hook",
    "http://[::ffff:127.0.0.1]:9/hook",
    "http://2130706433/hook",  # 127.0.0.1 as one decimal number
    "http://0.0.0.0:9/hook",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
    "http://10.0.0.1/hook",
    "http://172.16.5.4/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",  # carrier-grade NAT
    "http://[fd00::1]/hook",  # unique local
    "http://[fe80::1]/hook",  # link-local
    "https://224.0.0.1/hook",  # multicast
]
HOOK_SECRET = "hook-secret-9c2e4f6a8b"


@pytest.mark.parametrize("url", SSRF_TARGETS)
def test_webhooks_refuse_private_addresses_at_the_http_level(secure: SecureGateway, url: str):
    body = {"topic": "orders", "url": url, "secret": HOOK_SECRET}
    response = httpx.post(
        f"{secure.url}/v1/agents/webhooks/Subscribe", json=body, headers=ALICE, timeout=30
    )
    assert_problem(response, 403, "webhook-refused")
    assert "refused" in response.json()["detail"]
    assert HOOK_SECRET not in response.text


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "http://user:pass@example.com/x", "not a url", "file:///etc/passwd"],
)
def test_invalid_webhook_urls_are_422_without_echoing_the_secret(
    secure: SecureGateway, url: str
) -> None:
    body = {"topic": "orders", "url": url, "secret": HOOK_SECRET}
    response = httpx.post(f"{secure.url}/v1/agents/webhooks/Subscribe", json=body, headers=ALICE)
    assert_problem(response, 422, "invalid-webhook")
    assert HOOK_SECRET not in response.text and "pass@" not in response.text


def test_a_malformed_subscribe_does_not_echo_the_secret(secure: SecureGateway) -> None:
    for body in (
        {"topic": 5, "url": "http://10.0.0.1/", "secret": HOOK_SECRET},
        {"topic": "t", "url": "http://10.0.0.1/", "secret": HOOK_SECRET, "admin": True},
        {"topic": "t", "url": ["http://10.0.0.1/"], "secret": HOOK_SECRET},
    ):
        response = httpx.post(
            f"{secure.url}/v1/agents/webhooks/Subscribe", json=body, headers=ALICE
        )
        assert_problem(response, 422, "invalid-body")
        assert HOOK_SECRET not in response.text


def test_a_deeply_nested_body_is_a_clear_400_without_details(secure: SecureGateway) -> None:
    # Once a 500 with a traceback (msgspec's RecursionError escaped); the 500 body
    # itself is covered in-process by tests/gateway/test_input.py (a forced internal error).
    body = b'{"key": "k", "value": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    headers = {**ALICE, "content-type": "application/json"}
    response = httpx.post(f"{secure.url}/v1/agents/state/Put", content=body, headers=headers)
    assert_problem(response, 400, "malformed-json")
    assert "Traceback" not in response.text and "/work" not in response.text
    assert TOKENS["alice"] not in response.text


def test_a_wiring_secret_is_never_shown(secure: SecureGateway) -> None:
    urls = [
        "/v1/agents",
        "/v1/agents/webhooks",
        "/v1/tree",
        "/v1/openapi.json",
        "/metrics",
        "/readyz",
    ]
    for path in urls:
        response = httpx.get(f"{secure.url}{path}", headers=ALICE, timeout=30)
        assert response.status_code in (200, 503), (path, response.status_code)
        assert WIRING_SECRET not in response.text, path
    for agent, message in [
        ("introspect", "Describe"),
        ("introspect", "Agents"),
        ("schema", "Diagram"),
        ("schema", "Catalogue"),
    ]:
        body = {"name": "webhooks"} if message == "Describe" else {}
        response = httpx.post(
            f"{secure.url}/v1/agents/{agent}/{message}", json=body, headers=ALICE, timeout=30
        )
        assert response.status_code in (200, 404, 422), (agent, message, response.text[:200])
        assert WIRING_SECRET not in response.text, (agent, message)


def test_tokens_and_secrets_never_reach_the_logs(secure: SecureGateway) -> None:
    """Runs last in this module: every request above went through this process."""
    deep = b'{"key": "k", "value": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for token in [*TOKENS.values(), *WRONG]:  # a right token gets as far as a logged event
        headers = {**bearer(token), "content-type": "application/json"}
        httpx.post(f"{secure.url}/v1/chaos/schema/crash", headers=headers)  # chaos_injected
        httpx.post(f"{secure.url}/v1/agents/state/Put", content=deep, headers=headers)  # a 500
    logs = secure.logs()
    assert '"event": "chaos_injected"' in logs  # (and request_failed while the 500 lasts)
    assert '"event": "gateway_starting"' in logs  # the capture works, it is JSON, at debug
    assert '"level": "debug"' in logs or '"level": "info"' in logs
    leaked = [s for s in [*TOKENS.values(), *WRONG, HOOK_SECRET, WIRING_SECRET] if s in logs]
    assert not leaked, leaked
    assert "pass@" not in logs


# -- secrets only from the environment ----------------------------------------------------


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VIBE_")}
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=120, env={**clean, **env}
    )


def test_a_wiring_secret_in_an_invalid_place_is_not_echoed(tmp_path: Path) -> None:
    wiring = tmp_path / "wiring.yaml"
    text = (ROOT / "wiring.yaml").read_text()
    wiring.write_text(text.replace("max_batch: 256", "max_batch: ${RELIABILITY_BATCH}", 1))
    env = {"RELIABILITY_BATCH": WIRING_SECRET}
    check = run([sys.executable, "-m", "phoenix", "check", str(wiring)], env)
    assert check.returncode != 0
    assert "max_batch" in check.stdout + check.stderr
    served = run(
        [sys.executable, "-m", "gateway", "--wiring", str(wiring), "--data-dir", str(tmp_path)],
        {**env, "VIBE_PORT": str(free_port())},
    )
    assert served.returncode == 1
    assert "max_batch" in served.stderr and "Traceback" not in served.stderr
    for output in (check.stdout, check.stderr, served.stdout, served.stderr):
        assert WIRING_SECRET not in output


def test_a_missing_secret_names_the_variable_and_stops_the_boot(tmp_path: Path) -> None:
    served = run(
        [sys.executable, "-m", "gateway", "--wiring", str(secure_wiring(tmp_path))],
        {"VIBE_DATA_DIR": str(tmp_path), "VIBE_PORT": str(free_port())},
    )
    assert served.returncode == 1
    assert "RELIABILITY_WEBHOOK_UA is not set" in served.stderr


def test_the_tree_command_masks_values_from_the_environment(tmp_path: Path) -> None:
    wiring = secure_wiring(tmp_path)
    result = run(
        [sys.executable, "-m", "phoenix", "tree", str(wiring)],
        {"RELIABILITY_WEBHOOK_UA": WIRING_SECRET},
    )
    assert result.returncode == 0, result.stderr
    assert WIRING_SECRET not in result.stdout + result.stderr


# -- an allow-listed address is accepted --------------------------------------------------


def test_an_allow_listed_loopback_webhook_is_accepted(tmp_path: Path) -> None:
    env = {"RELIABILITY_WEBHOOK_UA": WIRING_SECRET, "VIBE_LOG_FORMAT": "json"}
    served = SecureGateway(tmp_path, secure_wiring(tmp_path, '["127.0.0.1/32"]'), env, ())
    try:
        served.wait_healthy()
        url = f"{served.url}/v1/agents/webhooks/Subscribe"
        allowed = {"topic": "t", "url": "http://127.0.0.1:9/hook", "secret": HOOK_SECRET}
        response = httpx.post(url, json=allowed, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["type"] == "Subscribed"
        for other in ("http://127.0.0.2:9/hook", "http://10.0.0.1/hook", "http://[::1]:9/"):
            refused = httpx.post(url, json={**allowed, "url": other}, timeout=30)
            assert_problem(refused, 403, "webhook-refused")
        assert HOOK_SECRET not in served.logs()
    finally:
        served.close()
