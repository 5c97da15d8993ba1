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
from vibe_actors.agents._files import private_dir, private_file, tighten

__all__ = [
    "ClosesStore",
    "SqliteStore",
    "StoreError",
    "database_path",
    "degrade_for",
    "open_database",
    "probe_write",
    "transaction",
]

#: The files SQLite keeps next to a database (WAL mode, or a rollback journal).
_COMPANION_SUFFIXES = ("-wal", "-shm", "-journal")


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

    The directory and the file are private (0700 and 0600, see
    :mod:`vibe_actors.agents._files`): the file is created before SQLite
    opens it, and SQLite gives its ``-wal``, ``-shm`` and ``-journal`` files
    the mode of the database file; existing ones left wider by an older
    version are tightened.

    Raises :class:`StoreError` naming ``path`` if the directory cannot be
    created or made private, the file cannot be created or made private, is
    not a database, is corrupt or truncated, or WAL mode cannot be enabled.
    """
    try:
        private_dir(path.parent)
    except OSError as exc:
        reason = f"cannot create the data directory or make it private: {exc.strerror}"
        raise StoreError(path.parent, reason) from exc
    try:
        private_file(path)
        for suffix in _COMPANION_SUFFIXES:
            tighten(path.with_name(path.name + suffix))
    except OSError as exc:
        raise StoreError(path, f"cannot make the database file private: {exc.strerror}") from exc
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

    When the block exits normally the transaction is durable. A failure of
    the storage anywhere in it (the begin, a statement of the body, the
    commit: a full disk, an I/O error, a locked or read-only file) raises
    :class:`StoreError` naming the file, and nothing of the transaction is
    kept; any other exception from the body (a constraint violated: a bug) is
    re-raised as is after the rollback.
    """
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise StoreError(path, f"cannot begin a write: {exc}") from exc
    try:
        yield connection
    except sqlite3.OperationalError as exc:
        _roll_back(connection, path)
        raise StoreError(path, f"write failed: {exc}") from exc
    except BaseException:
        _roll_back(connection, path)
        raise
    try:
        connection.execute("COMMIT")
    except sqlite3.Error as exc:
        _roll_back(connection, path)
        raise StoreError(path, f"commit failed: {exc}") from exc


def _roll_back(connection: sqlite3.Connection, path: Path) -> None:
    """Undo what is left of a failed transaction (SQLite may have rolled it back itself:
    after SQLITE_FULL or an I/O error there may be no transaction left to end).

    Raises :class:`StoreError` if even the rollback fails.
    """
    if not connection.in_transaction:
        return
    try:
        connection.execute("ROLLBACK")
    except sqlite3.Error as exc:
        raise StoreError(path, f"rollback failed: {exc}") from exc


_PROBE_TABLE = "CREATE TABLE IF NOT EXISTS vibe_write_probe (id INTEGER PRIMARY KEY, n INTEGER)"
_PROBE_ROW = (
    "INSERT INTO vibe_write_probe (id, n) VALUES (1, 1)"
    " ON CONFLICT (id) DO UPDATE SET n = vibe_write_probe.n + 1"
)


def probe_write(connection: sqlite3.Connection, path: Path) -> None:
    """Commit a one-row write (can the file take writes again, after a full disk?).

    Raises :class:`StoreError` when it cannot.
    """
    with transaction(connection, path):
        connection.execute(_PROBE_TABLE)
        connection.execute(_PROBE_ROW)


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

    def probe_write(self) -> None:
        """A one-row durable write (see :func:`probe_write`); raises StoreError."""
        probe_write(self._conn(), self.path)

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
