"""``dynamic: true`` in a wiring file: decoded, checked field by field, built, schema'd."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import phoenix
from vibe_actors import Ping, WorkerSpec

from tests.vibe_actors.agents import Worker


class Spawner(Worker):
    """Named like tests.vibe_actors.dynamic_agents:Spawner: two templates of one name."""


ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
version: 1
root:
  name: root
  children:
    - name: sessions
      dynamic: true
      max_children: 4
      intensity: 3
      templates:
        - tests.vibe_actors.agents:Worker
        - tests.vibe_actors.dynamic_agents:Spawner
    - name: static
      agent: tests.vibe_actors.agents:Worker
"""


def test_a_dynamic_supervisor_is_built_with_its_limit_and_resolved_templates():
    root, _ = phoenix.build(phoenix.load_text(GOOD))
    sessions = root.children[0]
    assert sessions.dynamic and sessions.max_children == 4 and sessions.intensity == 3
    assert [t.__name__ for t in sessions.templates] == ["Worker", "Spawner"]
    assert sessions.children == ()


def test_a_booted_dynamic_supervisor_takes_children(tmp_path):
    path = tmp_path / "wiring.yaml"
    path.write_text(GOOD)
    system = phoenix.boot(path, data_dir=str(tmp_path))
    try:
        assert system.dynamic_templates("sessions")["Worker"] is Worker
        ref = system.start_child("sessions", WorkerSpec(name="s1", agent=Worker))
        assert ref.ask(Ping()).agent == "s1"
    finally:
        assert system.shutdown(timeout=10)


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (
            "      dynamic: true\n      strategy: one_for_all\n",
            ["w.yaml:7:17: $.root.children[0].strategy: a dynamic supervisor is one_for_one, "
             "got 'one_for_all' (drop strategy, or set it to one_for_one)"],
        ),
        (
            "      dynamic: true\n      children:\n        - {name: w, agent: "
            "tests.vibe_actors.agents:Worker}\n",
            ["w.yaml:8:9: $.root.children[0].children: a dynamic supervisor lists no children"],
        ),
        (
            "      strategy: one_for_one\n      max_children: 3\n      templates: []\n",
            ["w.yaml:7:7: $.root.children[0].max_children: max_children is for a dynamic "
             "supervisor: add dynamic: true to this node",
             "w.yaml:8:7: $.root.children[0].templates: templates is for a dynamic supervisor"],
        ),
        (
            "      dynamic: true\n      max_children: -1\n",
            ["w.yaml:7:21: $.root.children[0].max_children: expected int >= 0, got -1"],
        ),
        (
            "      dynamic: true\n      templates:\n        - no.such.module:Thing\n"
            "        - tests.vibe_actors.agents:Echo\n        - tests.vibe_actors.agents:Worker\n",
            ["w.yaml:8:11: $.root.children[0].templates[0]: module 'no.such.module' not found",
             "w.yaml:9:11: $.root.children[0].templates[1]: 'tests.vibe_actors.agents:Echo' is "
             "not a vibe_actors.Agent subclass"],
        ),
    ],
    ids=["strategy", "children", "not-dynamic", "negative", "templates"],
)  # fmt: skip
def test_a_bad_dynamic_supervisor_is_reported_at_its_field(snippet, expected):
    text = f"version: 1\nroot:\n  name: root\n  children:\n    - name: dyn\n{snippet}"
    with pytest.raises(phoenix.WiringError) as refused:
        phoenix.load_text(text, "w.yaml")
    lines = str(refused.value).splitlines()
    assert len(lines) == len(expected), lines
    for line, want in zip(lines, expected, strict=True):
        assert line.startswith(want), (want, lines)


def test_two_templates_of_one_class_name_are_refused():
    text = GOOD.replace(
        "        - tests.vibe_actors.dynamic_agents:Spawner\n",
        "        - tests.vibe_actors.dynamic_agents:Spawner\n"
        "        - tests.vibe_actors.agents:Worker\n"  # the same class again: harmless
        "        - tests.phoenix.test_dynamic_wiring:Spawner\n",
    )
    with pytest.raises(phoenix.WiringError) as refused:
        phoenix.load_text(text, "w.yaml")
    assert str(refused.value) == (
        "w.yaml:13:11: $.root.children[0].templates[3]: two templates are named 'Spawner' "
        "(tests.vibe_actors.dynamic_agents:Spawner and tests.phoenix.test_dynamic_wiring:Spawner)"
        ": a client names a template by its class name"
    )


def test_the_json_schema_and_the_tree_show_the_dynamic_fields(tmp_path):
    path = tmp_path / "wiring.yaml"
    path.write_text(GOOD)

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "phoenix", *args], cwd=ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    properties = json.loads(run("schema"))["$defs"]["SupervisorNode"]["properties"]
    assert properties["dynamic"]["type"] == "boolean"
    assert {"type": "integer", "minimum": 0} in properties["max_children"]["anyOf"]
    assert properties["templates"]["items"] == {"type": "string"}
    tree = run("tree", str(path))
    assert (
        "+ sessions [supervisor one_for_one, intensity 3/5s] restart=permanent dynamic (max 4;"
        in tree
    )
