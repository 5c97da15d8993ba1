"""One local Ray cluster for the whole session, on 127.0.0.1 only (skipped without Ray).

Every test here carries the ``ray`` marker (``pytest -m ray`` selects them;
``-m 'not ray'`` leaves them out). Ray is started in the main thread: Ray's
processes die with the thread that started them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import vibe_actors.ray  # sets Ray's environment: before anything imports Ray
from vibe_actors.ray import RaySettings

#: Without Ray (the extra not installed) this directory's tests are not collected.
collect_ignore_glob = [] if vibe_actors.ray.ray_available() else ["test_*.py"]

ROOT = str(Path(__file__).resolve().parents[2])
NAMESPACE = "vibe-tests"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.ray)


@pytest.fixture(scope="session")
def ray_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RaySettings]:
    """Ray started for the session; the settings the tests' placed agents use."""
    import ray  # only here: vibe_actors.ray (imported above) set Ray's environment first

    temp_dir = str(tmp_path_factory.mktemp("ray"))
    ray.init(
        namespace=NAMESPACE,
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=temp_dir,
        # The workers import the tests' agents (tests.ray.agents) from the repository.
        job_config=ray.job_config.JobConfig(code_search_path=[ROOT]),
    )
    try:
        yield RaySettings(namespace=NAMESPACE, temp_dir=temp_dir)
    finally:
        ray.shutdown()


def ray_pids() -> set[int]:
    """This process and its descendants (Ray's processes are)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = set(), [os.getpid()]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found
