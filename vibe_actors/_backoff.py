"""Exponential backoff with jitter: the one formula for every retry of the runtime.

A supervisor's restarts (:class:`~vibe_actors.BackoffSpec`), the jobs agent's
retries and the webhooks agent's redeliveries all wait::

    min(maximum, initial * multiplier ** (attempt - 1)) * (1 + jitter * r)

before retrying after failed attempt ``attempt`` (1-based), ``r`` uniform in
[0, 1): the delay grows geometrically up to a cap, and the jitter spreads
retries that failed together (a restarted dependency, an endpoint that was
down for everyone) so that they do not all come back in the same instant.
``jitter`` 0 gives the bare exponential.
"""

from __future__ import annotations

import math
import random

__all__ = ["backoff_delay"]


def backoff_delay(
    attempt: int,
    *,
    initial: float,
    maximum: float,
    multiplier: float = 2.0,
    jitter: float = 0.0,
    rand: float | None = None,
) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based); see the module docstring.

    ``rand`` is the draw in [0, 1) (default: :func:`random.random`; pass it to
    be deterministic). Never overflows, whatever ``attempt``. Raises
    ValueError for ``attempt < 1``, negative ``initial``, ``maximum <
    initial``, ``multiplier < 1``, negative ``jitter`` or ``rand`` outside [0, 1).
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    if not 0 <= initial <= maximum:
        raise ValueError(f"backoff needs 0 <= initial <= maximum, got {initial}, {maximum}")
    if multiplier < 1 or jitter < 0:
        raise ValueError(
            f"backoff needs multiplier >= 1 and jitter >= 0, got {multiplier}, {jitter}"
        )
    if rand is None:
        # Spreads retries: no secret depends on it.
        rand = random.random()  # nosec B311
    elif not 0.0 <= rand < 1.0:
        raise ValueError(f"rand must be in [0, 1), got {rand}")
    exponent = attempt - 1
    if initial == 0 or exponent == 0 or multiplier == 1:
        delay = initial
    elif exponent * math.log(multiplier) >= math.log(maximum) - math.log(initial):
        delay = maximum  # decided in log space: the power itself could overflow
    else:
        delay = min(maximum, initial * multiplier**exponent)
    return delay * (1 + jitter * rand) if jitter else delay
