"""The metrics of Ray placement's proxies: calls by outcome, and asks answered inline."""

from __future__ import annotations

import typing

from prometheus_client import CollectorRegistry, Counter

__all__ = ["ProxyMetrics", "proxy_metrics"]


class ProxyMetrics(typing.NamedTuple):
    calls: Counter
    inline: Counter


def proxy_metrics(registry: CollectorRegistry) -> ProxyMetrics:
    """The Ray proxies' metrics, on ``registry`` (once per system: ActorSystem.shared_metrics)."""
    return ProxyMetrics(
        Counter(
            "vibe_ray_calls",
            "Calls from proxies to Ray-placed agents, by outcome.",
            ["agent", "placement", "outcome"],
            registry=registry,
        ),
        Counter(
            "vibe_ray_inline_asks",
            "Blocking asks of Ray-placed agents sent and awaited in the asker's thread "
            "(the proxy was idle): no thread hop.",
            ["agent"],
            registry=registry,
        ),
    )
