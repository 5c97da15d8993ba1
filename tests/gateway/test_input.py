"""Bad request bodies get a clear 4xx problem: invalid UTF-8, deep nesting, field paths, size."""

from __future__ import annotations

import socket
import sys
import time
from typing import Any

import pytest

from vibe_actors import Agent, Message, SupervisorSpec, WorkerSpec, handler

from tests.conftest import worker

JSON = {"content-type": "application/json"}


class Keep(Message):
    key: str
    value: Any = None


class Kept(Message):
    key: str


class Keeper(Agent):
    @handler
    def keep(self, msg: Keep) -> Kept:
        return Kept(key=msg.key)


def tree() -> SupervisorSpec:
    return SupervisorSpec(
        name="root", children=(worker("w"), WorkerSpec(name="keeper", agent=Keeper))
    )


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["type"] == f"/problems/{slug}" and problem["status"] == status
    assert "Traceback" not in response.text
    return problem


@pytest.mark.parametrize("text", [b"\xff", b"\xed\xa0\x80", b"\xc3"])
def test_invalid_utf8_inside_a_string_is_400_malformed_json(gateway, text: bytes) -> None:
    _, client = gateway(tree())
    body = b'{"key": "' + text + b'"}'
    problem = assert_problem(client.post("/v1/agents/keeper/Keep", content=body, headers=JSON),
                             400, "malformed-json")  # fmt: skip
    assert "invalid UTF-8" in problem["detail"]


@pytest.mark.parametrize("past", ["just", "far"])
def test_nesting_past_the_decoders_limit_is_400_malformed_json(gateway, past: str) -> None:
    # msgspec's limit is the interpreter's recursion limit, which other code in this
    # process (hypothesis) may have raised: nest relative to it, within the body limit.
    limit = sys.getrecursionlimit()
    depth = limit + 100 if past == "just" else max(limit + 100, min(4 * limit, 500_000))
    _, client = gateway(tree())
    body = b'{"key": "k", "value": ' + b"[" * depth + b"]" * depth + b"}"
    response = client.post("/v1/agents/keeper/Keep", content=body, headers=JSON)
    problem = assert_problem(response, 400, "malformed-json")
    assert "nested deeper" in problem["detail"]
    # The same agent still serves nesting within the limit (MAX_NESTING, the message
    # itself being the first level); past it, a 422 names the limit.
    ok = b'{"key": "k", "value": ' + b"[" * 99 + b"]" * 99 + b"}"
    assert client.post("/v1/agents/keeper/Keep", content=ok, headers=JSON).status_code == 200
    deep = b'{"key": "k", "value": ' + b"[" * 500 + b"]" * 500 + b"}"
    refused = client.post("/v1/agents/keeper/Keep", content=deep, headers=JSON)
    assert_problem(refused, 422, "nesting-too-deep")


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        (b"[]", "$", "Expected `object`, got `array`"),
        (b'{"value": 1}', "$", "Object missing required field `key`"),
        (b'{"key": "k", "admin": 1}', "$", "Object contains unknown field `admin`"),
        (b'{"key": 5}', "$.key", "Expected `str`, got `int`"),
    ],
)
def test_a_field_error_path_is_dollar_for_the_whole_document(gateway, body, path, message):
    _, client = gateway(tree())
    response = client.post("/v1/agents/keeper/Keep", content=body, headers=JSON)
    problem = assert_problem(response, 422, "invalid-body")
    assert problem["errors"] == [{"path": path, "message": message}]


def test_a_declared_body_over_the_limit_is_413_before_any_body_byte(gateway) -> None:
    _, client = gateway(tree(), max_body_bytes=1024)
    port = int(str(client.base_url).rsplit(":", 1)[1].rstrip("/"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/agents/w/Echo HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
        )
        started, data = time.monotonic(), b""
        while not data.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
    assert data.startswith(b"HTTP/1.1 413 "), data[:200]
    assert b"/problems/body-too-large" in data
    assert time.monotonic() - started < 3


def test_a_body_within_the_declared_limit_is_still_read(gateway) -> None:
    _, client = gateway(tree(), max_body_bytes=1024)
    response = client.post("/v1/agents/w/Echo", json={"text": "x" * 900})
    assert response.status_code == 200
    response = client.post("/v1/agents/w/Echo", content=b'{"text": "x"}', headers={
        **JSON, "content-length": "13"})  # fmt: skip
    assert response.status_code == 200


def test_an_internal_error_is_a_500_problem_without_details(gateway, monkeypatch) -> None:
    _, client = gateway(tree())

    def broken(*args: Any) -> Any:
        raise RuntimeError("a secret detail at /work/somewhere")

    monkeypatch.setattr(client.app.catalog, "lookup", broken)
    response = client.post("/v1/agents/w/Echo", json={"text": "x"})
    problem = assert_problem(response, 500, "internal")
    assert problem["detail"] == "internal error; see the server log"
    assert "secret" not in response.text and "/work" not in response.text
