"""Everything the runtime keeps under ``data_dir`` is owner-only: directories 0700, files 0600.

Whatever the process umask (a permissive one here), and also for files and
directories an older version left open (they are tightened at start).
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vibe_actors import ActorSystem, PoolSpec, SystemConfig, WorkerSpec
from vibe_actors._files import (
    private_dir,
    private_file,
    tighten,
    write_private_atomically,
)
from vibe_actors.agents.jobs import Jobs, JobsConfig, JobWorker
from vibe_actors.agents.ledger import Append, Ledger
from vibe_actors.agents.policy import Policy, PolicyConfig, PolicyReloaded, Reload, Rule
from vibe_actors.agents.pubsub import PubSub, PubSubConfig
from vibe_actors.agents.pubsub import Subscribe as PubSubSubscribe
from vibe_actors.agents.registry import Register, Registry
from vibe_actors.agents.scheduler import Schedule, Scheduler
from vibe_actors.agents.state import Put, State
from vibe_actors.agents.webhooks import Subscribe as WebhookSubscribe
from vibe_actors.agents.webhooks import Subscribed, Webhooks, WebhooksConfig
from vibe_actors.store._sqlite import StoreError, open_database, transaction


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """A usual umask (files 0644, directories 0755 by default), then a permissive one."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def modes(root: Path) -> dict[str, int]:
    """Every directory (``root`` included) and file under ``root``, by relative path."""
    found = {".": stat.S_IMODE(os.stat(root).st_mode)}
    for directory, subdirectories, files in os.walk(root):
        for name in subdirectories + files:
            path = Path(directory) / name
            found[str(path.relative_to(root))] = stat.S_IMODE(os.lstat(path).st_mode)
    return found


def assert_private(root: Path) -> dict[str, int]:
    found = modes(root)
    wrong = {
        name: oct(mode)
        for name, mode in found.items()
        if mode != (0o700 if (root / name).is_dir() else 0o600)
    }
    assert not wrong, f"not owner-only (directories 0700, files 0600): {wrong}"
    return found


def every_store() -> list[WorkerSpec]:
    return [
        WorkerSpec(name="state", agent=State),
        WorkerSpec(name="registry", agent=Registry),
        WorkerSpec(name="pubsub", agent=PubSub, config=PubSubConfig()),
        WorkerSpec(name="scheduler", agent=Scheduler),
        WorkerSpec(name="job-workers", agent=JobWorker, pool=PoolSpec(size=1)),
        WorkerSpec(
            name="jobs",
            agent=Jobs,
            config=JobsConfig(kinds={"echo": "vibe_actors.agents.job_kinds:echo"}),
            depends_on=("job-workers",),
        ),
        WorkerSpec(name="ledger", agent=Ledger),
        WorkerSpec(name="policy", agent=Policy, config=PolicyConfig()),
        WorkerSpec(name="hooks", agent=Webhooks, config=WebhooksConfig(allow=["127.0.0.1/32"])),
    ]


def write_to_every_store(system: ActorSystem) -> None:
    system.ask("state", Put(key="k", value={"v": 1}))
    system.ask("registry", Register(name="state", capabilities=["kv"]))
    system.ask("pubsub", PubSubSubscribe(topic="t", subscriber="state"))
    system.ask(
        "scheduler",
        Schedule(
            name="later",
            target="state",
            message={"type": "Put", "key": "k", "value": 2},
            at=time.time() + 3600,
        ),
    )
    # jobs: its database is created and migrated at start; a job run is the jobs tests' business
    system.ask("ledger", Append(stream="s", data={"n": 1}))
    rules = [Rule(effect="allow")]
    assert system.ask("policy", Reload(rules=rules, roles={})) == PolicyReloaded(version=2)
    subscribed = system.ask(
        "hooks", WebhookSubscribe(topic="t", url="http://127.0.0.1:9/hook", secret="s3cret")
    )
    assert isinstance(subscribed, Subscribed)


def test_every_store_creates_owner_only_files_under_a_permissive_umask(tmp_path, umask):
    data_dir = tmp_path / "data"
    config = SystemConfig(data_dir=str(data_dir), serialize_messages=True, ask_timeout=5.0)
    with ActorSystem(every_store(), config) as system:
        write_to_every_store(system)
        running = assert_private(data_dir)  # the -wal and -shm files exist while open
    after = assert_private(data_dir)
    for name in ("state.db", "state.db-wal", "state.db-shm", "jobs.db", "ledger.db"):
        assert name in running
    for name in ("registry.db", "pubsub.db", "scheduler.db", "policy", "hooks.db"):
        assert name in after
    assert "policy/policy.json" in after


