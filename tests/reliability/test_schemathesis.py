"""Schemathesis against a live gateway's ``/v1/openapi.json``: no 500, answers match it.

One ``python -m gateway`` (the shipped wiring.yaml, plus a dynamic supervisor) serves the
module; the
schema is loaded from it, and every operation (every route the gateway
serves: one POST per agent and message type, the views, the topic streams,
the probes, ``/metrics`` and the document itself) gets generated requests,
valid and invalid. Each response must not be a 5xx other than a documented
503/504, its status, content type and body must match what the document
declares, and a request the document calls invalid must be refused (4xx).
An event stream's 200 never ends: schemathesis reads it for a short while.

Bounded for CI: a few examples per operation, a per-request timeout and a
hypothesis deadline; ``reliability_full`` (``VIBE_RELIABILITY_FULL=1``) runs
many more.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks as sc
from schemathesis.generation.modes import GenerationMode

from tests.reliability.conftest import FULL, ROOT, Gateway

#: The deadline of one ask, sent with every request (the documented 504 beyond it).
ASK_TIMEOUT_MS = 3_000
#: Requests to the gateway never wait longer than this.
REQUEST_TIMEOUT = 15.0
#: How long an open event stream is read (schemathesis stops reading at the timeout).
STREAM_TIMEOUT = 1.0
CHECKS = [
    sc.not_a_server_error,
    sc.status_code_conformance,
    sc.content_type_conformance,
    sc.response_schema_conformance,
    sc.negative_data_rejection,
]
_EVENT_STREAM = "text/event-stream"


#: The shipped wiring plus a dynamic supervisor, so that starting children is fuzzed too
#: (bounded by its max_children; a Counter's config is safe in a client's hands).
SESSIONS = """
    - name: sessions
      dynamic: true
      max_children: 20
      intensity: 5
      period: 30s
      templates: [tests.phoenix.agents:Counter]
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    (tmp / "data").mkdir()
    wiring = tmp / "wiring.yaml"
    wiring.write_text((ROOT / "wiring.yaml").read_text() + SESSIONS)
    served = Gateway(tmp / "gateway.log", tmp / "data", wiring, False, ())
    try:
        served.wait_ready()
        yield served
    finally:
        served.close()


def _expected_server_error(response: object) -> bool:
    """A 503/504 is documented for every operation (restarting agent, deadline)."""
    return getattr(response, "status_code", 0) in (503, 504)


def _exercise(operation: Any, mode: GenerationMode, examples: int, failures: list[str]) -> int:
    """Run generated cases of ``operation``; returns how many were sent."""
    sent = 0
    streams = _EVENT_STREAM in operation.definition.raw["responses"].get("200", {}).get(
        "content", {}
    )
    if mode is GenerationMode.NEGATIVE and not _negatable(operation.definition.raw):
        return 0  # nothing in the request to make invalid (a probe, the metrics)

    @settings(
        max_examples=examples,
        deadline=timedelta(seconds=REQUEST_TIMEOUT + 5),
        suppress_health_check=list(HealthCheck),
        derandomize=not FULL,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        nonlocal sent
        sent += 1
        # A generated X-Timeout-Ms (valid or not) is the case; only a missing one gets ours.
        timed = any(name.lower() == "x-timeout-ms" for name in case.headers or {})
        headers = {} if timed else {"x-timeout-ms": str(ASK_TIMEOUT_MS)}
        # Schemathesis reads an event stream until the timeout: a stream's is short.
        response = case.call(
            headers=headers, timeout=STREAM_TIMEOUT if streams else REQUEST_TIMEOUT
        )
        checks = CHECKS[1:] if _expected_server_error(response) else CHECKS
        if response.status_code == 204:
            assert response.content == b""
        case.validate_response(response, checks=checks)
        assert "Traceback" not in response.text

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - one report for all
        failures.append(f"{operation.label} [{mode.value}]: {_describe(exc)[:3000]}")
    return sent


def _negatable(definition: dict[str, Any]) -> bool:
    return bool(definition.get("parameters") or definition.get("requestBody"))


def _describe(exc: BaseException) -> str:
    """The failure and, for a group (flaky, several checks), every failure inside it."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, BaseExceptionGroup):
        text += "".join("\n    - " + _describe(inner) for inner in exc.exceptions)
    return text


@pytest.mark.parametrize(
    "examples",
    [
        pytest.param(8, id="fast", marks=pytest.mark.timeout(180)),
        pytest.param(
            200, id="full", marks=[pytest.mark.reliability_full, pytest.mark.timeout(1800)]
        ),
    ],
)
def test_every_operation_answers_as_documented(gateway: Gateway, examples: int) -> None:
    api = schemathesis.openapi.from_url(f"{gateway.url}/v1/openapi.json", timeout=30)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 50, len(operations)  # every agent's every message type
    routes = {operation.path for operation in operations}
    assert {"/v1/agents", "/v1/tree", "/v1/topics/{topic}/events", "/metrics"} <= routes
    # The dynamic routes too: starting children (bounded by max_children) and deleting them.
    assert {"/v1/supervisors/sessions/children", "/v1/agents/{name}"} <= routes
    failures: list[str] = []
    sent = 0
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            sent += _exercise(operation, mode, examples, failures)
    assert not failures, f"{len(failures)} of {2 * len(operations)} failed:\n" + "\n".join(failures)
    print(f"schemathesis: {sent} requests over {len(operations)} operations")
    assert sent >= len(operations)
    assert gateway.process.poll() is None


def test_an_operation_answered_204_documents_it(gateway: Gateway) -> None:
    document = httpx.get(f"{gateway.url}/v1/openapi.json", timeout=30).json()
    body = {"agent": "nobody", "reason": "test"}
    response = httpx.post(f"{gateway.url}/v1/agents/registry/Terminated", json=body)
    assert response.status_code == 204
    assert "204" in document["paths"]["/v1/agents/registry/Terminated"]["post"]["responses"]
