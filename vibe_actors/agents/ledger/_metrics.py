"""The ledger's Prometheus metrics (one set per system, shared by its incarnations)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics", "build_metrics"]


@dataclass(frozen=True)
class Metrics:
    appends: Counter
    failures: Counter
    batch_size: Histogram
    commit_seconds: Histogram
    checkpoint_failures: Counter
    checkpoint_seconds: Histogram
    streams: Gauge
    refused: Counter
    rechained: Counter


def build_metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(
        appends=Counter("vibe_ledger_appends", "Appends durably committed.", registry=registry),
        failures=Counter(
            "vibe_ledger_commit_failures",
            "Commits that failed (their appends were answered 503).",
            registry=registry,
        ),
        batch_size=Histogram(
            "vibe_ledger_commit_batch_size",
            "Appends per committed transaction.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=registry,
        ),
        commit_seconds=Histogram(
            "vibe_ledger_commit_seconds",
            "Time to write and commit one batch.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=registry,
        ),
        checkpoint_failures=Counter(
            "vibe_ledger_checkpoint_failures",
            "Signed checkpoint writes that failed (the file lags until the next one succeeds).",
            registry=registry,
        ),
        checkpoint_seconds=Histogram(
            "vibe_ledger_checkpoint_seconds",
            "Time to write and fsync the signed checkpoint file after a commit.",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0),
            registry=registry,
        ),
        # Labelled by agent, unlike the counters above: two ledgers' stream counts must not
        # overwrite each other in one gauge.
        streams=Gauge("vibe_ledger_streams", "Streams committed.", ["agent"], registry=registry),
        refused=Counter(
            "vibe_ledger_refused",
            "Appends to a new stream refused because max_streams streams are held.",
            ["agent"],
            registry=registry,
        ),
        rechained=Counter(
            "vibe_ledger_rechained_batches",
            "Batches re-numbered at commit because another replica appended to their streams"
            " first (a shared store only).",
            registry=registry,
        ),
    )