def test_files_and_directories_left_open_are_tightened_at_start(tmp_path, umask):
    data_dir = tmp_path / "data"
    config = SystemConfig(data_dir=str(data_dir), serialize_messages=True, ask_timeout=5.0)
    with ActorSystem(every_store(), config) as system:
        write_to_every_store(system)
    # What an older version (or a careless copy) leaves behind.
    for name in modes(data_dir):
        path = data_dir / name
        os.chmod(path, 0o777 if path.is_dir() else 0o666)
    with ActorSystem(every_store(), config):
        opened = modes(data_dir)
    # The ledger's key and checkpoint files are its own (it reports an open key file).
    ours = {name: mode for name, mode in opened.items() if not name.startswith("keys")}
    ours.pop("ledger.checkpoints", None)
    wrong = {
        name: oct(mode)
        for name, mode in ours.items()
        if mode != (0o700 if (data_dir / name).is_dir() else 0o600)
    }
    assert not wrong, f"left open after a start: {wrong}"


# -- the mechanism -------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o277])
def test_modes_do_not_depend_on_the_umask(tmp_path, mask):
    previous = os.umask(mask)
    try:
        directory = private_dir(tmp_path / "a" / "b")
        file = private_file(directory / "f")
        write_private_atomically(directory / "g.json", b"{}")
    finally:
        os.umask(previous)
    for path in (tmp_path / "a", tmp_path / "a" / "b"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    for path in (file, directory / "g.json"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(p.name for p in directory.iterdir()) == ["f", "g.json"]


def test_existing_paths_lose_group_and_other_bits_only(tmp_path):
    directory = tmp_path / "d"
    directory.mkdir()
    os.chmod(directory, 0o755)
    file = directory / "f"
    file.write_bytes(b"kept")
    os.chmod(file, 0o644)
    assert private_dir(directory) == directory and private_file(file) == file
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(file).st_mode) == 0o600 and file.read_bytes() == b"kept"
    os.chmod(file, 0o444)
    assert tighten(file) and stat.S_IMODE(os.stat(file).st_mode) == 0o400
    assert not tighten(directory / "missing")
    existing_parent = tmp_path / "shared"
    existing_parent.mkdir()
    os.chmod(existing_parent, 0o755)
    private_dir(existing_parent / "own")
    assert stat.S_IMODE(os.stat(existing_parent).st_mode) == 0o755  # not ours to tighten


def test_a_shared_sticky_directory_or_a_file_is_refused(tmp_path):
    shared = tmp_path / "tmp"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    with pytest.raises(PermissionError, match="shared directory"):
        private_dir(shared)
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o1777
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        private_dir(tmp_path / "file")


def test_an_atomic_write_replaces_a_leftover_temporary_file(tmp_path):
    target = tmp_path / "p.json"
    leftover = tmp_path / f".p.json.{os.getpid()}.tmp"
    leftover.write_bytes(b"half a write")
    os.chmod(leftover, 0o644)
    write_private_atomically(target, b"new")
    assert target.read_bytes() == b"new" and not leftover.exists()
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600


def test_sqlite_gives_its_wal_and_shm_files_the_mode_of_the_database(tmp_path, umask):
    path = tmp_path / "data" / "x.db"
    connection = open_database(path, "CREATE TABLE IF NOT EXISTS t (v INTEGER)")
    try:
        with transaction(connection, path):
            connection.execute("INSERT INTO t VALUES (1)")
        assert {p.name for p in path.parent.iterdir()} == {"x.db", "x.db-wal", "x.db-shm"}
        assert_private(path.parent)
    finally:
        connection.close()


def test_a_database_left_open_is_tightened_with_its_companions(tmp_path):
    path = tmp_path / "x.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE t (v INTEGER)")
    writer.execute("INSERT INTO t VALUES (1)")  # stays in the -wal while `writer` is open
    try:
        for name in ("x.db", "x.db-wal", "x.db-shm"):
            os.chmod(tmp_path / name, 0o644)
        os.chmod(tmp_path, 0o755)
        connection = open_database(path)
        connection.close()
        assert_private(tmp_path)
    finally:
        writer.close()


def test_a_data_directory_that_cannot_be_made_private_is_a_store_error(tmp_path):
    (tmp_path / "not-a-dir").write_bytes(b"")
    with pytest.raises(StoreError, match="cannot create the data directory"):
        open_database(tmp_path / "not-a-dir" / "x.db")
