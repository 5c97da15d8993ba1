"""The store scaffold: one way to open, version, write, probe and close every agent's database."""

from __future__ import annotations

import ast
import os
import sqlite3
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

import vibe_actors.agents
import vibe_actors.store
from vibe_actors.store._database import (
    Schema,
    StoreCorrupt,
    StoreError,
    StoreRejected,
    StoreVersionError,
)
from vibe_actors.store._sqlite import SqliteDatabase
from vibe_actors.store._store import Store, open_store

TABLES = "CREATE TABLE IF NOT EXISTS t (x INTEGER NOT NULL UNIQUE);"


def user_version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def columns(path: Path, table: str) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
    finally:
        db.close()


class Things(Store):
    schema = Schema(TABLES)

    def add(self, *values: int) -> None:
        with self._db.transaction() as db:
            db.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])

    def values(self) -> list[int]:
        return [x for (x,) in self._db.execute("SELECT x FROM t ORDER BY x")]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "things.db"


# -- the schema and its version ------------------------------------------------------------


def test_a_new_database_records_its_schema_version(path):
    SqliteDatabase(path, Schema(TABLES)).close()
    assert user_version(path) == 1
    upgraded = Schema(TABLES, upgrades=("ALTER TABLE t ADD COLUMN y TEXT", "CREATE TABLE u (z)"))
    assert upgraded.version == 3
    SqliteDatabase(path.with_name("fresh.db"), upgraded).close()
    assert user_version(path.with_name("fresh.db")) == 3
    assert columns(path.with_name("fresh.db"), "t") == ["x", "y"]


def test_an_older_version_gets_the_upgrades_it_lacks_and_only_those(path):
    store = Things(path)
    store.add(1)
    store.close()
    schema = Schema(TABLES, upgrades=("ALTER TABLE t ADD COLUMN y TEXT DEFAULT 'old'",))
    SqliteDatabase(path, schema).close()
    assert (user_version(path), columns(path, "t")) == (2, ["x", "y"])
    SqliteDatabase(path, schema).close()  # at its version: nothing runs again
    db = sqlite3.connect(path)
    assert db.execute("SELECT x, y FROM t").fetchall() == [(1, "old")]
    db.close()


def test_a_newer_version_than_the_code_knows_is_refused_naming_the_file_and_both(path):
    Things(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 7")
    db.close()
    with pytest.raises(StoreVersionError) as raised:
        Things(path)
    error = raised.value
    assert isinstance(error, StoreError)  # an agent degrades on it like on any unusable store
    assert (error.path, error.found, error.known) == (str(path), 7, 1)
    assert str(error).startswith(f"{path}: schema version 7 is newer than")
    assert "knows (1)" in str(error)
    assert user_version(path) == 7  # left as found


def test_a_database_from_before_versions_gets_its_legacy_columns_once(path):
    path.parent.mkdir()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x INTEGER NOT NULL UNIQUE)")
    db.execute("INSERT INTO t VALUES (1)")
    db.commit()
    db.close()
    schema = Schema(TABLES.replace("UNIQUE", "UNIQUE, who TEXT"), legacy_columns=(
        ("t", "who", "TEXT DEFAULT 'nobody'"),
    ))  # fmt: skip
    SqliteDatabase(path, schema).close()
    assert (user_version(path), columns(path, "t")) == (1, ["x", "who"])
    db = sqlite3.connect(path)
    assert db.execute("SELECT x, who FROM t").fetchall() == [(1, "nobody")]
    db.close()
    fresh = path.with_name("fresh.db")  # made by this schema: it has the column already
    SqliteDatabase(fresh, schema).close()
    assert (user_version(fresh), columns(fresh, "t")) == (1, ["x", "who"])


def test_a_file_that_is_not_a_database_is_corrupt(path):
    path.parent.mkdir()
    path.write_bytes(b"not sqlite" * 512)
    with pytest.raises(StoreCorrupt) as raised:
        Things(path)
    assert raised.value.path == str(path)


# -- transactions ------------------------------------------------------------------------------


def test_a_transaction_is_rolled_back_when_its_body_raises(path):
    store = Things(path)
    with pytest.raises(ValueError, match="a bug"), store._db.transaction() as db:
        db.execute("INSERT INTO t VALUES (1)")
        raise ValueError("a bug")
    assert store.values() == []
    store.add(2)
    assert store.values() == [2]
    store.close()


