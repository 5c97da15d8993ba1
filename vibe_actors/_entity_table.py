"""Pure helpers over a shard's table of active entities (no runtime, no I/O).

A shard keeps its active entities in a dict in least-recently-used order
(an entity used moves to the end). These helpers read that
order; they are shared by the local shard and by the Ray side of a kind
placed on Ray (:mod:`vibe_actors.ray._entity_host`), so that both passivate
by the same rules.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, Any

from vibe_actors._stats import DURATION_BUCKETS

if TYPE_CHECKING:
    from vibe_actors._entity import Entity

__all__ = ["activation_bucket", "idle_ids", "over_limit", "short_error"]


def short_error(exc: BaseException) -> str:
    """``Type: message``, at most 500 characters (what an asker's AgentCrashed carries)."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 500 else text[:497] + "..."


def idle_ids(active: dict[str, Entity[Any]], cutoff: float) -> list[str]:
    """The ids of ``active`` last used at or before ``cutoff``, least recently used first.

    Reads from the front and stops at the first entity used later: every later
    one was used more recently (LRU order).
    """
    idle = []
    for entity_id, entity in active.items():
        if entity._last_used > cutoff:  # noqa: SLF001 - the shard keeps its entities' clocks
            break
        idle.append(entity_id)
    return idle


def over_limit(active: dict[str, Entity[Any]], limit: int) -> str | None:
    """The least recently used id while ``active`` holds more than ``limit``, else None."""
    return next(iter(active)) if len(active) > limit else None


def activation_bucket(elapsed: float) -> int:
    """The index of ``elapsed`` (seconds) in the activation histogram (DURATION_BUCKETS, +Inf)."""
    return bisect_left(DURATION_BUCKETS, elapsed)
