"""What a durable kind's writer queues and decides (:mod:`vibe_actors._entity_writer`).

A hand-over is one message's write and reply; a turn is what one transaction
carries; :func:`plan` splits what was queued into the rows to write and the
hand-overs refused because an earlier change of their entity was lost (a
failed commit) or conflicted (another replica wrote it first).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

if TYPE_CHECKING:
    from vibe_actors._entity_store import Write
    from vibe_actors._host import Deferred
    from vibe_actors._mailbox import Mailbox

__all__ = [
    "Forgive",
    "HandOver",
    "SaveFailed",
    "ShardAgent",
    "ShardSlot",
    "Turn",
    "WriterStore",
    "plan",
]


class SaveFailed(msgspec.Struct, frozen=True):
    """To a shard: these entities' changes were not saved (drop them, then forgive).

    ``conflict``: not a failure of the store but a newer state written by another
    replica (the shard is not impaired; the entities are dropped all the same).
    """

    ids: tuple[str, ...]
    reason: str
    conflict: bool = False


class WriterStore(Protocol):
    """What the writer needs of a kind's store (:class:`EntityStateStore` is one)."""

    @property
    def path(self) -> str: ...  # pragma: no cover - protocol

    def put_many(
        self, writes: dict[str, Write]
    ) -> Collection[str]: ...  # pragma: no cover - protocol

    def close(self) -> None: ...  # pragma: no cover - protocol


@dataclass(eq=False, slots=True)
class HandOver:
    """One hand-over: a write (``state`` None: a reply only) and the reply waiting on it."""

    shard: int
    incarnation: int
    entity_id: str
    state: bytes | None
    #: The version ``state`` gets when written (its activation's version + 1).
    version: int
    reply: Deferred | None
    result: Any
    #: The ``unsaved`` entry this write counts in (None for a reply only).
    entry: list[Any] | None


@dataclass(eq=False, slots=True)
class Forgive:
    """Queued by a shard once it dropped ``ids``: their later hand-overs are accepted again."""

    ids: tuple[str, ...]


class _ShardCell(Protocol):
    @property
    def mailbox(self) -> Mailbox: ...


class ShardAgent(Protocol):
    """What the writer needs of a shard (:class:`~vibe_actors._entity_shard.Shard`): to
    report the store impaired or well, and its cell's mailbox for ``SaveFailed``."""

    def impair(self, reason: str | None) -> None: ...

    @property
    def shard_cell(self) -> _ShardCell: ...


@dataclass(eq=False)
class ShardSlot:
    """A shard of the kind, as the writer knows it: its current incarnation."""

    agent: ShardAgent
    incarnation: int


@dataclass(eq=False)
class Turn:
    """What one transaction carries, and what it decided."""

    items: list[HandOver] = field(default_factory=list)
    #: id -> (newest state, the version the first write built on, the newest version).
    rows: dict[str, Write] = field(default_factory=dict)
    #: Hand-overs refused without being written: and whether for a conflict.
    refused: list[tuple[HandOver, bool]] = field(default_factory=list)
    #: Ids the store did not write because another replica wrote them first.
    conflicts: Collection[str] = ()


def plan(queued: list[HandOver | Forgive], poisoned: dict[str, bool]) -> Turn:
    """Split ``queued`` into what is written and what is refused; ``poisoned``: the ids
    whose change was lost (True: by a conflict) until their shard forgives them (updated)."""
    turn = Turn()
    rows = turn.rows
    for item in queued:
        if isinstance(item, Forgive):
            for entity_id in item.ids:
                poisoned.pop(entity_id, None)
            continue
        entity_id = item.entity_id
        cause = poisoned.get(entity_id)
        if cause is not None:
            turn.refused.append((item, cause))
            continue
        turn.items.append(item)
        state = item.state
        if state is not None:
            row = rows.get(entity_id)
            # The newest state of an id wins; the version expected is the one the first built on.
            expected = item.version - 1 if row is None else row[1]
            rows[entity_id] = (state, expected, item.version)
    return turn
