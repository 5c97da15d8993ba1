"""``python -m phoenix``: the tree in start order, and a reader that leaves early."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKER = "tests.vibe_actors.agents:Worker"


def phoenix_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "phoenix", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def test_tree_prints_the_start_order_with_depends_on_applied(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text(
        "version: 1\nroot:\n  name: root\n  children:\n"
        f"    - name: api\n      agent: {WORKER}\n      depends_on: [data, cache]\n"
        "    - name: data\n      strategy: rest_for_one\n      children:\n"
        f"        - name: audit\n          agent: {WORKER}\n          depends_on: [ledger]\n"
        f"        - name: ledger\n          agent: {WORKER}\n"
        f"    - name: cache\n      agent: {WORKER}\n"
    )
    result = phoenix_cli("tree", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "+ root [supervisor one_for_one, intensity 1/5s] restart=permanent",
        "  + data [supervisor rest_for_one, intensity 1/5s] restart=permanent",
        f"    - ledger [worker {WORKER}] restart=permanent",
        f"    - audit [worker {WORKER}] restart=permanent depends_on=[ledger]",
        f"  - cache [worker {WORKER}] restart=permanent",
        f"  - api [worker {WORKER}] restart=permanent depends_on=[data, cache]",
    ]


def test_tree_orders_siblings_as_the_runtime_starts_them(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text(
        "version: 1\nroot:\n  name: root\n  children:\n"
        f"    - name: a\n      agent: {WORKER}\n      depends_on: [c]\n"
        f"    - name: b\n      agent: {WORKER}\n"
        f"    - name: c\n      agent: {WORKER}\n"
        f"    - name: d\n      agent: {WORKER}\n      depends_on: [a]\n"
    )
    lines = phoenix_cli("tree", str(path)).stdout.splitlines()
    assert lines == [
        "+ root [supervisor one_for_one, intensity 1/5s] restart=permanent",
        f"  - b [worker {WORKER}] restart=permanent",
        f"  - c [worker {WORKER}] restart=permanent",
        f"  - a [worker {WORKER}] restart=permanent depends_on=[c]",
        f"  - d [worker {WORKER}] restart=permanent depends_on=[a]",
    ]


def test_tree_masks_a_dependency_named_by_the_environment(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text(
        "version: 1\nroot:\n  name: root\n  children:\n"
        f"    - name: a\n      agent: {WORKER}\n      depends_on: ['${{DEP}}']\n"
        f"    - name: hidden-name\n      agent: {WORKER}\n"
    )
    result = phoenix_cli("tree", str(path), env={**os.environ, "DEP": "hidden-name"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        f"  - hidden-name [worker {WORKER}] restart=permanent",
        f"  - a [worker {WORKER}] restart=permanent depends_on=[***]",
    ]


@pytest.mark.parametrize("args", [("schema",), ("tree", "wiring.yaml")], ids=["schema", "tree"])
def test_a_closed_output_ends_the_command_quietly_with_141(args):
    read, write = os.pipe()
    os.close(read)  # `| head` that has already left: every write meets a broken pipe
    try:
        result = subprocess.run(
            [sys.executable, "-m", "phoenix", *args],
            cwd=ROOT, stdout=write, stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write)
    assert (result.returncode, result.stderr) == (141, "")


def test_schema_piped_into_head_prints_its_first_lines_and_no_traceback():
    result = subprocess.run(
        f"'{sys.executable}' -m phoenix schema | head -n 2",
        shell=True, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.stdout.splitlines()[0] == "{"
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr
