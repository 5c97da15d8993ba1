"""The Prometheus metrics of :mod:`vibe_actors.store._health` (one set per system,
shared by every agent whose durable writes it guards)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

__all__ = ["Metrics", "build_metrics"]


@dataclass(frozen=True)
class Metrics:
    failures: Counter
    read_failures: Counter


def build_metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(
        failures=Counter(
            "vibe_store_write_failures",
            "Durable writes that failed (nothing of them was kept), per agent",
            ["agent"],
            registry=registry,
        ),
        read_failures=Counter(
            "vibe_store_read_failures",
            "Reads of a durable store that failed (the database out of reach), per agent",
            ["agent"],
            registry=registry,
        ),
    )
