"""The registry agent's Prometheus metrics (one set per system, shared by its incarnations)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["Metrics", "build_metrics"]


@dataclass(frozen=True)
class Metrics:
    entries: Gauge
    refused: Counter


def build_metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(
        entries=Gauge(
            "vibe_registry_entries", "Visible registrations", ["agent"], registry=registry
        ),
        refused=Counter(
            "vibe_registry_refused",
            "Registrations of a new name and subscriptions of a new pair refused by a limit "
            "(max_names, max_subscriptions)",
            ["agent", "limit"],
            registry=registry,
        ),
    )
