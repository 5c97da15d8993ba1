"""Numbers in headers are parsed safely: thousands of digits are a 400, never a 500."""

from __future__ import annotations

import socket

import pytest

from tests.gateway.test_app import tree


def raw_request(client, head: bytes) -> bytes:
    """Send ``head`` (request line and headers) on a fresh connection; the response's bytes."""
    with socket.create_connection((client.base_url.host, client.base_url.port), timeout=10) as s:
        s.sendall(head)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b'"status"' in b"".join(chunks):
                break
        return b"".join(chunks)


@pytest.mark.parametrize("digits", [10, 5000])
def test_a_timeout_with_too_many_digits_is_400(gateway, digits):
    _, client = gateway(tree())
    reply = client.post(
        "/v1/agents/w/Echo", json={"text": "x"}, headers={"x-timeout-ms": "9" * digits}
    )
    assert reply.status_code == 400
    assert reply.json()["type"] == "/problems/bad-timeout"


def test_a_timeout_of_nine_digits_is_capped_not_refused(gateway):
    _, client = gateway(tree())
    reply = client.post("/v1/agents/w/Echo", json={"text": "x"}, headers={"x-timeout-ms": "9" * 9})
    assert reply.status_code == 200


@pytest.mark.parametrize("digits", [19, 5000])
def test_a_content_length_with_too_many_digits_is_400(gateway, digits):
    _, client = gateway(tree())
    head = (
        b"POST /v1/agents/w/Echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: " + b"9" * digits + b"\r\nconnection: close\r\n\r\n"
    )
    response = raw_request(client, head)
    status = response.split(b" ", 2)[1]
    assert status == b"400", response[:300]
    assert b"500" not in response.split(b"\r\n", 1)[0]
