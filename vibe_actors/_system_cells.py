"""The cell registry of the embedding API (:class:`~vibe_actors.ActorSystem`): a cell per
name, made routable when made (an agent, a pool behind its router, an entity kind behind its
router and shards) and forgotten when removed for good."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from vibe_actors._cell import Cell
from vibe_actors._dynamic import DynamicSupervisor
from vibe_actors._entity_kind import EntityRouter, ShardSettings, entity_supervisor
from vibe_actors._errors import NameTaken
from vibe_actors._router import Router
from vibe_actors._signals import AgentStatus, ChildExited
from vibe_actors._spec import SupervisorSpec, WorkerSpec
from vibe_actors._supervisor import Supervisor
from vibe_actors._tree import pool_supervisor

if TYPE_CHECKING:
    from vibe_actors._route_table import RouteTable
    from vibe_actors._runtime import Runtime

__all__ = ["CellRegistry"]


class CellRegistry:
    """Mixed into :class:`~vibe_actors.ActorSystem`."""

    routes: RouteTable
    _cells: dict[str, Cell]
    _lock: threading.RLock
    _root_exited: Callable[[ChildExited], None]

    def make_cell(
        self, spec: WorkerSpec | SupervisorSpec, parent: Cell | None, *, exclusive: bool = False
    ) -> Cell:
        """A new cell for ``spec`` under ``parent`` (a supervisor's, when it starts a child),
        registered and routable; not started.

        Raises :class:`NameTaken` (a ValueError) if a live agent has the name, or with
        ``exclusive`` (a dynamic child) if any agent has it, stopped ones included.
        """
        system = cast("Runtime", self)  # the ActorSystem this is mixed into
        with self._lock:
            held = self._cells.get(spec.name)
            if held is not None and (exclusive or held.status is not AgentStatus.STOPPED):
                raise NameTaken(spec.name, held.path)
            if exclusive and spec.name in self.routes:
                raise NameTaken(spec.name)
            if isinstance(spec, SupervisorSpec):
                kind = DynamicSupervisor if spec.dynamic else Supervisor
                cell = Cell(system, spec, kind, spec, parent, self._root_exited)
            elif spec.pool is not None:
                pool = pool_supervisor(spec, parent)
                cell = Cell(system, pool, Supervisor, None, parent, self._root_exited)
                cell.config = cell.spec
                self.routes.add(spec.name, Router(spec.name, spec.pool, cell))
            elif spec.entity is not None:
                parent_spec = parent.spec if parent is not None else None
                shards, stats = entity_supervisor(
                    spec, parent_spec if isinstance(parent_spec, SupervisorSpec) else None
                )
                cell = Cell(system, shards, Supervisor, None, parent, self._root_exited)
                cell.config = cell.spec
                self.routes.add(spec.name + "/", EntityRouter(spec.name, spec, cell, stats))
            else:
                cell = Cell(system, spec, spec.agent, spec.config, parent, self._root_exited)
            self._cells[spec.name] = cell
            if spec.name not in self.routes:
                self.routes.add(spec.name, cell)
            if isinstance(cell.config, ShardSettings):  # an entity kind's shard: refs send here
                self.routes.add(cell.config.route, cell)
            if parent is not None:
                parent.children[spec.name] = cell
            return cell

    def forget(self, cell: Cell) -> None:
        """Unregister ``cell`` and its descendants (a supervisor removing a child for good);
        sends to their names are undeliverable from now on."""
        with self._lock:
            for child in cell.children.values():
                self.forget(child)
            if self._cells.get(cell.name) is cell:
                del self._cells[cell.name]
                self.routes.remove(cell.name)
                self.routes.remove(cell.name + "/")  # an entity kind's router, if it was one
                if isinstance(cell.config, ShardSettings):
                    self.routes.remove(cell.config.route, cell)
