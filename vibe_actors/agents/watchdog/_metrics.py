"""The watchdog's Prometheus metrics (one set per system, shared by its incarnations)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["Metrics", "build_metrics"]


@dataclass(frozen=True)
class Metrics:
    rtt: Histogram
    misses: Counter
    hung: Counter
    replaced: Counter


def build_metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(
        rtt=Histogram(
            "vibe_watchdog_heartbeat_seconds",
            "Ping round-trip seen by the watchdog.",
            registry=registry,
            buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
        ),
        misses=Counter(
            "vibe_watchdog_misses", "Heartbeats missed, by agent.", ["agent"], registry=registry
        ),
        hung=Counter(
            "vibe_watchdog_hung", "Agents declared hung, by agent.", ["agent"], registry=registry
        ),
        replaced=Counter(
            "vibe_watchdog_replaced",
            "Times the runtime replaced the watchdog itself, stuck in one message.",
            ["agent"],
            registry=registry,
        ),
    )
