"""CORS (off unless --cors-origins): preflights, headers on every answer, streams included."""

from __future__ import annotations

import pytest

from gateway import SettingsError, parse_settings
from vibe_actors import SupervisorSpec, WorkerSpec
from vibe_actors.agents.pubsub import PubSub

from tests.conftest import worker

APP = "https://app.example"
OTHER = "https://evil.example"


def tree() -> SupervisorSpec:
    return SupervisorSpec(
        name="root", children=(worker("w"), WorkerSpec(name="pubsub", agent=PubSub))
    )


def preflight(client, path: str, origin: str, method: str = "POST"):
    headers = {
        "origin": origin,
        "access-control-request-method": method,
        "access-control-request-headers": "content-type, authorization",
    }
    return client.options(path, headers=headers)


def test_a_preflight_from_an_allowed_origin_is_answered_before_authentication(gateway, tmp_path):
    _, client = gateway(
        tree(), {"data_dir": str(tmp_path)}, cors_origins=(APP,), tokens={"alice": "s3cret"}
    )
    response = preflight(client, "/v1/agents/w/Add", APP)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == APP
    assert response.headers["access-control-allow-methods"] == "POST"
    assert "authorization" in response.headers["access-control-allow-headers"]
    assert "x-timeout-ms" in response.headers["access-control-allow-headers"]
    refused = preflight(client, "/v1/agents/w/Add", OTHER)
    assert refused.status_code == 403
    assert refused.json()["type"] == "/problems/cors-refused"
    assert "access-control-allow-origin" not in refused.headers
    wrong_method = preflight(client, "/v1/agents/w/Add", APP, method="DELETE")
    assert wrong_method.status_code == 403


def test_answers_to_an_allowed_origin_carry_the_headers_problems_and_streams_too(gateway, tmp_path):
    _, client = gateway(tree(), {"data_dir": str(tmp_path)}, cors_origins=(APP,))
    ok = client.post("/v1/agents/w/Add", json={"n": 1}, headers={"origin": APP})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == APP
    assert "x-request-id" in ok.headers["access-control-expose-headers"]
    assert "traceparent" in ok.headers["access-control-expose-headers"]  # tracing on
    problem = client.post("/v1/agents/w/Add", json={"n": "x"}, headers={"origin": APP})
    assert problem.status_code == 422
    assert problem.headers["access-control-allow-origin"] == APP
    with client.stream("GET", "/v1/topics/t/events", headers={"origin": APP}) as stream:
        assert stream.status_code == 200
        assert stream.headers["access-control-allow-origin"] == APP
    other = client.post("/v1/agents/w/Add", json={"n": 1}, headers={"origin": OTHER})
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers


def test_any_origin_with_a_star(gateway):
    _, client = gateway(tree(), cors_origins=("*",))
    response = client.get("/healthz", headers={"origin": OTHER})
    assert response.headers["access-control-allow-origin"] == "*"


def test_without_the_setting_nothing_changes(gateway):
    _, client = gateway(tree())
    response = client.post("/v1/agents/w/Add", json={"n": 1}, headers={"origin": APP})
    assert "access-control-allow-origin" not in response.headers
    assert preflight(client, "/v1/agents/w/Add", APP).status_code == 405


def test_origins_come_from_the_flag_or_the_variable_and_are_checked() -> None:
    settings = parse_settings(["--cors-origins", f"{APP}, https://admin.example"], {})
    assert settings.app_settings().cors_origins == (APP, "https://admin.example")
    assert parse_settings([], {"VIBE_CORS_ORIGINS": "*"}).app_settings().cors_origins == ("*",)
    assert parse_settings([], {}).app_settings().cors_origins == ()
    with pytest.raises(SettingsError, match="--cors-origins / VIBE_CORS_ORIGINS.*not an origin"):
        parse_settings(["--cors-origins", "https://app.example/path"], {})
