"""Every rejection case: the exact message, with the file, line and column."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import phoenix

WIRINGS = Path(__file__).parent / "wirings"
UNITS = "a number with a unit, ms, s, m or h (250ms, 10s, 1m); a plain number here is"
SECONDS = f"{UNITS} seconds"
MILLISECONDS = f"{UNITS} whole milliseconds"

CASES = [
    (
        "bad_nested_config.yaml",
        [
            "bad_nested_config.yaml:9:21: $.root.children[0].config.rules[0].effect: "
            "expected 'allow'|'deny', got 'maybe'"
        ],
    ),
    (
        "bad_config.yaml",
        ["bad_config.yaml:8:16: $.root.children[0].config.start: expected int, got 'many'"],
    ),
    (
        "bad_enum.yaml",
        [
            "bad_enum.yaml:7:16: $.root.children[0].restart: expected permanent|transient|temporary, got 'permanant'"
        ],
    ),
    (
        "bad_intensity.yaml",
        [
            "bad_intensity.yaml:7:14: $.root.intensity: expected int >= 0, got -1",
            f"bad_intensity.yaml:8:11: $.root.period: expected a duration > 0, got 0: {SECONDS}",
        ],
    ),
    (
        "bad_shutdown.yaml",
        [
            "bad_shutdown.yaml:7:17: $.root.children[0].shutdown: "
            f"expected a duration >= 0 or 'brutal_kill', got -5: {MILLISECONDS}"
        ],
    ),
    (
        "config_without_schema.yaml",
        [
            "config_without_schema.yaml:8:9: $.root.children[0].config: tests.vibe_actors.agents:Worker takes no config (it declares no Config)"
        ],
    ),
    (
        "cycle.yaml",
        ["cycle.yaml:7:19: $.root.children[0].depends_on: dependency cycle: a -> b -> c -> a"],
    ),
    (
        "duplicate_name.yaml",
        [
            "duplicate_name.yaml:9:17: $.root.children[1].children[0].name: duplicate name 'a' (first at $.root.children[0])"
        ],
    ),
    (
        "hash_without_key.yaml",
        [
            "hash_without_key.yaml:9:18: $.root.children[0].pool.routing: consistent_hash routing needs hash_key (a message field name)"
        ],
    ),
    (
        "invalid_yaml.yaml",
        [
            "invalid_yaml.yaml:3:1: $: invalid YAML: expected the node content, but found '<stream end>'"
        ],
    ),
    (
        "missing_attribute.yaml",
        [
            "missing_attribute.yaml:6:14: $.root.children[0].agent: module 'tests.vibe_actors.agents' has no attribute 'Nobody'"
        ],
    ),
    (
        "missing_module.yaml",
        [
            "missing_module.yaml:6:14: $.root.children[0].agent: module 'tests.no_such_module' not found"
        ],
    ),
    ("missing_name.yaml", ["missing_name.yaml:3:3: $.root: missing required field 'name'"]),
    (
        "not_an_agent.yaml",
        [
            "not_an_agent.yaml:6:14: $.root.children[0].agent: 'tests.vibe_actors.agents:Echo' is not a vibe_actors.Agent subclass"
        ],
    ),
    (
        "several.yaml",
        [
            "several.yaml:7:16: $.root.children[0].restart: expected permanent|transient|temporary, got 'permanant'",
            "several.yaml:8:7: $.root.children[0].colour: unknown field 'colour' (expected one of: agent, config, depends_on, directives, entity, mailbox, name, placement, pool, restart, shutdown)",
            "several.yaml:9:13: $.root.children[1].name: duplicate name 'a' (first at $.root.children[0])",
            "several.yaml:10:14: $.root.children[1].agent: module 'tests.no_such_module' not found",
            "several.yaml:11:20: $.root.children[1].depends_on[0]: unknown agent 'ghost' in depends_on",
        ],
    ),
    (
        "unknown_dependency.yaml",
        [
            "unknown_dependency.yaml:7:20: $.root.children[0].depends_on[0]: unknown agent 'ghost' in depends_on"
        ],
    ),
    (
        "unknown_field.yaml",
        [
            "unknown_field.yaml:7:7: $.root.children[0].colour: unknown field 'colour' (expected one of: agent, config, depends_on, directives, entity, mailbox, name, placement, pool, restart, shutdown)"
        ],
    ),
    (
        "unset_env.yaml",
        [
            "unset_env.yaml:7:17: $.root.children[0].shutdown: environment variable UNSET_FOR_PHOENIX_TEST is not set (and has no default)"
        ],
    ),
    (
        "worker_and_supervisor.yaml",
        [
            "worker_and_supervisor.yaml:5:7: $.root.children[0]: a node is a worker (agent) or a supervisor (children), not both"
        ],
    ),
    (
        "wrong_type.yaml",
        ["wrong_type.yaml:8:19: $.root.children[0].mailbox.capacity: expected int, got 'lots'"],
    ),
]


@pytest.mark.parametrize(("name", "expected"), CASES, ids=[c[0] for c in CASES])
def test_rejection_names_file_line_column_path_and_what_was_wrong(name, expected, monkeypatch):
    monkeypatch.delenv("UNSET_FOR_PHOENIX_TEST", raising=False)
    with pytest.raises(phoenix.WiringError) as info:
        phoenix.load(WIRINGS / name)
    shown = [str(p).replace(str(WIRINGS / name), name) for p in info.value.problems]
    assert shown == expected


def test_every_case_file_is_covered():
    assert {c[0] for c in CASES} == {p.name for p in WIRINGS.glob("*.yaml")}


def test_an_unreadable_file_is_one_problem(tmp_path):
    with pytest.raises(phoenix.WiringError, match=r"missing\.yaml:1:1: \$: cannot read the file"):
        phoenix.load(tmp_path / "missing.yaml")


def test_empty_file():
    with pytest.raises(phoenix.WiringError, match=r"w\.yaml:1:1: \$: the file is empty"):
        phoenix.load_text("", "w.yaml")


def test_a_worker_root_is_refused():
    text = "version: 1\nroot:\n  name: r\n  agent: tests.vibe_actors.agents:Worker\n"
    with pytest.raises(phoenix.WiringError, match="the root must be a supervisor"):
        phoenix.load_text(text)


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        (
            "tests.vibe_actors.agents",
            "expected 'package.module:Class', got 'tests.vibe_actors.agents'",
        ),
        ("{pkg}.broken:Worker", "importing '{pkg}.broken' failed: RuntimeError: boom at import"),
        # A module that exists but imports a missing one: named, as wiring files always did.
        ("{pkg}.needy:Worker", "module '{pkg}.needy' not found (no module 'vibe_missing_dep_xyz')"),
        ("{pkg}.absent:Worker", "module '{pkg}.absent' not found"),
        (
            "vibe_no_pkg_xyz.sub:Worker",
            "module 'vibe_no_pkg_xyz.sub' not found (no module 'vibe_no_pkg_xyz')",
        ),
    ],
)
def test_an_agent_that_does_not_import_says_why(agent, expected, tmp_path, monkeypatch):
    package = f"phoenix_import_fixture_{tmp_path.name}".replace("-", "_")
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "broken.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / package / "needy.py").write_text("import vibe_missing_dep_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    text = f"version: 1\nroot:\n  name: r\n  children:\n    - name: a\n      agent: {agent}\n"
    try:
        with pytest.raises(phoenix.WiringError) as info:
            phoenix.load_text(text.replace("{pkg}", package), "w.yaml")
    finally:
        sys.modules.pop(package, None)
    (problem,) = info.value.problems
    assert problem.message == expected.replace("{pkg}", package)
