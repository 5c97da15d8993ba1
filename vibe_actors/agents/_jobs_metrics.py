"""The jobs coordinator's Prometheus metrics (one set per system, shared by its incarnations)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics", "build_metrics"]


@dataclass(frozen=True)
class Metrics:
    total: Counter
    queued: Gauge
    running: Gauge
    duration: Histogram


def build_metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(
        total=Counter(
            "vibe_jobs_total",
            "Jobs by kind and outcome (succeeded, failed, retried, cancelled)",
            ["kind", "outcome"],
            registry=registry,
        ),  # fmt: skip
        queued=Gauge("vibe_jobs_queued", "Jobs waiting to run", registry=registry),
        running=Gauge("vibe_jobs_running", "Jobs running now", registry=registry),
        duration=Histogram(
            "vibe_job_duration_seconds",
            "Duration of job attempts that returned (success or error)",
            ["kind"],
            buckets=(0.005, 0.05, 0.25, 1, 5, 15, 60, 300, 1800, 3600),
            registry=registry,
        ),
    )
