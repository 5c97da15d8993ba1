"""Every problem of a file in one run: past an unset variable, past a sibling's error,
past the first of a struct's own checks, and the start order ``check`` used to miss."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import phoenix

ROOT = Path(__file__).resolve().parents[2]
WORKER = "tests.vibe_actors.agents:Worker"
HEAD = "version: 1\nroot:\n  name: root\n  children:\n"


def problems_of(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(phoenix.WiringError) as info:
        phoenix.load_text(text, environ=environ or {})
    return [str(problem) for problem in info.value.problems]


def worker(name: str, extra: str = "") -> str:
    return f"    - name: {name}\n      agent: {WORKER}\n{extra}"


def test_unset_variables_are_all_named_and_the_rest_of_the_file_is_still_checked():
    text = (
        "version: 1\nsystem:\n  ask_timeout: ${ASK}\n"
        + "root:\n  name: root\n  children:\n"
        + worker("a", "      shutdown: ${GRACE}\n      restart: sometimes\n")
        + "    - name: b\n      agent: ${AGENT}\n      mailbox: {capacity: -1}\n"
    )
    assert problems_of(text) == [
        "wiring.yaml:3:16: $.system.ask_timeout: environment variable ASK is not set (and has no default)",
        "wiring.yaml:9:17: $.root.children[0].shutdown: environment variable GRACE is not set (and has no default)",
        "wiring.yaml:10:16: $.root.children[0].restart: expected permanent|transient|temporary, got 'sometimes'",
        "wiring.yaml:12:14: $.root.children[1].agent: environment variable AGENT is not set (and has no default)",
        "wiring.yaml:13:27: $.root.children[1].mailbox.capacity: mailbox capacity must be >= 0, got -1",
    ]


def test_several_unset_variables_in_one_value_are_each_named_once():
    text = HEAD + worker(
        "a", "      depends_on:\n        - ${ONE}\n        - ${TWO}-${THREE:-x}${FOUR}\n"
    )
    assert problems_of(text) == [
        "wiring.yaml:8:11: $.root.children[0].depends_on[0]: environment variable ONE is not set (and has no default)",
        "wiring.yaml:9:11: $.root.children[0].depends_on[1]: environment variable TWO is not set (and has no default)",
        "wiring.yaml:9:11: $.root.children[0].depends_on[1]: environment variable FOUR is not set (and has no default)",
    ]


def test_a_refused_tag_is_one_problem_and_the_rest_is_still_checked():
    text = HEAD + worker("a", "      restart: !!python/name:os.system x\n      shutdown: forever\n")
    problems = problems_of(text)
    assert len(problems) == 2
    assert problems[0].startswith("wiring.yaml:7:16: $.root.children[0].restart: YAML tag")
    assert problems[1].startswith(
        "wiring.yaml:8:17: $.root.children[0].shutdown: expected a duration"
    )


def test_a_bad_field_does_not_hide_a_siblings_failed_check():
    text = HEAD + worker("a", "      mailbox: {capacity: -1, overflow: spill}\n")
    assert problems_of(text) == [
        "wiring.yaml:7:27: $.root.children[0].mailbox.capacity: mailbox capacity must be >= 0, got -1",
        "wiring.yaml:7:41: $.root.children[0].mailbox.overflow: expected reject|drop_oldest|drop_newest|block, got 'spill'",
    ]


def test_every_failed_check_of_a_struct_is_reported_at_its_field():
    text = (
        "version: 1\nsystem:\n  ask_timeout: -1\n  dead_letters_kept: many\n"
        + "root:\n  name: root\n  backoff: {random_factor: -1, reset_after: -2}\n  children:\n"
        + worker("a", "      mailbox: {capacity: -1, block_timeout: -1}\n")
        + worker("b", "      pool: {size: 0, routing: sideways}\n")
    )
    assert problems_of(text) == [
        "wiring.yaml:3:16: $.system.ask_timeout: ask_timeout and start_timeout must be > 0",
        "wiring.yaml:4:22: $.system.dead_letters_kept: expected int, got 'many'",
        "wiring.yaml:7:28: $.root.backoff.random_factor: backoff random_factor must be >= 0, got -1.0",
        "wiring.yaml:7:45: $.root.backoff.reset_after: backoff reset_after must be >= 0, got -2.0",
        "wiring.yaml:11:27: $.root.children[0].mailbox.capacity: mailbox capacity must be >= 0, got -1",
        "wiring.yaml:11:46: $.root.children[0].mailbox.block_timeout: mailbox block_timeout must be >= 0, got -1.0",
        "wiring.yaml:14:13: $.root.children[1].pool: pool size must be >= 1, got 0",
        "wiring.yaml:14:32: $.root.children[1].pool.routing: expected round_robin|least_loaded|consistent_hash, got 'sideways'",
    ]


def test_every_bad_entry_of_a_list_of_structs_is_reported():
    text = HEAD + (
        "    - name: policy\n      agent: vibe_actors.agents.policy:Policy\n      config:\n"
        "        rules:\n"
        "          - {effect: maybe}\n"
        "          - {agent: a}\n"
        "          - {effect: perhaps, colour: red}\n"
    )
    assert problems_of(text) == [
        "wiring.yaml:9:22: $.root.children[0].config.rules[0].effect: expected 'allow'|'deny', got 'maybe'",
        "wiring.yaml:11:22: $.root.children[0].config.rules[2].effect: expected 'allow'|'deny', got 'perhaps'",
        "wiring.yaml:11:31: $.root.children[0].config.rules[2].colour: unknown field 'colour' (expected one of: agent, effect, message, principal, role)",
    ]


def test_a_dependency_that_starts_later_elsewhere_is_found_by_load_with_its_position():
    text = HEAD + (
        worker("a", "      depends_on: [late]\n")
        + "    - name: sub\n      children:\n"
        + "        - name: late\n          agent: tests.vibe_actors.agents:Worker\n"
    )
    assert problems_of(text) == [
        "wiring.yaml:7:20: $.root.children[0].depends_on[0]: 'a' depends on 'late', which"
        " starts later (in another subtree); move it earlier in the file"
    ]


def test_phoenix_check_lists_them_all(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text(
        HEAD
        + worker("a", "      shutdown: ${UNSET_FOR_PHOENIX_CHECK}\n")
        + worker("b", "      mailbox: {capacity: -1, overflow: spill}\n")
    )
    result = subprocess.run(
        [sys.executable, "-m", "phoenix", "check", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert [line.split(": ")[1] for line in lines[:-1]] == [
        "$.root.children[0].shutdown",
        "$.root.children[1].mailbox.capacity",
        "$.root.children[1].mailbox.overflow",
    ]
    assert lines[-1] == f"3 problem(s) in {path}"
