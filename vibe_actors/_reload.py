"""Live reload: the difference between a running supervisor's spec and a new one.

Erlang's release handler is the model: only what changed is touched. The
diff is a pure function over two child lists; the supervisor applies it in
its own thread (see ``Supervisor._apply``):

1. removed children are stopped, last-started first, and forgotten;
2. changed workers are stopped and started again with their new spec, keeping
   their name, their refs and their queued messages;
3. nested supervisors present in both are updated in place (their own
   settings, then the same diff one level down), so their unchanged children
   keep running;
4. added children are started in their new position's order.
"""

from __future__ import annotations

import msgspec

from vibe_actors._spec import SupervisorSpec, WorkerSpec

__all__ = ["ApplyReport", "ApplySpec", "ChildDiff", "diff_children", "same_settings"]


class ApplyReport(msgspec.Struct, frozen=True):
    """What :meth:`ActorSystem.apply` did, by agent name (nested levels included)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    #: ``"name: reason"`` for each child that failed to start during the reload.
    failed: tuple[str, ...] = ()

    def merge(self, other: ApplyReport) -> ApplyReport:
        return ApplyReport(
            added=self.added + other.added,
            removed=self.removed + other.removed,
            changed=self.changed + other.changed,
            unchanged=self.unchanged + other.unchanged,
            failed=self.failed + other.failed,
        )


class ApplySpec:
    """Internal signal: a supervisor is to take ``spec`` as its new spec."""

    __slots__ = ("spec",)

    def __init__(self, spec: SupervisorSpec) -> None:
        self.spec = spec


class ChildDiff(msgspec.Struct, frozen=True):
    """Names by fate. ``nested`` are supervisors present in both, to update in place."""

    removed: tuple[str, ...]
    added: tuple[str, ...]
    changed: tuple[str, ...]
    nested: tuple[str, ...]
    unchanged: tuple[str, ...]


def same_settings(old: SupervisorSpec, new: SupervisorSpec) -> bool:
    """Whether two supervisor specs differ only in their children."""
    return msgspec.structs.replace(old, children=()) == msgspec.structs.replace(new, children=())


def diff_children(
    old: tuple[WorkerSpec | SupervisorSpec, ...], new: tuple[WorkerSpec | SupervisorSpec, ...]
) -> ChildDiff:
    """Compare two child lists by name.

    A child whose kind changed (worker <-> supervisor, or a supervisor that
    turned dynamic or static) counts as removed and added: a supervisor that
    stops being dynamic loses its dynamic children. ``removed`` is in reverse old order (the order to stop them); the
    other tuples follow the new order.
    """
    old_by_name = {spec.name: spec for spec in old}
    new_by_name = {spec.name: spec for spec in new}
    removed, added, changed, nested, unchanged = [], [], [], [], []
    for spec in reversed(old):
        replacement = new_by_name.get(spec.name)
        if replacement is None or not _same_kind(spec, replacement):
            removed.append(spec.name)
    for spec in new:
        previous = old_by_name.get(spec.name)
        if previous is None or not _same_kind(previous, spec):
            added.append(spec.name)
        elif isinstance(spec, SupervisorSpec):
            nested.append(spec.name)
        elif previous == spec:
            unchanged.append(spec.name)
        else:
            changed.append(spec.name)
    return ChildDiff(tuple(removed), tuple(added), tuple(changed), tuple(nested), tuple(unchanged))


def _same_kind(old: WorkerSpec | SupervisorSpec, new: WorkerSpec | SupervisorSpec) -> bool:
    """Worker and worker, or supervisors both dynamic or both not."""
    if isinstance(old, SupervisorSpec) and isinstance(new, SupervisorSpec):
        return old.dynamic == new.dynamic
    return type(old) is type(new)
