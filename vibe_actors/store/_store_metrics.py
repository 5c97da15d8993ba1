"""The ``vibe_store_*`` metrics: which store each agent uses, and how its database fares.

One set per system (built by ``ActorSystem.shared_metrics``), fed by
:func:`~vibe_actors.store._store.open_store` and the PostgreSQL backend:

* ``vibe_store_info{agent, backend, location}`` = 1: the agent's store
  (``sqlite`` and its file, or ``postgresql`` and its URL without password);
* ``vibe_store_transaction_seconds{agent}``: PostgreSQL write transactions, begin to commit;
* ``vibe_store_errors_total{agent, kind}``: failed reads and writes
  (``unavailable``: the database could not be reached or failed; ``rejected``:
  it refused a statement);
* ``vibe_store_pool_connections{agent}``, ``vibe_store_pool_available{agent}``,
  ``vibe_store_pool_waits_total{agent}``, ``vibe_store_pool_wait_seconds_total{agent}``,
  ``vibe_store_pool_errors_total{agent}``: each PostgreSQL pool, read from
  psycopg_pool's own counters when scraped.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["StoreMetrics", "build_store_metrics"]


class StoreMetrics:
    """The metrics above; :meth:`track` and :meth:`untrack` a pool while it is open."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.info = Gauge(
            "vibe_store_info",
            "The store each durable agent uses (1): backend and location (no password)",
            ["agent", "backend", "location"],
            registry=registry,
        )
        self.transaction_seconds = Histogram(
            "vibe_store_transaction_seconds",
            "PostgreSQL write transactions, begin to commit, per agent",
            ["agent"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
            registry=registry,
        )
        self.errors = Counter(
            "vibe_store_errors",
            "Failed reads and writes of a PostgreSQL store, per agent and kind",
            ["agent", "kind"],
            registry=registry,
        )
        self._pools: dict[str, Any] = {}
        #: agent -> where its store is ("sqlite:<file>", or the PostgreSQL URL, no password).
        self.used: dict[str, str] = {}
        self._lock = threading.Lock()
        registry.register(_PoolCollector(self))

    def track(self, agent: str, pool: Any) -> None:
        with self._lock:
            self._pools[agent] = pool

    def untrack(self, agent: str, pool: Any) -> None:
        with self._lock:
            if self._pools.get(agent) is pool:
                del self._pools[agent]

    def pools(self) -> list[tuple[str, dict[str, int]]]:
        with self._lock:
            pools = list(self._pools.items())
        return [(agent, pool.get_stats()) for agent, pool in pools]


class _PoolCollector(Collector):
    def __init__(self, metrics: StoreMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Any]:
        size = GaugeMetricFamily(
            "vibe_store_pool_connections", "Connections the pool holds", labels=["agent"]
        )
        available = GaugeMetricFamily(
            "vibe_store_pool_available", "Idle connections in the pool", labels=["agent"]
        )
        waits = CounterMetricFamily(
            "vibe_store_pool_waits", "Requests that waited for a connection", labels=["agent"]
        )
        waited = CounterMetricFamily(
            "vibe_store_pool_wait_seconds", "Time spent waiting for a connection", labels=["agent"]
        )
        errors = CounterMetricFamily(
            "vibe_store_pool_errors",
            "Failed connection attempts and requests that got no connection",
            labels=["agent"],
        )
        for agent, stats in self._metrics.pools():
            size.add_metric([agent], stats.get("pool_size", 0))
            available.add_metric([agent], stats.get("pool_available", 0))
            waits.add_metric([agent], stats.get("requests_queued", 0))
            waited.add_metric([agent], stats.get("requests_wait_ms", 0) / 1000)
            errors.add_metric(
                [agent], stats.get("connections_errors", 0) + stats.get("requests_errors", 0)
            )
        yield from (size, available, waits, waited, errors)


def build_store_metrics(registry: CollectorRegistry) -> StoreMetrics:
    return StoreMetrics(registry)
