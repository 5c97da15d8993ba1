"""The SQLite backend of the store seam (:mod:`vibe_actors.store._database`): one file per agent.

Every database is opened the same way: WAL journal, ``synchronous=FULL`` (a
committed transaction is on disk before the commit returns, so a reply sent
after the commit acknowledges a durable write), foreign keys on, and a
``quick_check`` at open so a corrupt or truncated file is found at start, not
halfway through serving. Then its :class:`~vibe_actors.store._database.Schema`
is applied; the schema version lives in the file's ``user_version``. Any
problem becomes :class:`~vibe_actors.store._database.StoreError`, which names
the file: the agent then degrades instead of failing the whole system's start.

:class:`SqliteDatabase` is the :class:`~vibe_actors.store._database.Database`
the stores use; :func:`open_database`, :func:`transaction` and
:func:`probe_write` are the same steps on a bare ``sqlite3`` connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from vibe_actors._files import private_dir, private_file, tighten
from vibe_actors.store._database import (
    Schema,
    StoreCorrupt,
    StoreError,
    StoreRejected,
    StoreVersionError,
)

__all__ = [
    "SqliteDatabase",
    "StoreError",
    "database_path",
    "open_database",
    "probe_write",
    "transaction",
]

#: The files SQLite keeps next to a database (WAL mode, or a rollback journal).
_COMPANION_SUFFIXES = ("-wal", "-shm", "-journal")


def database_path(data_dir: str | Path, agent_name: str) -> Path:
    """Where agent ``agent_name`` keeps its database: ``<data_dir>/<agent_name>.db``."""
    return Path(data_dir) / f"{agent_name}.db"


def open_database(path: Path, schema: Schema | str = "") -> sqlite3.Connection:
    """Open (creating if needed) the database at ``path`` and bring it to ``schema``.

    ``schema`` may be a bare script of ``CREATE ... IF NOT EXISTS`` statements
    (a :class:`Schema` with no upgrades). The connection is in autocommit
    mode: use :func:`transaction` for writes. It may be used from the thread
    that owns the agent only (SQLite's default check is kept).

    The directory and the file are private (0700 and 0600, see
    :mod:`vibe_actors._files`): the file is created before SQLite
    opens it, and SQLite gives its ``-wal``, ``-shm`` and ``-journal`` files
    the mode of the database file; existing ones left wider by an older
    version are tightened.

    Raises :class:`StoreError` naming ``path`` if the directory cannot be
    created or made private, the file cannot be created or made private, or
    WAL mode cannot be enabled; :class:`StoreCorrupt` if it is not a
    database, is corrupt or truncated; :class:`StoreVersionError` if it
    records a newer schema version than ``schema``.
    """
    _make_private(path)
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
            raise StoreCorrupt(path, f"database is corrupt ({verdict})")
        if schema:
            _apply_schema(connection, path, Schema(schema) if isinstance(schema, str) else schema)
    except (sqlite3.DatabaseError, StoreError) as exc:
        if connection is not None:
            connection.close()
        if isinstance(exc, StoreError):
            raise
        # An operational error (locked, read-only, I/O) may pass; a damaged file will not.
        kind = StoreError if isinstance(exc, sqlite3.OperationalError) else StoreCorrupt
        raise kind(path, f"not a usable SQLite database ({exc})") from exc
    return connection


def _make_private(path: Path) -> None:
    """Create the directory and the file of ``path`` private (or tighten them, and the
    file's companions); raises :class:`StoreError` naming what could not be."""
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


def _apply_schema(connection: sqlite3.Connection, path: Path, schema: Schema) -> None:
    """Bring the file to ``schema.version`` in one transaction (nothing to do: no write).

    Version 0 is a new file or one written before versions were recorded:
    it gets the tables (``IF NOT EXISTS``) and the legacy columns it lacks.
    """
    known = schema.version
    if (found := _user_version(connection)) == known:
        return
    if found > known:
        raise StoreVersionError(path, found, known)
    connection.execute("BEGIN IMMEDIATE")
    try:
        found = _user_version(connection)  # another process may have upgraded it meanwhile
        if found > known:
            raise StoreVersionError(path, found, known)
        if found == 0:
            _run_script(connection, schema.tables)
            for table, column, definition in schema.legacy_columns:
                columns = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
                if column not in columns:
                    connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
        for upgrade in schema.upgrades[max(found, 1) - 1 :]:
            _run_script(connection, upgrade)
        connection.execute(f"PRAGMA user_version = {known:d}")
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def _user_version(connection: sqlite3.Connection) -> int:
    return int(connection.execute("PRAGMA user_version").fetchone()[0])


def _run_script(connection: sqlite3.Connection, script: str) -> None:
    """Each statement of ``script`` in turn (``executescript`` would commit the transaction)."""
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \t\r\n;"):
                connection.execute(statement)
            statement = ""


def transaction(connection: sqlite3.Connection, path: Path) -> _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back if the body raises.

    When the block exits normally the transaction is durable. A failure of
    the storage anywhere in it (the begin, a statement of the body, the
    commit: a full disk, an I/O error, a locked or read-only file) raises
    :class:`StoreError` naming the file, and nothing of the transaction is
    kept; any other exception from the body (a constraint violated: a bug) is
    re-raised as is after the rollback.
    """
    return _Transaction(connection, path, typed=False)


class _Transaction:
    """The context manager of :func:`transaction` (a class: it is on every commit's path).

    ``typed``: a ``sqlite3`` error of the body that is not the storage's
    becomes :class:`StoreRejected` (what :meth:`SqliteDatabase.transaction` promises).
    """

    __slots__ = ("_connection", "_path", "_typed")

    def __init__(self, connection: sqlite3.Connection, path: Path, typed: bool) -> None:
        self._connection = connection
        self._path = path
        self._typed = typed

    def __enter__(self) -> sqlite3.Connection:
        try:
            self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(self._path, f"cannot begin a write: {exc}") from exc
        return self._connection

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: Any
    ) -> None:
        connection, path = self._connection, self._path
        if exc is None:
            try:
                connection.execute("COMMIT")
            except sqlite3.Error as error:
                _roll_back(connection, path)
                raise StoreError(path, f"commit failed: {error}") from error
            return
        _roll_back(connection, path)
        if isinstance(exc, sqlite3.OperationalError):
            raise StoreError(path, f"write failed: {exc}") from exc
        if self._typed and isinstance(exc, sqlite3.Error):  # not the storage's failure
            raise StoreRejected(str(path), str(exc)) from exc


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


class SqliteDatabase:
    """The :class:`~vibe_actors.store._database.Database` on one SQLite file.

    Opened (see :func:`open_database`) at construction, which raises
    :class:`StoreError` naming ``file`` if it cannot be used.
    """

    dialect = "sqlite"
    shared = False

    def __init__(self, file: Path, schema: Schema | str = "") -> None:
        self.file = file
        self.path = str(file)
        self._connection: sqlite3.Connection | None = open_database(file, schema)

    def __repr__(self) -> str:
        return f"SqliteDatabase({self.path!r})"

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> _Rows:
        try:
            return _Rows(self._open().execute(sql, parameters), self.path)
        except sqlite3.DatabaseError as exc:
            raise StoreError(self.path, f"read failed: {exc}") from exc

    def transaction(self) -> _Transaction:
        return _Transaction(self._open(), self.file, typed=True)

    def probe_write(self) -> None:
        probe_write(self._open(), self.file)

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _open(self) -> sqlite3.Connection:
        assert self._connection is not None, "the store is closed"
        return self._connection


class _Rows:
    """A cursor whose failures while fetching are :class:`StoreError` naming the file."""

    __slots__ = ("_cursor", "_path")

    def __init__(self, cursor: sqlite3.Cursor, path: str) -> None:
        self._cursor = cursor
        self._path = path

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchone(self) -> Any:
        try:
            return self._cursor.fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(self._path, f"read failed: {exc}") from exc

    def fetchall(self) -> list[Any]:
        try:
            return self._cursor.fetchall()
        except sqlite3.DatabaseError as exc:
            raise StoreError(self._path, f"read failed: {exc}") from exc

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from self._cursor
        except sqlite3.DatabaseError as exc:
            raise StoreError(self._path, f"read failed: {exc}") from exc
