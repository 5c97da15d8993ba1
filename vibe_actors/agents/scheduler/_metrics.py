"""The scheduler's Prometheus metrics (one set per system, shared by its incarnations)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["Metrics", "build_metrics"]


@dataclass(frozen=True)
class Metrics:
    fired: Counter
    schedules: Gauge


def build_metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(
        fired=Counter(
            "vibe_scheduler_fired_total",
            "Schedules that came due; outcome delivered (told) or undeliverable.",
            ["agent", "kind", "outcome"],
            registry=registry,
        ),
        schedules=Gauge(
            "vibe_scheduler_schedules",
            "Schedules held, by kind (timer: in memory, reminder: persisted).",
            ["agent", "kind"],
            registry=registry,
        ),
    )