def test_a_refused_statement_is_store_rejected_not_a_store_error(path):
    store = Things(path)
    store.add(1)
    with pytest.raises(StoreRejected) as raised:
        store.add(2, 1)  # the second row breaks the UNIQUE constraint: neither is kept
    assert not isinstance(raised.value, StoreError)
    assert raised.value.path == str(path) and "UNIQUE" in raised.value.reason
    assert isinstance(raised.value.__cause__, sqlite3.IntegrityError)
    assert store.values() == [1]
    store.close()


def test_a_storage_failure_in_a_transaction_is_a_store_error_naming_the_file(path):
    store = Things(path)
    store._db.execute("PRAGMA query_only = ON")  # writes fail as on a read-only file
    with pytest.raises(StoreError) as raised:
        store.add(1)
    assert raised.value.path == str(path) and "readonly" in raised.value.reason
    store._db.execute("PRAGMA query_only = OFF")
    store.add(1)
    assert store.values() == [1]
    store.close()


def test_a_failed_read_is_a_store_error(path):
    store = Things(path)
    with pytest.raises(StoreError, match="read failed: no such table"):
        store._db.execute("SELECT * FROM missing")
    store.close()


# -- probe writes ------------------------------------------------------------------------------


def test_probe_write_on_a_read_only_database_raises_store_error(path):
    store = Things(path)
    store.probe_write()
    store._db.execute("PRAGMA query_only = ON")
    with pytest.raises(StoreError, match="readonly"):
        store.probe_write()
    store._db.execute("PRAGMA query_only = OFF")
    store.probe_write()
    store.close()


def test_probe_write_on_a_full_database_raises_store_error(path):
    store = Things(path)
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")  # as if the disk were full
    with pytest.raises(StoreError) as raised:
        store.probe_write()  # its first write needs a page for its table
    assert raised.value.path == str(path) and "full" in raised.value.reason
    store._db.execute("PRAGMA max_page_count = 1073741823")
    store.probe_write()
    store.close()


# -- files, closing, choosing the backend --------------------------------------------------------


def test_the_directory_and_the_files_are_owner_only(path):
    previous = os.umask(0o000)
    try:
        store = Things(path)
        store.add(1)
    finally:
        os.umask(previous)
    mode = {p.name: stat.S_IMODE(os.stat(p).st_mode) for p in [path.parent, *path.parent.iterdir()]}
    assert mode == {
        "data": 0o700,
        "things.db": 0o600,
        "things.db-wal": 0o600,
        "things.db-shm": 0o600,
    }
    store.close()


def test_close_is_idempotent_and_a_closed_store_is_not_used(path):
    store = Things(path)
    store.close()
    store.close()
    with pytest.raises(AssertionError, match="closed"):
        store.values()


def test_open_store_puts_an_agents_store_in_the_data_directory(tmp_path):
    registry = CollectorRegistry()
    agent = SimpleNamespace(name="things", system=SimpleNamespace(
        config=SimpleNamespace(data_dir=str(tmp_path / "var"), store=""),
        shared_metrics=lambda key, build: build(registry),
    ))  # fmt: skip
    store = open_store(Things, agent)  # type: ignore[arg-type]
    assert isinstance(store, Things) and store.path == str(tmp_path / "var" / "things.db")
    store.add(3)
    store.close()
    assert user_version(tmp_path / "var" / "things.db") == 1
    where = {"agent": "things", "backend": "sqlite", "location": store.path}
    assert registry.get_sample_value("vibe_store_info", where) == 1


def test_only_the_sqlite_backend_imports_sqlite3():
    """Agents and store modules see the seam (``_store``), never the driver."""
    agents = Path(vibe_actors.agents.__file__).parent
    store = Path(vibe_actors.store.__file__).parent
    importers = []
    for module in sorted([*agents.rglob("*.py"), *store.glob("*.py")]):
        for node in ast.walk(ast.parse(module.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(name.split(".")[0] == "sqlite3" for name in names):
                importers.append(module.name)
    assert importers == ["_sqlite.py"]
