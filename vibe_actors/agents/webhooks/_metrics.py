"""The webhooks agent's Prometheus metrics (one set per system, shared by its incarnations)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["Metrics", "build_metrics"]


@dataclass(frozen=True)
class Metrics:
    subscriptions: Gauge
    refused: Counter


def build_metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(
        subscriptions=Gauge(
            "vibe_webhooks_subscriptions", "Subscriptions held", ["agent"], registry=registry
        ),
        refused=Counter(
            "vibe_webhooks_refused",
            "Subscriptions refused by a limit (max_subscriptions, max_subscriptions_per_caller)",
            ["agent", "limit"],
            registry=registry,
        ),
    )
