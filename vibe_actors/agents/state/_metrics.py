"""The state agent's Prometheus metrics (one set per system, shared by its incarnations)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["Metrics", "build_metrics"]


@dataclass(frozen=True)
class Metrics:
    writes: Counter
    conflicts: Counter
    expired: Counter
    keys: Gauge
    refused: Counter


def build_metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(
        writes=Counter(
            "vibe_state_writes_total",
            "Acknowledged (committed) writes of the state agent.",
            ["agent", "op"],
            registry=registry,
        ),
        conflicts=Counter(
            "vibe_state_conflicts_total",
            "Writes refused because expected_version did not hold.",
            ["agent"],
            registry=registry,
        ),
        expired=Counter(
            "vibe_state_expired_total",
            "Expired keys purged (by a sweep or lazily).",
            ["agent"],
            registry=registry,
        ),
        keys=Gauge(
            "vibe_state_keys",
            "Keys stored (expired ones until they are purged).",
            ["agent"],
            registry=registry,
        ),
        refused=Counter(
            "vibe_state_refused",
            "Puts of a new key refused because max_keys keys are held.",
            ["agent"],
            registry=registry,
        ),
    )
