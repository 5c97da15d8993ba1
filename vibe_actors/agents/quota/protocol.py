"""The quota agent's settings, messages and replies (re-exported by
:mod:`vibe_actors.agents.quota`); other agents import them from here.
"""

from __future__ import annotations

import math
from typing import ClassVar

import msgspec

from vibe_actors import ErrorReply, Message
from vibe_actors._messages import namespaced

__all__ = [
    "WILDCARD",
    "Acquire",
    "CostExceedsBurst",
    "Denied",
    "Granted",
    "Limit",
    "QuotaConfig",
]


_tag = namespaced("quota")


class _Message(Message, tag=_tag):
    """Base of the quota agent's messages: tagged ``quota.<ClassName>`` on the wire,
    named by the class name over HTTP."""


class _ErrorReply(ErrorReply, tag=_tag):
    """Base of the quota agent's error replies, tagged like its messages."""


WILDCARD = "*"


class Limit(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``rate`` tokens per second, at most ``burst`` saved; see the module docstring."""

    rate: float
    burst: float
    principal: str | None = None
    agent: str | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"a limit's rate must be a finite number > 0, got {self.rate}")
        if not (math.isfinite(self.burst) and self.burst > 0):
            raise ValueError(f"a limit's burst must be a finite number > 0, got {self.burst}")


class QuotaConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of :class:`Quota`."""

    limits: list[Limit] = []
    #: Above this many buckets, full ones (indistinguishable from new) are dropped.
    max_buckets: int = 100_000
    #: On a shared store: seconds between deletions of the buckets full again.
    sweep_interval: float = 10.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sweep_interval) and self.sweep_interval > 0):
            raise ValueError(
                f"sweep_interval must be a finite number > 0, got {self.sweep_interval}"
            )


# -- messages ---------------------------------------------------------------------


class Acquire(_Message):
    """Take ``cost`` tokens for ``principal`` (None: anonymous) sending to ``agent``."""

    agent: str
    principal: str | None = None
    cost: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cost) and self.cost >= 0):
            raise ValueError(f"cost must be a finite number >= 0, got {self.cost}")


class Granted(_Message):
    """Taken. ``remaining``: tokens left in the tightest bucket (None: no limit applies)."""

    remaining: float | None


class Denied(_ErrorReply):
    """Not enough tokens: nothing was taken; try again in ``retry_after`` seconds."""

    retry_after: float
    limit: int  #: index of the limit that needs the longest wait
    http_status: ClassVar[int] = 429


class CostExceedsBurst(_ErrorReply):
    """``cost`` is larger than the burst of limit ``limit``: it can never be granted."""

    limit: int
    http_status: ClassVar[int] = 422
