"""The :class:`~vibe_actors.store._database.Database` on PostgreSQL (psycopg 3, psycopg_pool).

One database holds every agent's tables, each agent in its own PostgreSQL
schema (namespace) named after it, so two agents of one kind (two state
agents) and the agents of different kinds never share a table. Replicas of
the gateway open the same namespaces: that is what makes their data one.

Statements: the stores write the SQL both backends run (``?`` placeholders,
``INSERT ... ON CONFLICT``); this module turns ``?`` into psycopg's ``%s``.
What cannot be written once (the tables' types, row locks) is the store's
own per-dialect text, chosen with :attr:`PostgresDatabase.dialect`.

Durability: a transaction is durable when ``COMMIT`` returns (the server's
``synchronous_commit``, on by default). Failures: a lost connection, a server
shutting down, a pool with no connection within ``timeout`` seconds, a
serialization failure or a deadlock are :class:`StoreError` (the agent
answers 503 and retries by itself, see :mod:`vibe_actors.store._health`); a
constraint or a value the server refuses is :class:`StoreRejected`. A
connection lost during ``COMMIT`` leaves the outcome unknown to the client:
it is reported as a failure (503), and the write may have been kept.

Schema versions: see :mod:`vibe_actors.store._migrations`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from vibe_actors.store._database import Schema, StoreError, StoreRejected
from vibe_actors.store._migrations import migrate
from vibe_actors.store._store_metrics import StoreMetrics
from vibe_actors.store._url import StoreLocation, conninfo_password

__all__ = ["PostgresDatabase", "check_postgres"]

#: PostgreSQL truncates identifiers past 63 bytes: a longer name would collide.
_MAX_NAMESPACE_BYTES = 63

_translated: dict[str, str] = {}


def _translate(statement: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (and a literal ``%`` escaped); cached."""
    found = _translated.get(statement)
    if found is None:
        found = statement.replace("%", "%%").replace("?", "%s")
        if len(_translated) < 4096:  # a store's statements are a small fixed set
            _translated[statement] = found
    return found


def check_postgres(location: StoreLocation, timeout: float = 5.0) -> None:
    """Connect once and run ``SELECT 1``; raises :class:`StoreError` saying why not.

    What a process does at start, before any agent, so that an unreachable
    database or a refused login is one clear line and exit code 1.
    """
    try:
        with psycopg.connect(location.url, connect_timeout=_whole(timeout)) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        raise StoreError(location.shown, f"cannot connect: {_reason(exc, location)}") from exc


def _whole(seconds: float) -> int:
    return max(1, round(seconds))


