"""Schema versions on PostgreSQL: applied at start, once, whoever starts first.

A store's PostgreSQL tables are a list of migrations
(:attr:`~vibe_actors.store._database.Schema.postgres`): migration ``n``
brings its namespace from version ``n - 1`` to ``n``. Each applied one is a
row of ``public.vibe_schema_migrations (store, version, applied_at)``.

At start every agent runs :func:`migrate` in one transaction holding a
transaction-scoped advisory lock (``pg_advisory_xact_lock``): two replicas
starting at once take turns, and the second finds the work done. A
namespace that records a version newer than the code knows is refused with
:class:`~vibe_actors.store._database.StoreVersionError` (the agent degrades
naming it; the gateway's start check reports it as one line). A failing
migration rolls back entirely: nothing of it, nor its row, is kept.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from vibe_actors.store._database import Schema, StoreVersionError

__all__ = ["MIGRATIONS_TABLE", "migrate", "recorded_version"]

MIGRATIONS_TABLE = "public.vibe_schema_migrations"
#: The advisory lock every migration holds (ASCII "vibe-mig"): one migration at a time.
_LOCK = 0x766962652D6D6967

_CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
    store TEXT NOT NULL,
    version INTEGER NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (store, version)
)
"""
#: What every namespace has besides its store's tables: the health probe's row.
_PROBE_TABLE = "CREATE TABLE vibe_write_probe (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)"


def recorded_version(connection: psycopg.Connection[Any], namespace: str) -> int:
    """The last migration applied to ``namespace`` (0: none)."""
    found = connection.execute(
        f"SELECT coalesce(max(version), 0) FROM {MIGRATIONS_TABLE} WHERE store = %s",  # nosec B608
        (namespace,),
    ).fetchone()
    return int(found[0]) if found is not None else 0


def migrate(connection: psycopg.Connection[Any], namespace: str, schema: Schema, path: str) -> int:
    """Bring ``namespace`` to ``schema``'s PostgreSQL version; returns how many were applied.

    Raises :class:`StoreVersionError` if it records a newer version, and
    ``psycopg.Error`` (the caller types it) if the database refuses.
    """
    known = len(schema.postgres)
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        connection.execute(_CREATE_TABLE)
        found = recorded_version(connection, namespace)
        if found > known:
            raise StoreVersionError(path, found, known)
        if found == known:
            return 0
        name = sql.Identifier(namespace)
        connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
        connection.execute(sql.SQL("SET LOCAL search_path TO {}").format(name))
        if found == 0:
            connection.execute(_PROBE_TABLE)
        for version in range(found + 1, known + 1):
            connection.execute(schema.postgres[version - 1].encode())
            connection.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (store, version) VALUES (%s, %s)",  # nosec B608
                (namespace, version),
            )
    return known - found
