"""The pubsub agent's Prometheus metrics (one set per system, shared by its incarnations)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["Metrics", "build_metrics"]


@dataclass(frozen=True)
class Metrics:
    published: Counter
    delivered: Counter
    dropped: Counter
    subscribers: Gauge
    topics: Gauge
    refused: Counter


def build_metrics(registry: CollectorRegistry) -> Metrics:
    labels = ["agent"]
    return Metrics(
        published=Counter("vibe_pubsub_published", "Events published", labels, registry=registry),
        delivered=Counter(
            "vibe_pubsub_delivered",
            "Events whose subscriber handled them",
            labels,
            registry=registry,
        ),
        dropped=Counter(
            "vibe_pubsub_dropped",
            "Events dropped for a subscriber with a full buffer",
            labels,
            registry=registry,
        ),
        subscribers=Gauge(
            "vibe_pubsub_subscribers", "Subscriptions and listeners", labels, registry=registry
        ),
        topics=Gauge("vibe_pubsub_topics", "Topics held", labels, registry=registry),
        refused=Counter(
            "vibe_pubsub_refused",
            "Requests refused by a cap (max_topics, max_subscribers)",
            ["agent", "limit"],
            registry=registry,
        ),
    )
