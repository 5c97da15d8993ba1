"""The embedded store of the durable agents: one SQLite file per agent.

Every database is opened the same way: WAL journal, ``synchronous=FULL`` (a
committed transaction is on disk before the commit returns, so a reply sent
after the commit acknowledges a durable write), foreign keys on, and a
``quick_check`` at open so a corrupt or truncated file is found at start, not
halfway through serving. Any problem becomes :class:`StoreError`, which names
the file: the agent then degrades (:meth:`vibe_actors.Agent.degrade`) instead
of failing the whole system's start.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vibe_actors import Agent, VibeError

__all__ = [
    "ClosesStore",
    "SqliteStore",
    "StoreError",
    "database_path",
    "degrade_for",
    "open_database",
    "transaction",
]


class StoreError(VibeError):
    """A database file cannot be used; ``path`` names it and ``reason`` says why.

    Raised by :func:`open_database` (cannot create, open, check or migrate
    the file) and by :func:`transaction` (a commit failed: nothing of the
    transaction is durable).
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def database_path(data_dir: str | Path, agent_name: str) -> Path:
    """Where agent ``agent_name`` keeps its database: ``<data_dir>/<agent_name>.db``."""
    return Path(data_dir) / f"{agent_name}.db"


def open_database(path: Path, schema: str = "") -> sqlite3.Connection:
    """Open (creating if needed) the database at ``path`` and apply ``schema``.

    ``schema`` is a script of idempotent statements (``CREATE TABLE IF NOT
    EXISTS ...``). The connection is in autocommit mode: use
    :func:`transaction` for writes. It may be used from the thread that owns
    the agent only (SQLite's default check is kept).

    Raises :class:`StoreError` naming ``path`` if the directory cannot be
    created, the file is not a database, is corrupt or truncated, or WAL
    mode cannot be enabled.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(path.parent, f"cannot create the data directory: {exc.strerror}") from exc
    connection: sqlite3.Connection | None = None
    try:
        connection = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(path, f"cannot enable WAL journaling (journal mode is {mode})")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA foreign_keys=ON")
        verdict = connection.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise StoreError(path, f"database is corrupt ({verdict})")
        if schema:
            connection.executescript(schema)
    except sqlite3.DatabaseError as exc:
        if connection is not None:
            connection.close()
        raise StoreError(path, f"not a usable SQLite database ({exc})") from exc
    except StoreError:
        if connection is not None:
            connection.close()
        raise
    return connection


@contextmanager
def transaction(connection: sqlite3.Connection, path: Path) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back if the body raises.

    When the block exits normally the transaction is durable. A failing
    commit raises :class:`StoreError` (nothing of it is kept); an exception
    from the body is re-raised after the rollback.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    try:
        connection.execute("COMMIT")
    except sqlite3.Error as exc:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise StoreError(path, f"commit failed: {exc}") from exc


def degrade_for(agent: Agent, error: StoreError) -> None:
    """Log that ``agent``'s store is unusable and degrade it (see :meth:`Agent.degrade`).

    What every durable agent does when its file cannot be opened at start:
    the agent answers ``Unavailable`` naming the file, the rest of the system
    runs, and the next incarnation tries the file again.
    """
    agent.log.error("store_unavailable", path=error.path, error=error.reason)
    agent.degrade(str(error))


class SqliteStore:
    """Base of an agent's store: one database file, opened at construction, closed once.

    Raises :class:`StoreError` from ``__init__`` if the file cannot be used.
    Subclasses reach the connection through :meth:`_conn`, which fails loudly
    (AssertionError) once the store is closed.
    """

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = open_database(path, schema)

    def close(self) -> None:
        """Close the file; later calls do nothing."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def _conn(self) -> sqlite3.Connection:
        assert self._db is not None, "the store is closed"
        return self._db


class ClosesStore:
    """Mixin for an agent that keeps its store in ``self._store``: closed when the
    incarnation ends, by a stop or a crash (put it before ``Agent`` in the bases).

    An agent with more to do on stop overrides ``on_stop`` and calls ``_close``.
    """

    _store: Any

    def on_stop(self) -> None:
        self._close()

    def on_failure(self, error: BaseException) -> None:
        self._close()

    def _close(self) -> None:
        store, self._store = getattr(self, "_store", None), None
        if store is not None:
            store.close()
