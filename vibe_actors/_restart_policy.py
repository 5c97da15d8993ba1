"""The supervisor's state machine, as pure functions.

No threads, no clock, no randomness of its own: the time and the random
draw are arguments, so every decision can be replayed and tested with
properties (``tests/vibe_actors/test_restart_policy.py``).

* :class:`IntensityWindow` — OTP's restart intensity: a sliding window of
  restart times shared by all the children of one supervisor.
* :func:`restart_plan` — which siblings a child's exit stops, restarts or
  removes, per strategy and restart type.
* :func:`next_backoff` — Akka's backoff formula with a reset after a quiet period.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from vibe_actors._backoff import backoff_delay
from vibe_actors._spec import BackoffSpec, RestartType, Strategy

__all__ = [
    "BackoffState",
    "ChildState",
    "IntensityWindow",
    "RestartPlan",
    "next_backoff",
    "restart_plan",
]


class IntensityWindow(msgspec.Struct, frozen=True):
    """Restart times (newest first) still inside the period."""

    restarts: tuple[float, ...] = ()

    @classmethod
    def empty(cls) -> IntensityWindow:
        return cls()

    def add_restart(
        self, now: float, intensity: int, period: float
    ) -> tuple[IntensityWindow, bool]:
        """Record a restart at ``now``; returns the new window and whether it exceeds.

        As OTP's ``add_restart``: keep the restarts with ``now - t < period``
        (a restart exactly ``period`` ago has left the window), and exceed when
        more than ``intensity`` remain. So intensity 0 escalates at the first
        failure, and restarts spaced ``period`` or more apart never escalate.
        Raises ValueError if ``now`` is earlier than the newest recorded restart.
        """
        if self.restarts and now < self.restarts[0]:
            raise ValueError(f"restart time went backwards: {now} < {self.restarts[0]}")
        kept = (now, *(t for t in self.restarts if now - t < period))
        return IntensityWindow(kept), len(kept) > intensity


class ChildState(msgspec.Struct, frozen=True):
    """What a plan needs to know of a child: its name, restart type and whether it is stopped.

    ``stopped``: the child is in the tree without an incarnation (a transient
    child that exited normally); a group restart starts it again (as OTP)
    but has nothing to stop.
    """

    name: str
    restart: RestartType
    stopped: bool = False


class RestartPlan(msgspec.Struct, frozen=True):
    """What a supervisor does after a child exits.

    ``stop``: running siblings to stop, last-started first. ``start``: children
    to (re)start, in start order (stopped transient siblings included).
    ``remove``: children dropped from the tree. ``keep_stopped``: children that
    stay in the tree, stopped (a transient child that exited normally).
    """

    stop: tuple[str, ...] = ()
    start: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    keep_stopped: tuple[str, ...] = ()


def restart_plan(
    strategy: Strategy, children: Sequence[ChildState], failed: str, abnormal: bool = True
) -> RestartPlan:
    """The plan for ``failed`` exiting (``abnormal``: it crashed, else it stopped normally).

    The failed child has already stopped, so it is never in ``stop``.
    Temporary children are never restarted: a temporary child that exits is
    removed and touches no sibling (as in OTP), and temporary siblings that a
    plan stops are removed. A transient child that exits normally stays
    stopped and touches no sibling.

    A group restart (one_for_all, rest_for_one) follows the group, not each
    sibling's own last exit: every non-temporary child of the group is
    started, including a transient sibling that had stopped normally
    (``stopped``; it is not in ``stop``, having nothing to stop). This is
    OTP's rule: its supervisor keeps a transient child's spec after a normal
    exit (``del_child`` sets the pid to ``undefined``), and
    ``restart_multiple_children`` starts every child left in the group.
    Raises ValueError if ``failed`` is unknown.
    """
    names = [child.name for child in children]
    if failed not in names:
        raise ValueError(f"{failed!r} is not a child of this supervisor")
    index = names.index(failed)
    kind = children[index].restart
    if kind is RestartType.TEMPORARY:  # as OTP: deleted, and no sibling is touched
        return RestartPlan(remove=(failed,))
    if not abnormal and kind is RestartType.TRANSIENT:
        return RestartPlan(keep_stopped=(failed,))
    if strategy is Strategy.ONE_FOR_ONE:
        affected = [children[index]]
    elif strategy is Strategy.ONE_FOR_ALL:
        affected = list(children)
    else:
        affected = list(children[index:])
    return RestartPlan(
        stop=tuple(c.name for c in reversed(affected) if c.name != failed and not c.stopped),
        start=tuple(c.name for c in affected if c.restart is not RestartType.TEMPORARY),
        remove=tuple(c.name for c in affected if c.restart is RestartType.TEMPORARY),
    )


class BackoffState(msgspec.Struct, frozen=True):
    """Consecutive restarts of one child, and when the last one was."""

    consecutive: int = 0
    last_restart: float | None = None


def next_backoff(
    spec: BackoffSpec, state: BackoffState, now: float, rand: float
) -> tuple[float, BackoffState]:
    """The delay before the next restart, and the state after it.

    The count first resets if the last restart was ``reset_after`` or more
    seconds ago. The first restart is immediate (delay 0, as OTP); the n-th
    consecutive one (n >= 1) waits
    ``min(max, min * 2 ** (n - 1)) * (1 + random_factor * rand)``.
    ``rand`` must be in [0, 1) (ValueError otherwise).
    """
    if not 0.0 <= rand < 1.0:
        raise ValueError(f"rand must be in [0, 1), got {rand}")
    consecutive = state.consecutive
    if state.last_restart is not None and now - state.last_restart >= spec.reset_after:
        consecutive = 0
    if consecutive == 0:
        delay = 0.0
    else:
        delay = backoff_delay(
            consecutive, initial=spec.min, maximum=spec.max, jitter=spec.random_factor, rand=rand
        )
    return delay, BackoffState(consecutive + 1, now)
