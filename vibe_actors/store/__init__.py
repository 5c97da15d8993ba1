"""The store seam: what a durable agent keeps in its database, whatever the backend.

An agent's store subclasses :class:`Store`, names its tables in a
:class:`Schema` and runs its queries on a :class:`Database`; the agent gets
it from :func:`open_store` (the one place a backend is chosen: the SQLite
files of :class:`SqliteDatabase`, or the PostgreSQL database of
:class:`PostgresDatabase` that every replica shares, from the system's
``store`` URL: :func:`parse_store_url`, :func:`check_store`), degrades with :func:`degrade_for` when it cannot be
opened, closes it with :class:`ClosesStore`, answers a write that failed for
want of storage with :class:`GuardedWrites` (503, probing until writes
succeed again), and batches many requests' writes into one durable
transaction with :class:`GroupCommit`. Every failure is one of the typed
errors below: :class:`StoreError` (the storage: a full disk, a locked or
unreadable file; :class:`StoreCorrupt`, :class:`StoreVersionError`) or
:class:`StoreRejected` (a write the store refused; waiting will not cure it).
"""

from __future__ import annotations

from vibe_actors.store._database import (
    Connection,
    Database,
    Rows,
    Schema,
    StoreCorrupt,
    StoreError,
    StoreRejected,
    StoreVersionError,
)
from vibe_actors.store._group_commit import Acknowledgement, BatchNotCommitted, GroupCommit
from vibe_actors.store._health import GuardedWrites, StorageUnavailable
from vibe_actors.store._postgres import PostgresDatabase
from vibe_actors.store._sqlite import SqliteDatabase, database_path
from vibe_actors.store._store import (
    ClosesStore,
    Store,
    check_store,
    degrade_for,
    open_store,
    store_in_use,
)
from vibe_actors.store._url import StoreLocation, StoreUrlError, parse_store_url

__all__ = [
    "Acknowledgement",
    "BatchNotCommitted",
    "ClosesStore",
    "Connection",
    "Database",
    "GroupCommit",
    "GuardedWrites",
    "PostgresDatabase",
    "Rows",
    "Schema",
    "SqliteDatabase",
    "StorageUnavailable",
    "Store",
    "StoreCorrupt",
    "StoreError",
    "StoreLocation",
    "StoreRejected",
    "StoreUrlError",
    "StoreVersionError",
    "check_store",
    "database_path",
    "degrade_for",
    "open_store",
    "parse_store_url",
    "store_in_use",
]
