"""deploy/: the compose file's gateway traces into its OpenTelemetry Collector, whose
pipeline is wired from components it defines (checked without a container engine)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import yaml

from gateway._settings_cli import parse_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_the_gateway_traces_into_the_collector_it_is_composed_with():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    environment = services["gateway"]["environment"]
    assert parse_settings([], {"VIBE_OTEL": environment["VIBE_OTEL"]}).otel is True
    endpoint = urlsplit(environment["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert endpoint.hostname in services and endpoint.hostname == "otel-collector"
    collector = yaml.safe_load((DEPLOY / "otel" / "collector.yaml").read_text())
    http = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert http.rsplit(":", 1)[1] == str(endpoint.port)  # OTLP/HTTP, the gateway's protocol
    mounted = services["otel-collector"]["volumes"][0].split(":")
    assert mounted[0] == "./otel/collector.yaml"
    assert services["otel-collector"]["command"] == [f"--config={mounted[1]}"]


def test_the_collector_pipeline_uses_only_components_it_defines():
    collector = yaml.safe_load((DEPLOY / "otel" / "collector.yaml").read_text())
    (pipeline,) = collector["service"]["pipelines"].values()
    for kind in ("receivers", "processors", "exporters"):
        assert pipeline[kind] and set(pipeline[kind]) <= set(collector[kind]), kind
    jaeger = urlsplit("//" + collector["exporters"]["otlp/jaeger"]["endpoint"]).hostname
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert jaeger in compose["services"]
