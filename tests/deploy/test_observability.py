"""Every metric the alert rules and the dashboard use is really exported by /metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

import phoenix

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
METRIC = re.compile(r"\b((?:vibe|process)_[a-z_]+)\b")
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def referenced_metrics() -> set[str]:
    exprs: list[str] = []
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((DEPLOY / "grafana" / "vibe-actors.json").read_text())
    exprs += [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    return {name for expr in exprs for name in METRIC.findall(expr)}


def exported_samples(text: str) -> set[str]:
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples} | {
        family.name for family in text_string_to_metric_families(text)
    }


def test_rules_and_dashboard_reference_only_exported_metrics(gateway, tmp_path):
    root, _ = phoenix.build(phoenix.load(ROOT / "wiring.yaml"))  # the shipped system
    system, client = gateway(root, {"data_dir": str(tmp_path)})
    client.post("/v1/agents/ledger/Ping", json={})  # give every family a sample
    exported = exported_samples(client.get("/metrics").text)
    referenced = referenced_metrics()
    assert len(referenced) >= 10
    missing = {name for name in referenced if name not in exported}
    assert not missing, f"referenced but not exported: {sorted(missing)}"


def test_every_family_of_ours_is_referenced_somewhere():
    referenced = {
        n.removesuffix(s) for n in referenced_metrics() for s in SUFFIXES if n.endswith(s)
    }
    referenced |= referenced_metrics()
    ours = {
        "vibe_messages", "vibe_message_duration_seconds", "vibe_mailbox_depth", "vibe_restarts",
        "vibe_dead_letters", "vibe_agents", "vibe_escalations", "vibe_abandoned",
        "vibe_http_requests", "vibe_http_request_duration_seconds",
    }  # fmt: skip
    assert ours <= referenced, f"not on the dashboard or in an alert: {sorted(ours - referenced)}"
