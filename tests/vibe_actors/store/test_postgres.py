"""The PostgreSQL backend: the store URL, migrations under the advisory lock, typed errors,
and an agent that degrades while the database is out of reach and recovers by itself."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from vibe_actors import WorkerSpec
from vibe_actors.agents.state import Get, Put, State, Stored
from vibe_actors.store import (
    PostgresDatabase,
    Schema,
    StorageUnavailable,
    StoreError,
    StoreRejected,
    StoreUrlError,
    StoreVersionError,
    check_store,
    parse_store_url,
)
from vibe_actors.store._migrations import MIGRATIONS_TABLE

from tests.conftest import wait_until
from tests.postgres import database_url

THINGS = Schema(
    "CREATE TABLE IF NOT EXISTS things (n INTEGER PRIMARY KEY)",
    postgres=(
        "CREATE TABLE things (n INTEGER PRIMARY KEY)",
        "ALTER TABLE things ADD COLUMN label TEXT NOT NULL DEFAULT ''",
    ),
)


def applied(url: str, store: str) -> list[int]:
    with psycopg.connect(url) as db:
        if db.execute("SELECT to_regclass(%s)", (MIGRATIONS_TABLE,)).fetchone() == (None,):
            return []  # not even the table: no migration ever committed
        rows = db.execute(
            f"SELECT version FROM {MIGRATIONS_TABLE} WHERE store = %s ORDER BY version",
            (store,),
        )
        return [r[0] for r in rows]


# -- the URL ---------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["", "sqlite", "sqlite:", " sqlite:// "])
def test_empty_or_sqlite_is_the_files_in_the_data_directory(url):
    assert parse_store_url(url).kind == "sqlite" and not parse_store_url(url).shared


def test_a_postgresql_url_is_shown_without_its_password():
    location = parse_store_url("postgresql://app:s3cret@db.internal:5433/vibe?sslmode=require")
    assert location.kind == "postgresql" and location.shared
    assert location.shown == "postgresql://app@db.internal:5433/vibe"
    assert parse_store_url("postgres://u@/vibe?host=/run/pg").shown == (
        "postgresql://u@/vibe?host=/run/pg"
    )


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://root:pw@localhost/db", "'mysql' is not supported"),
        ("./var/data.db", "not supported"),
        ("postgresql://u:pw@h/db?nonsense=1", "invalid PostgreSQL URL"),
    ],
)
def test_a_bad_url_is_one_clear_line(url, says):
    with pytest.raises(StoreUrlError, match=says) as caught:
        parse_store_url(url)
    assert "\n" not in str(caught.value) and "pw" not in str(caught.value)


def test_an_unreachable_database_fails_the_start_check_in_one_line(tmp_path):
    url = f"postgresql://app:s3cret@/vibe?host={tmp_path}&port=1"
    with pytest.raises(StoreError, match="cannot connect") as caught:
        check_store(url, timeout=1.0)
    assert "\n" not in str(caught.value) and "s3cret" not in str(caught.value)
    assert check_store("").kind == "sqlite"


def test_the_start_check_passes_on_a_live_database(postgres_url):
    assert check_store(postgres_url).shown.startswith("postgresql://postgres@")


# -- migrations ------------------------------------------------------------------------


def test_migrations_are_applied_once_and_recorded(postgres_url):
    location = parse_store_url(postgres_url)
    first = PostgresDatabase(location, "things", Schema("", postgres=THINGS.postgres[:1]))
    with first.transaction() as db:
        db.execute("INSERT INTO things (n) VALUES (?)", (1,))
    first.close()
    assert applied(postgres_url, "things") == [1]
    second = PostgresDatabase(location, "things", THINGS)  # version 2 adds a column
    assert second.execute("SELECT n, label FROM things").fetchall() == [(1, "")]
    second.close()
    PostgresDatabase(location, "things", THINGS).close()  # nothing left to do
    assert applied(postgres_url, "things") == [1, 2]


def test_replicas_starting_at_once_migrate_once(postgres_url):
    location = parse_store_url(postgres_url)
    opened: list[PostgresDatabase] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_one() -> None:
        start.wait(5.0)
        try:
            opened.append(PostgresDatabase(location, "things", THINGS))
        except BaseException as exc:  # reported below  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30.0)
    for db in opened:
        db.close()
    assert errors == [] and len(opened) == 4
    assert applied(postgres_url, "things") == [1, 2]


def test_a_newer_schema_than_the_code_knows_is_refused(postgres_url):
    location = parse_store_url(postgres_url)
    PostgresDatabase(location, "things", THINGS).close()
    with pytest.raises(StoreVersionError, match="schema version 2 is newer") as caught:
        PostgresDatabase(location, "things", Schema("", postgres=THINGS.postgres[:1]))
    assert (caught.value.found, caught.value.known) == (2, 1)


def test_a_failing_migration_keeps_nothing(postgres_url):
    location = parse_store_url(postgres_url)
    broken = Schema("", postgres=("CREATE TABLE things (n INTEGER); SELECT no_such_function()",))
    with pytest.raises(StoreError, match="cannot open"):
        PostgresDatabase(location, "things", broken)
    assert applied(postgres_url, "things") == []
    PostgresDatabase(location, "things", THINGS).close()  # the table was rolled back too


def test_each_agent_has_its_own_namespace(postgres_url):
    location = parse_store_url(postgres_url)
    one = PostgresDatabase(location, "one", THINGS)
    two = PostgresDatabase(location, "two", THINGS)
    with one.transaction() as db:
        db.execute("INSERT INTO things (n) VALUES (?)", (1,))
    assert two.execute("SELECT count(*) FROM things").fetchone() == (0,)
    one.close()
    two.close()
    with pytest.raises(StoreError, match="over 63 bytes"):
        PostgresDatabase(location, "x" * 64, THINGS)


# -- typed errors ----------------------------------------------------------------------


def test_a_refused_statement_is_rejected_and_rolled_back(postgres_url):
    db = PostgresDatabase(parse_store_url(postgres_url), "things", THINGS)
    with db.transaction() as tx:
        tx.execute("INSERT INTO things (n) VALUES (?)", (1,))
    with pytest.raises(StoreRejected, match="duplicate key"), db.transaction() as tx:
        tx.executemany("INSERT INTO things (n) VALUES (?)", [(2,), (1,)])
    assert db.execute("SELECT n FROM things ORDER BY n").fetchall() == [(1,)]
    with pytest.raises(StoreError, match="read failed"):
        db.execute("SELECT no_such_column FROM things")
    with pytest.raises(ValueError, match="mine"), db.transaction() as tx:
        tx.execute("INSERT INTO things (n) VALUES (?)", (5,))
        raise ValueError("mine")
    assert db.execute("SELECT count(*) FROM things").fetchone() == (1,)
    db.probe_write()
    db.close()
    db.close()


# -- out of reach at run time: 503, then recovery without a restart --------------------


def _connections(url: str, allowed: bool) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(database_url(url, "postgres"), autocommit=True) as admin:
        statement = sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
            sql.Identifier(name), sql.SQL("true" if allowed else "false")
        )
        admin.execute(statement)
        if not allowed:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


def test_state_answers_503_while_the_database_is_away_and_recovers(
    make_system: Any, tmp_path, postgres_url
):
    system = make_system(
        [WorkerSpec(name="state", agent=State)], data_dir=str(tmp_path), store=postgres_url
    )
    ref = system.ref("state")
    assert ref.ask(Put(key="k", value=1)) == Stored(key="k", version=1)
    _connections(postgres_url, allowed=False)
    try:
        down = ref.ask_future(Put(key="k", value=2), timeout=15.0).wait()
        assert isinstance(down, StorageUnavailable) and down.http_status == 503
        assert "postgresql://" in down.path and "#state" in down.path
        assert system.cell("state").impaired is not None
    finally:
        _connections(postgres_url, allowed=True)
    wait_until(lambda: system.cell("state").impaired is None, 20.0, "the probe's recovery")
    assert ref.ask(Put(key="k", value=3)).version == 2
    assert ref.ask(Get(key="k")).value == 3
    errors = system.registry.get_sample_value(
        "vibe_store_errors_total", {"agent": "state", "kind": "unavailable"}
    )
    assert errors is not None and errors >= 1


def test_the_pool_and_its_transactions_are_measured(make_system: Any, tmp_path, postgres_url):
    system = make_system(
        [WorkerSpec(name="state", agent=State)], data_dir=str(tmp_path), store=postgres_url
    )
    assert system.ref("state").ask(Put(key="k", value=1)).version == 1
    registry, state = system.registry, {"agent": "state"}
    wait_until(lambda: registry.get_sample_value("vibe_store_pool_connections", state) == 1, 5.0)
    assert registry.get_sample_value("vibe_store_pool_available", state) == 1
    assert registry.get_sample_value("vibe_store_pool_errors_total", state) == 0
    assert registry.get_sample_value("vibe_store_pool_waits_total", state) is not None
    assert registry.get_sample_value("vibe_store_pool_wait_seconds_total", state) is not None
    assert registry.get_sample_value("vibe_store_transaction_seconds_count", state) >= 1
    shown = parse_store_url(postgres_url).shown
    where = {"agent": "state", "backend": "postgresql", "location": shown}
    assert registry.get_sample_value("vibe_store_info", where) == 1
    system.shutdown()
    assert registry.get_sample_value("vibe_store_pool_connections", state) is None  # closed
