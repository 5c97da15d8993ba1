"""Start order of siblings: ``depends_on`` honoured within the file's order.

Shared by :func:`phoenix.build` (the order the runtime starts them in),
:func:`phoenix.load` (a dependency elsewhere in the tree must start earlier)
and ``python -m phoenix tree`` (which prints the tree in start order).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence

__all__ = ["start_order"]


def start_order(siblings: Sequence[tuple[str, Iterable[str]]]) -> list[int]:
    """The positions of ``siblings`` (name, depends_on) in the order they start.

    A stable topological sort (Kahn's algorithm, linear in the siblings and their
    dependencies, times log n for the heap): the ready sibling taken next is always
    the earliest in the file, so a sibling moves only after the siblings it depends
    on and the file's order is otherwise kept. A dependency on a name that is not a
    sibling is ignored here; one on itself is a cycle. Siblings caught in a dependency cycle (and those waiting
    on them) are left out: a result shorter than ``siblings`` means a cycle.
    """
    names = {name for name, _ in siblings}
    waiting_on = [0] * len(siblings)  # per sibling: its dependencies not yet placed
    dependents: dict[str, list[int]] = {}
    for position, (_, depends_on) in enumerate(siblings):
        for target in depends_on:
            if target in names:
                waiting_on[position] += 1
                dependents.setdefault(target, []).append(position)
    ready = [position for position, count in enumerate(waiting_on) if count == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        position = heapq.heappop(ready)
        order.append(position)
        for dependent in dependents.get(siblings[position][0], ()):
            waiting_on[dependent] -= 1
            if waiting_on[dependent] == 0:
                heapq.heappush(ready, dependent)
    return order
