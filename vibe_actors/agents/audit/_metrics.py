"""The audit agent's Prometheus metrics (one set per system, shared by its incarnations)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["Metrics", "build_metrics"]


@dataclass(frozen=True)
class Metrics:
    records: Counter
    failures: Counter
    chain_ok: Gauge


def build_metrics(registry: CollectorRegistry) -> Metrics:
    failures = Counter(
        "vibe_audit_ledger_failures",
        "Ledger requests of the audit agent that failed, by operation.",
        ["op"],
        registry=registry,
    )
    for op in ("append", "verify", "recent"):
        failures.labels(op=op)  # stable zero series
    chain_ok = Gauge(
        "vibe_audit_chain_ok",
        "1 while the audit chain verifies, 0 once it does not (NaN before the first check).",
        registry=registry,
    )
    chain_ok.set(float("nan"))
    return Metrics(
        records=Counter(
            "vibe_audit_records", "Audit records the ledger acknowledged.", registry=registry
        ),
        failures=failures,
        chain_ok=chain_ok,
    )
