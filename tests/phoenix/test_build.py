"""Building and running from wiring: env substitution, start order, boot, live reload, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import phoenix
from vibe_actors import Ping

from tests.phoenix.agents import Bump, Count

ROOT = Path(__file__).resolve().parents[2]
WORKER = "tests.vibe_actors.agents:Worker"
COUNTER = "tests.phoenix.agents:Counter"


def wiring(*children: str, root: str = "root") -> str:
    body = "".join(children)
    return f"version: 1\nroot:\n  name: {root}\n  intensity: 5\n  children:\n{body}"


def worker(name: str, agent: str = WORKER, extra: str = "") -> str:
    return f"    - name: {name}\n      agent: {agent}\n{extra}"


def test_env_substitution_with_defaults_escapes_and_types():
    text = wiring(
        worker(
            "c", COUNTER, "      config:\n        start: ${START}\n        label: ${LABEL:-plain}\n"
        ),
        worker("d", COUNTER, "      config:\n        label: $${NOT_A_VAR}\n"),
    )
    loaded = phoenix.load_text(text, environ={"START": "41"})
    assert loaded.configs["c"].start == 41 and loaded.configs["c"].label == "plain"
    assert loaded.configs["d"].label == "${NOT_A_VAR}"


def test_a_secret_from_the_environment_never_appears_in_errors_or_tree(tmp_path):
    text = wiring(worker("c", COUNTER, "      config:\n        start: ${TOKEN}\n"))
    with pytest.raises(phoenix.WiringError) as info:
        phoenix.load_text(text, environ={"TOKEN": "sk-very-secret"})
    assert "sk-very-secret" not in str(info.value)
    assert "got '***'" in str(info.value)
    path = tmp_path / "w.yaml"
    path.write_text(wiring(worker("${NAME}", COUNTER)))
    out = subprocess.run(
        [sys.executable, "-m", "phoenix", "tree", str(path)],
        cwd=ROOT, capture_output=True, text=True, env={"NAME": "hidden-name", "PATH": ""},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "hidden-name" not in out.stdout and "***" in out.stdout


def test_depends_on_reorders_siblings_stably():
    text = wiring(
        worker("a", extra="      depends_on: [c]\n"),
        worker("b"),
        worker("c"),
        worker("d", extra="      depends_on: [a]\n"),
    )
    root, _ = phoenix.build(phoenix.load_text(text))
    assert [c.name for c in root.children] == ["b", "c", "a", "d"]


def test_a_dependency_starting_later_in_another_subtree_is_refused():
    text = wiring(
        worker("a", extra="      depends_on: [late]\n"),
        "    - name: sub\n      children:\n"
        + worker("late").replace("    - ", "        - ").replace("      agent", "          agent"),
    )
    with pytest.raises(phoenix.WiringError, match="'a' depends on 'late', which starts later"):
        phoenix.build(phoenix.load_text(text))


def test_boot_starts_in_dependency_order_and_stops_cleanly(tmp_path, journal):
    path = tmp_path / "w.yaml"
    path.write_text(wiring(worker("a", extra="      depends_on: [b]\n"), worker("b")))
    system = phoenix.boot(path, data_dir=str(tmp_path))
    try:
        assert [n.name for n in system.tree().children] == ["b", "a"]
        assert system.ask("a", Ping()).agent == "a"
        assert system.config.data_dir == str(tmp_path)
    finally:
        assert system.shutdown()
    assert not system.threads()


def test_reload_keeps_unchanged_state_and_applies_the_rest(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text(wiring(worker("keep", COUNTER), worker("gone"), worker("change", COUNTER)))
    system = phoenix.boot(path)
    try:
        system.ask("keep", Bump(by=41))
        system.ask("change", Bump(by=5))
        path.write_text(
            wiring(
                worker("keep", COUNTER),
                worker("change", COUNTER, "      config:\n        label: new\n"),
                worker("added"),
            )
        )
        report = phoenix.reload(system, path)
        assert (report.added, report.removed, report.changed) == (
            ("added",),
            ("gone",),
            ("change",),
        )
        assert system.ask("keep", Bump(by=1)) == Count(value=42, label="")  # state kept
        assert system.ask("change", Bump(by=1)) == Count(value=1, label="new")  # restarted
        assert "gone" not in system.names()
        path.write_text(wiring(worker("keep", COUNTER), worker("x", "tests.nowhere:Nope")))
        with pytest.raises(phoenix.WiringError, match="module 'tests.nowhere' not found"):
            phoenix.reload(system, path)
        assert system.ask("keep", Bump(by=1)) == Count(value=43, label="")  # untouched
        assert "added" in system.names()
    finally:
        system.shutdown()


def test_cli_check_tree_schema(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(wiring(worker("a"), worker("p", extra="      pool:\n        size: 2\n")))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "phoenix", *args], cwd=ROOT, capture_output=True, text=True
        )

    ok = run("check", str(good))
    assert (ok.returncode, ok.stdout.strip()) == (0, f"{good}: ok (2 agents)")
    tree = run("tree", str(good)).stdout
    assert "+ root [supervisor one_for_one, intensity 5/5s]" in tree
    assert (
        "- p [worker tests.vibe_actors.agents:Worker] restart=permanent pool=2xround_robin" in tree
    )
    bad = run("check", str(ROOT / "tests/phoenix/wirings/several.yaml"))
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr and "5 problem(s)" in bad.stderr
    schema = json.loads(run("schema").stdout)
    assert schema["$defs"]["WorkerNode"]["required"] == ["name"]
    # a worker names its agent, or is an entity kind: one of the two, not both
    assert schema["$defs"]["WorkerNode"]["oneOf"] == [
        {"required": ["agent"]},
        {"required": ["entity"]},
    ]
    assert run("frobnicate").returncode == 2


SYSTEM_AGENTS = [
    "policy", "quota", "ledger", "state", "audit", "registry", "pubsub", "webhooks",
    "scheduler", "jobs", "introspect", "schema", "watchdog",
]  # fmt: skip


def test_the_shipped_wiring_boots_all_13_agents_and_leaves_no_thread(tmp_path):
    import threading

    from tests.conftest import wait_until

    before = set(threading.enumerate())
    system = phoenix.boot(ROOT / "wiring.yaml", data_dir=str(tmp_path))
    try:
        for name in SYSTEM_AGENTS:
            assert system.ask(name, Ping()).agent == name
        statuses = {node.name: node.status for node in system.walk()}
        assert all(status == "running" for status in statuses.values()), statuses
        assert not [node.name for node in system.walk() if node.degraded]
    finally:
        assert system.shutdown(timeout=15)
    assert not system.threads()
    # Every thread the system started (actors, timers, delivery workers) is gone.
    wait_until(lambda: not set(threading.enumerate()) - before, 5, "the system's threads to end")
