"""The quota agent's Prometheus metrics (one set per system, shared by its incarnations)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["Metrics", "build_metrics"]


@dataclass(frozen=True)
class Metrics:
    acquires: Counter
    buckets: Gauge


def build_metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(
        acquires=Counter(
            "vibe_quota_acquires_total",
            "Acquires answered by the quota agent, by outcome: granted, denied (429),"
            " exceeds_burst (422), unavailable (503: the shared store could not be reached).",
            ["agent", "outcome"],
            registry=registry,
        ),
        buckets=Gauge(
            "vibe_quota_buckets",
            "Buckets held in the shared store (counted at each sweep; on SQLite: not set).",
            ["agent"],
            registry=registry,
        ),
    )
