"""The base of every agent's store, and how an agent opens, degrades on and closes one.

A store module subclasses :class:`Store`, names its tables in ``schema`` and
writes its queries against ``self._db`` (a
:class:`~vibe_actors.store._database.Database`); an agent gets its store from
:func:`open_store`, degrades with :func:`degrade_for` when it cannot, and
closes it with :class:`ClosesStore`. Nothing here depends on the backend but
:func:`open_store`, the one place that chooses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, TypeVar

from vibe_actors import Agent
from vibe_actors.store._database import Database, Schema, StoreError
from vibe_actors.store._postgres import PostgresDatabase, check_postgres
from vibe_actors.store._sqlite import SqliteDatabase, database_path
from vibe_actors.store._store_metrics import build_store_metrics
from vibe_actors.store._url import StoreLocation, StoreUrlError, parse_store_url

__all__ = ["ClosesStore", "Store", "check_store", "degrade_for", "open_store", "store_in_use"]

S = TypeVar("S", bound="Store")


class Store:
    """Base of an agent's store: its tables (``schema``) on one database, closed once.

    Constructed with an open :class:`~vibe_actors.store._database.Database`, or
    with the path of a SQLite file (opened with ``schema``); raises
    :class:`StoreError` if it cannot be used. Use from the agent's thread only.
    """

    #: The store's tables and their version.
    schema: ClassVar[Schema]

    def __init__(self, database: Database | Path) -> None:
        if isinstance(database, Path):
            database = SqliteDatabase(database, self.schema)
        self._db: Database = database

    @property
    def path(self) -> str:
        """Where the data is (the file), for messages."""
        return self._db.path

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._db.dialect

    @property
    def shared(self) -> bool:
        """Whether other replicas write the same data (see ``Database.shared``)."""
        return self._db.shared

    def probe_write(self) -> None:
        """A one-row durable write (is the store writable again?); raises StoreError."""
        self._db.probe_write()

    def close(self) -> None:
        """Release the database; later calls do nothing."""
        self._db.close()


def open_store(kind: type[S], agent: Agent[Any], *, namespace: str | None = None) -> S:
    """``agent``'s store of class ``kind`` on the system's backend; raises :class:`StoreError`.

    The one place a backend is chosen, from the system's ``store`` (see
    :mod:`vibe_actors.store._url`): PostgreSQL, in the namespace named after
    the agent, when the URL names it and ``kind`` has PostgreSQL tables;
    else the SQLite file ``database_path(data_dir, agent.name)`` (a store not
    yet on PostgreSQL logs ``store_kept_local`` once per start: its data is
    this replica's own). Counted in ``vibe_store_info``.

    ``namespace`` names the data instead of the agent's name, for a store that
    several agents share (the shards of an entity kind and its writer each open
    ``entities.<kind>``); ``vibe_store_info`` still names the agent, the
    PostgreSQL pool's metrics name the namespace.
    """
    config = agent.system.config
    name = agent.name if namespace is None else namespace
    metrics = agent.system.shared_metrics("store", build_store_metrics)
    try:
        location = parse_store_url(config.store)
    except StoreUrlError as exc:
        raise StoreError("store", str(exc)) from exc
    database: Database
    if location.shared and kind.schema.postgres:
        database = PostgresDatabase(location, name, kind.schema, metrics=metrics)
    else:
        if location.shared:
            agent.log.warning("store_kept_local", backend="sqlite", shared=location.shown)
        database = SqliteDatabase(database_path(config.data_dir, name), kind.schema)
    where = _where(database)
    metrics.info.labels(agent=agent.name, backend=database.dialect, location=where).set(1)
    metrics.used[agent.name] = where if database.shared else f"sqlite:{where}"
    return kind(database)


def store_in_use(system: Any, agent: str) -> str | None:
    """Where ``agent`` of ``system`` keeps its store: ``sqlite:<file>`` or the PostgreSQL
    URL without its password; None if it has not opened one (it keeps no data)."""
    used: str | None = system.shared_metrics("store", build_store_metrics).used.get(agent)
    return used


def check_store(url: str, timeout: float = 5.0) -> StoreLocation:
    """The backend ``url`` names, checked as a process checks it at start.

    Raises :class:`StoreUrlError` (the URL is malformed) or :class:`StoreError`
    (the database cannot be reached or refuses the login), each one line
    without the password. SQLite is checked by each agent when it opens its file.
    """
    location = parse_store_url(url)
    if location.shared:
        check_postgres(location, timeout)
    return location


def _where(database: Database) -> str:
    return database.path.rpartition("#")[0] if database.shared else database.path


def degrade_for(agent: Agent[Any], error: StoreError) -> None:
    """Log that ``agent``'s store is unusable and degrade it (see :meth:`Agent.degrade`).

    What every durable agent does when its store cannot be opened at start:
    the agent answers ``Unavailable`` naming the store, the rest of the
    system runs, and the next incarnation tries it again.
    """
    agent.log.error("store_unavailable", path=error.path, error=error.reason)
    agent.degrade(str(error))


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
