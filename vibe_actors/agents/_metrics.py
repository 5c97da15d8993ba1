"""Per-system Prometheus metrics for system agents.

An agent restarts many times in one system, but a metric may be registered
only once per registry: :func:`system_metrics` builds an agent's metrics the
first time an incarnation of it asks, on the system's own registry, and hands
the same objects to every later incarnation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from prometheus_client import CollectorRegistry

if TYPE_CHECKING:
    from vibe_actors import ActorSystem

__all__ = ["system_metrics"]

T = TypeVar("T")


def system_metrics(system: ActorSystem, key: str, build: Callable[[CollectorRegistry], T]) -> T:
    """The metrics ``build(system.registry)`` made for ``system`` under ``key`` (built once).

    ``build`` should create metrics with stable ``vibe_<agent>_...`` names on
    the registry it is given. If it raises (a name clash), nothing is cached
    and the error propagates.
    """
    return system.shared_metrics(key, build)
