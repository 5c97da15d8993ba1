"""Routers: a pool of identical workers behind one name, routed in the sender's thread.

No router actor sits in between (Akka's pool routers add a hop): the ref
picks a worker cell and puts the envelope straight into its mailbox.
"""

from __future__ import annotations

import bisect
import itertools
import zlib
from typing import TYPE_CHECKING

from vibe_actors._spec import PoolSpec, Routing

if TYPE_CHECKING:
    from vibe_actors._cell import Cell
    from vibe_actors._envelope import Envelope

__all__ = ["Router"]

_VIRTUAL_NODES = 64


def _hash(text: str) -> int:
    return zlib.crc32(text.encode())


def _load(cell: Cell) -> int:
    """Messages queued for ``cell`` plus the one it is handling, if any.

    Counting the message in progress makes an idle worker (load 0) win over one
    busy with a long message and an empty queue (load 1), as Akka's
    SmallestMailbox prefers idle routees. Read without a lock: a snapshot.
    """
    host = cell.host
    in_progress = 0 if host is None or host.current is None else 1
    return cell.mailbox.qsize() + in_progress


class Router:
    """Delivers to one of the pool's worker cells.

    * round_robin: in turn;
    * least_loaded: the fewest messages queued plus in progress, so an idle
      worker wins over a busy one (ties broken round-robin);
    * consistent_hash: by the message field ``hash_key`` on a ring of virtual
      nodes, so the same key always reaches the same worker while the pool's
      size is unchanged; a message without that field goes round-robin.
    """

    #: A pool never answers in the asker's thread (see Cell.ask_inline).
    ask_inline = None

    def __init__(self, name: str, pool: PoolSpec, pool_cell: Cell) -> None:
        self.name = name
        self.pool = pool
        self._pool_cell = pool_cell
        self._counter = itertools.count()
        self._workers: list[Cell] = []
        self._ring: list[int] = []
        self._ring_cells: list[Cell] = []
        strategy = {
            Routing.ROUND_ROBIN: self._round_robin,
            Routing.LEAST_LOADED: self._least_loaded,
            Routing.CONSISTENT_HASH: self._consistent_hash,
        }[pool.routing]
        self._pick = strategy

    @property
    def workers(self) -> list[Cell]:
        """The worker cells, in pool order."""
        if len(self._workers) != len(self._pool_cell.children):
            self._workers = list(self._pool_cell.children.values())
            points = sorted(
                (_hash(f"{cell.name}#{i}"), n)
                for n, cell in enumerate(self._workers)
                for i in range(_VIRTUAL_NODES)
            )
            self._ring = [point for point, _ in points]
            self._ring_cells = [self._workers[n] for _, n in points]
        return self._workers

    def deliver(self, envelope: Envelope) -> None:
        """Route ``envelope`` to a worker (dead-lettered by the pool if none exists)."""
        workers = self.workers
        if not workers:
            self._pool_cell.deliver(envelope)
            return
        self._pick(workers, envelope).deliver(envelope)

    def pick(self, envelope: Envelope) -> Cell:
        """The worker ``envelope`` would go to now (the pool's cell if it has none)."""
        workers = self.workers
        return self._pick(workers, envelope) if workers else self._pool_cell

    def qsize(self) -> int:
        """Messages queued across all workers."""
        return sum(cell.mailbox.qsize() for cell in self.workers)

    def _round_robin(self, workers: list[Cell], envelope: Envelope) -> Cell:
        return workers[next(self._counter) % len(workers)]

    def _least_loaded(self, workers: list[Cell], envelope: Envelope) -> Cell:
        start = next(self._counter) % len(workers)
        best = workers[start]
        best_load = _load(best)
        if best_load == 0:
            return best
        for cell in itertools.chain(workers[start + 1 :], workers[:start]):
            load = _load(cell)
            if load < best_load:
                best, best_load = cell, load
                if load == 0:
                    break  # idle: nothing can beat it
        return best

    def _consistent_hash(self, workers: list[Cell], envelope: Envelope) -> Cell:
        key = getattr(envelope.message, self.pool.hash_key or "", None)
        if key is None:
            return self._round_robin(workers, envelope)
        index = bisect.bisect(self._ring, _hash(str(key))) % len(self._ring)
        return self._ring_cells[index]
