"""The store seam: what a durable agent's store needs from its database, whatever the backend.

An agent sees only its store's methods (``StateStore.put``, ``LedgerStore.commit``...)
and the typed errors below; it never sees SQL nor a driver's exceptions. A store
module (``_state_store.py``, ``_ledger_store.py``...) keeps its own tables (a
:class:`Schema`) and its queries, and runs them on a :class:`Database`:

* :meth:`Database.transaction`: a write, durable when the block exits. Group
  commit is the agent batching many requests' rows into one transaction (the
  ledger's appends, the jobs' submissions): one durable commit for all of them;
* :meth:`Database.execute`: a read outside any transaction;
* :meth:`Database.probe_write`: can it take a write again (after a full disk)?;
* :meth:`Database.close`.

Two implementations: SQLite (:mod:`vibe_actors.store._sqlite`, one file per
agent, the default) and PostgreSQL (:mod:`vibe_actors.store._postgres`, one
database shared by every replica); the one place a backend is chosen is
:func:`vibe_actors.store._store.open_store`. A store's statements use ``?``
placeholders and the SQL both run (``INSERT ... ON CONFLICT``); where the
dialects differ (types, ``WITHOUT ROWID``, row locks) the store picks by
:attr:`Database.dialect`, and names its PostgreSQL tables in
:attr:`Schema.postgres`. A store whose schema has none keeps its SQLite file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from vibe_actors import VibeError

__all__ = [
    "Connection",
    "Database",
    "Rows",
    "Schema",
    "StoreCorrupt",
    "StoreError",
    "StoreRejected",
    "StoreVersionError",
]


# -- errors ------------------------------------------------------------------------------


class StoreError(VibeError):
    """The store cannot be used or written now; ``path`` names it and ``reason`` says why.

    Raised when a database cannot be created, opened, checked or upgraded
    (the agent degrades, see :func:`~vibe_actors.store._store.degrade_for`),
    and when a write fails for want of storage (a full disk, an I/O error, a
    locked or read-only file: nothing of its transaction is kept; the agent
    answers 503 and probes, see :mod:`vibe_actors.store._health`).
    A read that fails raises it too.
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class StoreCorrupt(StoreError):
    """The data is damaged: not a database at all, or it fails its integrity check at open.

    Waiting does not cure it; restoring a backup does.
    """


class StoreVersionError(StoreError):
    """The database records a schema version (``found``) newer than this code knows (``known``):
    a newer version of vibe-actors wrote it, and this one must not guess at its tables."""

    def __init__(self, path: Path | str, found: int, known: int) -> None:
        super().__init__(
            path,
            f"schema version {found} is newer than this version of vibe-actors knows ({known}): "
            "run the version that wrote it, or restore a backup",
        )
        self.found = found
        self.known = known


class StoreRejected(VibeError):
    """A write the store refused, or could not run, for a reason waiting will not cure: a
    constraint, a value it cannot hold, data found damaged mid-transaction.

    The transaction was rolled back; the data is as before. Deliberately not a
    :class:`StoreError`: the storage itself works, so an agent does not answer it
    503 nor probe; unless the agent has an answer of its own (the jobs agent:
    not saved; the ledger: unavailable) it is a bug and crashes the incarnation,
    whose restart checks the database again. ``path`` and ``reason`` as for
    :class:`StoreError`.
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


# -- the schema --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Schema:
    """A store's tables, and the version recorded with them in the database.

    ``tables`` creates version 1 (the tables as they stood when versions began
    to be recorded); ``upgrades[n - 2]`` brings version ``n - 1`` to ``n``, so
    the code knows version ``1 + len(upgrades)``. A new database gets
    ``tables`` and every upgrade, in one transaction with its version; an
    older one gets the upgrades it lacks; a newer one is refused
    (:class:`StoreVersionError`). ``legacy_columns`` are ``(table, column,
    definition)`` that a database written before versions were recorded may
    lack: they are added when it is first opened.

    ``postgres`` is the same store's tables on PostgreSQL, as migrations:
    ``postgres[n - 1]`` brings its namespace from version ``n - 1`` to ``n``
    (see :mod:`vibe_actors.store._migrations`). Empty: the store does not run
    on PostgreSQL yet, and keeps its SQLite file whatever the system's store.
    """

    tables: str
    upgrades: tuple[str, ...] = ()
    legacy_columns: tuple[tuple[str, str, str], ...] = ()
    postgres: tuple[str, ...] = ()

    @property
    def version(self) -> int:
        return 1 + len(self.upgrades)


# -- the interface -----------------------------------------------------------------------


class Rows(Protocol):
    """What a statement gives back (a DB-API cursor): its rows, and how many rows it changed."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """Where the statements of a transaction run (what :meth:`Database.transaction` yields)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Rows: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Rows: ...


class Database(Protocol):
    """One agent's database, opened (and brought to its :class:`Schema`) at construction.

    Used from the agent's thread only. Opening raises :class:`StoreError`
    (:class:`StoreCorrupt`, :class:`StoreVersionError`) naming it.
    """

    @property
    def path(self) -> str:
        """Where the data is, as shown to operators (a file's path; never a password)."""
        ...

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``: which SQL a store writes where dialects differ."""
        ...

    @property
    def shared(self) -> bool:
        """Whether other processes (replicas) write the same data: a store then locks the
        rows it decides on, and re-reads what it keeps in memory."""
        ...

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Rows:
        """Run one statement outside any transaction (a read).

        A failure, running it or fetching its rows, raises :class:`StoreError`.
        """
        ...

    def transaction(self) -> AbstractContextManager[Connection]:
        """A write: durable when the block exits normally, rolled back if it raises.

        A failure of the storage (begin, a statement, the commit) raises
        :class:`StoreError` and a statement the store refuses
        :class:`StoreRejected`; nothing of the transaction is kept. Any other
        exception from the block is re-raised as is after the rollback.
        """
        ...

    def probe_write(self) -> None:
        """Commit a one-row write of the scaffold's own; raises :class:`StoreError` if it cannot."""
        ...

    def close(self) -> None:
        """Release the database; later calls do nothing, any other use is a bug."""
        ...
