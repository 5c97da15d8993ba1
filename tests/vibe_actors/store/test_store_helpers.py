"""The durable agents' store: durable settings, and clear errors naming the file."""

from __future__ import annotations

import sqlite3

import pytest

from vibe_actors.store._sqlite import StoreError, database_path, open_database, transaction

SCHEMA = "CREATE TABLE IF NOT EXISTS t (x INTEGER NOT NULL);"


def test_opens_in_wal_with_full_sync_and_applies_the_schema(tmp_path):
    path = database_path(tmp_path / "data", "ledger")
    assert path == tmp_path / "data" / "ledger.db"
    db = open_database(path, SCHEMA)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with transaction(db, path):
        db.execute("INSERT INTO t VALUES (1)")
    db.close()
    again = open_database(path, SCHEMA)  # the schema script is idempotent
    assert again.execute("SELECT x FROM t").fetchall() == [(1,)]
    again.close()


def test_a_failing_body_rolls_back(tmp_path):
    path = tmp_path / "a.db"
    db = open_database(path, SCHEMA)
    with pytest.raises(sqlite3.IntegrityError), transaction(db, path):
        db.execute("INSERT INTO t VALUES (1)")
        db.execute("INSERT INTO t VALUES (NULL)")
    assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    db.close()


def test_a_file_that_is_not_a_database_is_named_in_the_error(tmp_path):
    path = tmp_path / "ledger.db"
    path.write_bytes(b"this is not sqlite" * 512)
    with pytest.raises(StoreError) as raised:
        open_database(path, SCHEMA)
    assert raised.value.path == str(path)
    assert str(raised.value) == f"{path}: not a usable SQLite database (file is not a database)"


def test_a_truncated_database_is_refused_with_its_name(tmp_path):
    path = tmp_path / "state.db"
    db = open_database(path, SCHEMA)
    with transaction(db, path):
        db.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5000)])
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError) as raised:
        open_database(path, SCHEMA)
    assert str(raised.value).startswith(f"{path}: ")


def test_an_unwritable_data_directory_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError) as raised:
        open_database(blocker / "sub" / "x.db")
    assert raised.value.path == str(blocker / "sub")


def test_agent_metrics_are_built_once_per_system(make_system):
    from prometheus_client import Counter

    first, second = make_system([]), make_system([])
    calls = []

    def build(registry):
        calls.append(registry)
        return Counter("vibe_test_things", "Things.", registry=registry)

    a = first.shared_metrics("test", build)
    assert first.shared_metrics("test", build) is a
    b = second.shared_metrics("test", build)
    assert b is not a and calls == [first.registry, second.registry]
    a.inc()
    assert first.registry.get_sample_value("vibe_test_things_total") == 1
    assert second.registry.get_sample_value("vibe_test_things_total") == 0