def _reason(exc: BaseException, location: StoreLocation) -> str:
    """The first line of a driver error, never quoting the password."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    password = conninfo_password(location.url)
    return text.replace(password, "***") if password else text


class PostgresDatabase:
    """One agent's tables, in the namespace ``namespace`` of the database at ``location``.

    Opening connects, brings the namespace to ``schema`` (its PostgreSQL
    migrations, see :mod:`vibe_actors.store._migrations`) and starts a pool of
    one connection (the agent's thread is its only user; the pool replaces a
    broken connection). Raises :class:`StoreError` naming the namespace if
    any of it fails. ``timeout``: seconds to wait for a connection.
    """

    dialect = "postgresql"
    shared = True

    def __init__(
        self,
        location: StoreLocation,
        namespace: str,
        schema: Schema,
        *,
        metrics: StoreMetrics | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.location = location
        self.namespace = namespace
        self.path = f"{location.shown}#{namespace}"
        self.timeout = timeout
        self.metrics = metrics
        if len(namespace.encode()) > _MAX_NAMESPACE_BYTES:
            raise StoreError(self.path, f"the agent's name is over {_MAX_NAMESPACE_BYTES} bytes")
        try:
            with psycopg.connect(location.url, connect_timeout=_whole(timeout)) as connection:
                migrate(connection, namespace, schema, self.path)
        except psycopg.Error as exc:
            raise StoreError(self.path, f"cannot open: {_reason(exc, location)}") from exc
        search_path = sql.SQL("SET search_path TO {}").format(sql.Identifier(namespace))

        def configure(connection: psycopg.Connection[Any]) -> None:
            connection.execute(search_path)

        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = ConnectionPool(
            location.url,
            min_size=1,
            max_size=1,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": _whole(timeout)},
            configure=configure,
            check=ConnectionPool.check_connection,
            timeout=timeout,
            num_workers=1,
            name=f"vibe:{namespace}",
        )
        self._pool.open(wait=False)
        if metrics is not None:
            metrics.track(namespace, self._pool)

    def __repr__(self) -> str:
        return f"PostgresDatabase({self.path!r})"

    def execute(self, statement: str, parameters: Sequence[Any] = (), /) -> _Result:
        pool = self.connections()
        try:
            with pool.connection(timeout=self.timeout) as connection:
                cursor = connection.execute(_translate(statement), parameters)
                rows = cursor.fetchall() if cursor.description is not None else []
                return _Result(rows, cursor.rowcount)
        except PoolTimeout as exc:
            self.count_failure("unavailable")
            raise StoreError(self.path, f"read failed: {self.no_connection()}") from exc
        except psycopg.Error as exc:
            self.count_failure("unavailable")
            raise StoreError(self.path, f"read failed: {_reason(exc, self.location)}") from exc

    def transaction(self) -> _Transaction:
        return _Transaction(self)

    def probe_write(self) -> None:
        with self.transaction() as connection:
            connection.execute(
                "INSERT INTO vibe_write_probe (id, n) VALUES (1, 1)"
                " ON CONFLICT (id) DO UPDATE SET n = vibe_write_probe.n + 1"
            )

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            if self.metrics is not None:
                self.metrics.untrack(self.namespace, pool)
            pool.close(timeout=self.timeout)

    def connections(self) -> ConnectionPool[psycopg.Connection[Any]]:
        """The pool (a bug to ask once closed)."""
        assert self._pool is not None, "the store is closed"
        return self._pool

    @property
    def live_pool(self) -> ConnectionPool[psycopg.Connection[Any]] | None:
        """The pool, None once closed."""
        return self._pool

    def no_connection(self) -> str:
        return f"no connection to the database within {self.timeout:g}s"

    def count_failure(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.errors.labels(agent=self.namespace, kind=kind).inc()


class _Transaction:
    """``BEGIN`` ... ``COMMIT`` on the pool's connection; errors typed as the protocol says."""

    __slots__ = ("_connection", "_db", "_started", "_transaction")

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    def __enter__(self) -> _Connection:
        db = self._db
        self._started = time.perf_counter()
        try:
            self._connection = db.connections().getconn(timeout=db.timeout)
        except PoolTimeout as exc:
            db.count_failure("unavailable")
            raise StoreError(db.path, f"cannot begin a write: {db.no_connection()}") from exc
        try:
            self._transaction = self._connection.transaction()
            self._transaction.__enter__()
        except psycopg.Error as exc:
            self._release()
            db.count_failure("unavailable")
            raise StoreError(db.path, f"cannot begin a write: {_reason(exc, db.location)}") from exc
        return _Connection(self._connection)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: Any
    ) -> None:
        db = self._db
        try:
            self._transaction.__exit__(kind, exc, traceback)
        except psycopg.Error as error:
            db.count_failure("unavailable")
            what = "commit failed" if exc is None else "write failed"
            raise StoreError(db.path, f"{what}: {_reason(error, db.location)}") from error
        finally:
            self._release()
        if exc is None:
            if db.metrics is not None:
                elapsed = time.perf_counter() - self._started
                db.metrics.transaction_seconds.labels(agent=db.namespace).observe(elapsed)
            return
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
            db.count_failure("unavailable")
            raise StoreError(db.path, f"write failed: {_reason(exc, db.location)}") from exc
        if isinstance(exc, psycopg.Error):  # the server refused a statement: not the storage
            db.count_failure("rejected")
            raise StoreRejected(db.path, _reason(exc, db.location)) from exc

    def _release(self) -> None:
        pool = self._db.live_pool
        if pool is not None:
            pool.putconn(self._connection)


class _Connection:
    """What a transaction's body runs its statements on (``?`` placeholders)."""

    __slots__ = ("_connection",)

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    def execute(self, statement: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        return self._connection.execute(_translate(statement), parameters)

    def executemany(
        self, statement: str, parameters: Iterable[Sequence[Any]], /
    ) -> psycopg.Cursor[Any]:
        cursor = self._connection.cursor()
        cursor.executemany(_translate(statement), parameters)
        return cursor


class _Result:
    """A read's rows, fetched before its connection went back to the pool."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = iter(rows)
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        return next(self._rows, None)

    def fetchall(self) -> list[Any]:
        return list(self._rows)

    def __iter__(self) -> Iterator[Any]:
        return self._rows
