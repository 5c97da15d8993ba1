"""The jobs agent's Prometheus metrics (one set per system, shared by its incarnations).

:class:`Metrics` is the coordinator's; :class:`ProcessMetrics` the worker pool's
job processes (every worker of the system counts into the same set).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics", "ProcessMetrics", "build_metrics", "build_process_metrics"]


@dataclass(frozen=True)
class Metrics:
    total: Counter
    queued: Gauge
    running: Gauge
    duration: Histogram
    not_saved: Counter


@dataclass(frozen=True)
class ProcessMetrics:
    started: Counter
    killed: Counter
    died: Counter


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
        not_saved=Counter(
            "vibe_jobs_not_saved_total",
            "Submissions answered JobsNotSaved because their batch's commit failed",
            registry=registry,
        ),
    )


def build_process_metrics(registry: CollectorRegistry) -> ProcessMetrics:
    return ProcessMetrics(
        started=Counter(
            "vibe_job_processes_started_total",
            "Job processes started by the workers (at start, and to replace a killed one)",
            registry=registry,
        ),
        killed=Counter(
            "vibe_job_processes_killed_total",
            "Job processes killed during an attempt, by reason (timeout, stop, start, broken)",
            ["reason"],
            registry=registry,
        ),
        died=Counter(
            "vibe_job_processes_died_total",
            "Job processes that exited by themselves during an attempt",
            registry=registry,
        ),
    )
