"""YAML that is not plain data, and values from the environment: a problem with a
position, or one scalar; never a traceback, never structure added by a variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import phoenix

ROOT = Path(__file__).resolve().parents[2]
COUNTER = "tests.phoenix.agents:Counter"
HEAD = f"version: 1\nroot:\n  name: root\n  children:\n    - name: c\n      agent: {COUNTER}\n"
#: Where the config's first key is: line 8, its value at column 16.
CONFIG = HEAD + "      config:\n"
NOT_PLAIN = (
    "is not supported: a wiring file holds plain mappings, lists, text, numbers, booleans,"
    " null and dates (quote a value or write !!str to make it text)"
)


def problems_of(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(phoenix.WiringError) as info:
        phoenix.load_text(text, environ=environ or {})
    return [str(problem) for problem in info.value.problems]


# -- tags and values YAML cannot construct --------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            "        label: !foo bar\n",
            f"wiring.yaml:8:16: $.root.children[0].config.label: YAML tag !foo {NOT_PLAIN}",
        ),
        (
            "        label: !!python/object:os.system echo\n",
            "wiring.yaml:8:16: $.root.children[0].config.label:"
            f" YAML tag !!python/object:os.system {NOT_PLAIN}",
        ),
        (
            "        label: !!python/object/apply:os.system [echo]\n",
            "wiring.yaml:8:16: $.root.children[0].config.label:"
            f" YAML tag !!python/object/apply:os.system {NOT_PLAIN}",
        ),
        (
            "        label: !!binary aGk=\n",
            f"wiring.yaml:8:16: $.root.children[0].config.label: YAML tag !!binary {NOT_PLAIN}",
        ),
        (
            "        label: 2024-02-30\n",
            "wiring.yaml:8:16: $.root.children[0].config.label: invalid date '2024-02-30'"
            " (day is out of range for month); quote it to make it text",
        ),
        (
            "        label: 2024-13-01 10:00:00\n",
            "wiring.yaml:8:16: $.root.children[0].config.label: invalid date"
            " '2024-13-01 10:00:00' (month must be in 1..12); quote it to make it text",
        ),
        (
            "        start: 0b_\n",
            "wiring.yaml:8:16: $.root.children[0].config.start: invalid integer '0b_'"
            " (invalid literal for int() with base 2: ''); quote it to make it text",
        ),
        (
            "        start: !!int many\n",
            "wiring.yaml:8:16: $.root.children[0].config.start:"
            " YAML tag !!int does not fit 'many' (remove the tag)",
        ),
        (
            "        label: !!bool maybe\n",
            "wiring.yaml:8:16: $.root.children[0].config.label:"
            " YAML tag !!bool does not fit 'maybe' (remove the tag)",
        ),
        (
            "        label: <<\n",
            "wiring.yaml:8:16: $.root.children[0].config.label:"
            " '<<' is a YAML !!merge, not a value: quote it to make it text",
        ),
    ],
    ids=[
        "custom",
        "python-object",
        "python-apply",
        "binary",
        "date",
        "datetime",
        "int",
        "int-tag",
        "bool-tag",
        "merge",
    ],  # fmt: skip
)
def test_a_tag_or_an_impossible_value_is_a_problem_at_its_position(config, expected):
    assert problems_of(CONFIG + config) == [expected]


def test_a_tag_on_a_key_a_mapping_or_a_list_is_a_problem_each_reported_in_one_run():
    text = (
        CONFIG + "        !!python/name:os.system label: x\n"
        "        start: !!set {a, b}\n"
        "    - name: d\n"
        f"      agent: {COUNTER}\n"
        "      config: !!python/object:os.system\n        start: 1\n"
        "      depends_on: !!omap [c]\n"
        "    - name: e\n"
        f"      agent: {COUNTER}\n"
        "      config: !!str {start: 1}\n"
    )
    assert problems_of(text) == [
        f"wiring.yaml:8:9: $.root.children[0].config.label: YAML tag !!python/name:os.system {NOT_PLAIN}",
        f"wiring.yaml:9:16: $.root.children[0].config.start: YAML tag !!set {NOT_PLAIN}",
        f"wiring.yaml:12:15: $.root.children[1].config: YAML tag !!python/object:os.system {NOT_PLAIN}",
        f"wiring.yaml:14:19: $.root.children[1].depends_on: YAML tag !!omap {NOT_PLAIN}",
        "wiring.yaml:17:15: $.root.children[2].config: YAML tag !!str does not fit a mapping (remove the tag)",
    ]  # fmt: skip


def test_a_tag_may_say_what_a_value_is_or_make_it_text():
    loaded = phoenix.load_text(CONFIG + "        start: !!int 5\n        label: !!str 2024-02-30\n")
    assert (loaded.configs["c"].start, loaded.configs["c"].label) == (5, "2024-02-30")
    quoted = phoenix.load_text(CONFIG + "        label: '2024-02-30'\n")
    assert quoted.configs["c"].label == "2024-02-30"


def test_no_tag_is_ever_constructed(tmp_path):
    marker = tmp_path / "ran"
    text = CONFIG + f'        label: !!python/object/apply:os.system ["touch {marker}"]\n'
    [problem] = problems_of(text)
    assert "YAML tag !!python/object/apply:os.system is not supported" in problem
    assert not marker.exists()


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            "        label: 2024-02-30\n",
            "{file}:8:16: $.root.children[0].config.label: invalid date",
        ),
        (
            "        label: !foo bar\n",
            "{file}:8:16: $.root.children[0].config.label: YAML tag !foo",
        ),
    ],
    ids=["date", "tag"],
)
def test_phoenix_check_reports_them_in_one_line_and_exits_1(tmp_path, config, expected):
    path = tmp_path / "wiring.yaml"
    path.write_text(CONFIG + config)
    result = subprocess.run(
        [sys.executable, "-m", "phoenix", "check", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    first, last = result.stderr.splitlines()
    assert first.startswith(expected.format(file=path)) and last == f"1 problem(s) in {path}"


# -- ${VAR}: one scalar, never YAML ---------------------------------------------------

HOSTILE = {
    "line-break-and-key": "x\n        evil: 1",
    "colon": "a: b",
    "open-brace": "{a: 1",
    "flow-list": "[1, 2]",
    "tag": "!!python/object:os.system x",
    "alias": "*anchor",
    "anchor": "&a x",
    "documents": "a\n---\nb",
    "comment": "x # not a comment",
    "impossible-date": "2024-02-30",
    "deep": "[" * 5_000,
    "folded-lines": "line 1\nline 2",
}


@pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))
def test_an_environment_value_lands_as_one_string_never_parsed_as_yaml(value):
    text = CONFIG + "        label: ${LABEL}\n"
    loaded = phoenix.load_text(text, environ={"LABEL": value})
    assert loaded.configs["c"].label == value
    assert loaded.configs["c"].start == 0  # nothing else of the config was touched


def test_an_environment_value_cannot_add_keys_where_it_is_substituted():
    text = HEAD + "      restart: ${RESTART}\n"
    problems = problems_of(text, {"RESTART": "permanent\n      depends_on: [ghost]"})
    assert problems == [
        "wiring.yaml:7:16: $.root.children[0].restart:"
        " expected permanent|transient|temporary, got '***'"
    ]


def test_a_plain_environment_value_is_typed_by_yaml_patterns_only():
    text = CONFIG + "        start: ${START}\n        label: ${LABEL}\n"
    loaded = phoenix.load_text(text, environ={"START": " 0x10\n", "LABEL": "  two\nlines \n"})
    assert loaded.configs["c"].start == 16  # a number, as YAML reads 0x10; whitespace dropped
    assert loaded.configs["c"].label == "two\nlines"  # text: its line break kept, not folded
    quoted = CONFIG + '        label: "${LABEL}"\n'
    assert phoenix.load_text(quoted, environ={"LABEL": " 8080 "}).configs["c"].label == " 8080 "


@pytest.mark.parametrize("value", ["{a: 1", "x: [", "2024-02-30", "!!python/object:os.system x"])
def test_an_environment_value_that_is_no_valid_yaml_is_still_masked_in_errors(value):
    text = CONFIG + "        start: ${START}\n"
    assert problems_of(text, {"START": value}) == [
        "wiring.yaml:8:16: $.root.children[0].config.start: expected int, got '***'"
    ]
