"""YAML bombs: alias expansion, recursive aliases and deep nesting are refused with a
position, quickly, and never as a traceback (issue 16, point 10)."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

import phoenix

ROOT = Path(__file__).resolve().parents[2]
COUNTER = "tests.phoenix.agents:Counter"

# Ten times more at each level: *e stands for 10^5 "lol", *f would be 10^6.
BILLION_LAUGHS = """\
version: 1
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
root:
  name: root
  children:
    - name: c
      agent: tests.phoenix.agents:Counter
      config: {label: *f}
"""
# a: 11 nodes; b adds 10 x 11, c 10 x 111, d 10 x 1,111 (12,330 in all); each *d
# in e adds 11,111: the 8th (e[7], line 6, column 36) crosses 100,000.
BOMB_PROBLEM = (
    "bomb.yaml:6:36: $.e[7]: aliases expand to more than 100000 nodes"
    " (limit MAX_ALIAS_NODES), crossed at alias *d"
)


def problems_of(text: str, file: str = "wiring.yaml") -> list[str]:
    with pytest.raises(phoenix.WiringError) as info:
        phoenix.load_text(text, file)
    return [str(problem) for problem in info.value.problems]


def test_the_limits_are_module_constants():
    from phoenix import _yaml  # here, not at the top: every other test also runs without them

    assert (_yaml.MAX_DEPTH, _yaml.MAX_ALIAS_NODES, _yaml.MAX_ALIAS_PATH_CHARS) == (
        100,
        100_000,
        10_000_000,
    )


def test_billion_laughs_is_refused_at_the_alias_crossing_the_limit_and_small():
    tracemalloc.start()
    try:
        found = problems_of(BILLION_LAUGHS, "bomb.yaml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found == [BOMB_PROBLEM]
    # The expansion stopped early (it took 550 MB, and 9.6 s, unbounded): memory is the
    # machine-independent witness; the time is the benchmark's, not this test's.
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_alias_expansion_up_to_the_limit_loads_one_node_more_is_refused():
    # *k names 1,000 nodes (a list of 999): 100 uses add exactly MAX_ALIAS_NODES.
    items = ", ".join(["0"] * 999)
    uses = ", ".join(["*k"] * 100)
    head = f"version: 1\nx-k: &k [{items}]\nx-s: &s 1\nx-uses: [{uses}"
    tail = "]\nroot: {name: root, children: []}\n"
    with pytest.raises(phoenix.WiringError) as info:
        phoenix.load_text(head + tail)
    assert all("limit" not in str(p) for p in info.value.problems)  # only 'unknown field'
    column = len(f"x-uses: [{uses}, ") + 1
    assert problems_of(head + ", *s" + tail) == [
        f"wiring.yaml:4:{column}: $.x-uses[100]: aliases expand to more than 100000 nodes"
        " (limit MAX_ALIAS_NODES), crossed at alias *s"
    ]


def test_alias_expansion_under_long_keys_is_bounded_by_path_characters():
    key = "k" * 5_000  # an explicit key: its path is 5,000 characters long
    text = (
        "version: 1\n"
        f"x-list: &l [{', '.join(['0'] * 99)}]\n"  # 100 nodes
        f"? {key}\n"
        f": [{', '.join(['*l'] * 30)}]\n"  # each use: 100 paths of > 5,000 characters
        "root: {name: root, children: []}\n"
    )
    # 100 x (5,000 + len("$.") + len("[i]") + len("[j]")) per use: the 20th crosses 10^7.
    column = len(": [" + "*l, " * 19) + 1
    assert problems_of(text) == [
        f"wiring.yaml:4:{column}: $.{key}[19]: aliases expand to paths of more than 10000000"
        " characters (limit MAX_ALIAS_PATH_CHARS), crossed at alias *l"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "version: 1\na: &x [*x]\nroot: {name: root, children: []}\n",
            "wiring.yaml:2:8: $.a[0]: alias *x is recursive (it names a node that contains it)",
        ),
        (
            "version: 1\nroot: &r\n  name: root\n  children:\n    - *r\n",
            "wiring.yaml:5:7: $.root.children[0]: alias *r is recursive"
            " (it names a node that contains it)",
        ),
        (
            "version: 1\nroot: &r\n  name: root\n  children:\n    - name: w\n      config: *r\n",
            "wiring.yaml:6:15: $.root.children[0].config: alias *r is recursive"
            " (it names a node that contains it)",
        ),
        (  # in a key: keys are not expanded, but their anchors are checked all the same
            "version: 1\nx: {? &k [*k] : 1}\nroot: {name: root, children: []}\n",
            "wiring.yaml:2:11: $.x.?[0]: alias *k is recursive (it names a node that contains it)",
        ),
    ],
    ids=["sequence", "root-in-its-children", "config-of-a-child", "key"],
)
def test_a_recursive_alias_is_one_problem_at_the_alias(text, expected):
    assert problems_of(text) == [expected]


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("version: 1\nx: " + "[" * 10_000 + "]" * 10_000 + "\n", "2:103"),
        ("version: 1\nx: " + "{a: " * 10_000 + "}" * 10_000 + "\n", "2:397"),
        ("".join(" " * level + "a:\n" for level in range(150)) + " " * 150 + "a\n", "100:100"),
    ],
    ids=["flow-sequences", "flow-mappings", "block-mappings"],
)
def test_deep_nesting_is_one_problem_not_a_recursion_error(text, position):
    assert problems_of(text) == [
        f"wiring.yaml:{position}: $: nesting deeper than 100 levels (limit MAX_DEPTH)"
    ]


def test_nesting_through_aliases_counts_the_levels_of_what_they_name():
    deep = "[" * 60 + "]" * 60  # 60 levels, fine on its own
    text = f"version: 1\nx-deep: &deep {deep}\nx-more: {'[' * 50}*deep{']' * 50}\n"
    assert problems_of(text + "root: {name: root, children: []}\n") == [
        f"wiring.yaml:3:{len('x-more: ') + 51}: $.x-more{'[0]' * 50}: nesting deeper than"
        " 100 levels through alias *deep (limit MAX_DEPTH)"
    ]


def test_a_wiring_of_thousands_of_agents_sharing_configs_through_aliases_loads():
    workers = "".join(
        f"    - name: w{index}\n      agent: {COUNTER}\n      config: *shared\n"
        for index in range(1, 2_000)
    )
    text = (
        "version: 1\nroot:\n  name: root\n  children:\n"
        f"    - name: w0\n      agent: {COUNTER}\n"
        "      config: &shared\n        start: 7\n        label: shared\n" + workers
    )
    wiring = phoenix.load_text(text)
    assert len(wiring.agents) == 2_000
    assert wiring.configs["w1999"].start == 7 and wiring.configs["w1999"].label == "shared"


def test_an_error_under_an_alias_is_at_the_anchor_an_error_of_the_alias_at_the_alias():
    text = (
        "version: 1\nroot:\n  name: root\n  children:\n"
        f"    - name: a\n      agent: {COUNTER}\n      config: &bad\n        start: many\n"
        f"    - name: b\n      agent: {COUNTER}\n      config: *bad\n"
        f"    - name: c\n      agent: {COUNTER}\n      config: &scalar 5\n"
        f"    - name: d\n      agent: {COUNTER}\n      config: *scalar\n"
    )
    assert problems_of(text) == [
        "wiring.yaml:8:16: $.root.children[0].config.start: expected int, got 'many'",
        "wiring.yaml:8:16: $.root.children[1].config.start: expected int, got 'many'",
        "wiring.yaml:14:15: $.root.children[2].config: expected a mapping, got an integer",
        "wiring.yaml:17:15: $.root.children[3].config: expected a mapping, got an integer",
    ]


def test_a_secret_under_many_aliases_stays_masked():
    uses = "".join(
        f"    - name: w{index}\n      agent: {COUNTER}\n      config: *secret\n"
        for index in range(1, 50)
    )
    text = (
        "version: 1\nroot:\n  name: root\n  children:\n"
        f"    - name: w0\n      agent: {COUNTER}\n      config: &secret\n        start: ${{TOKEN}}\n"
        + uses
    )
    with pytest.raises(phoenix.WiringError) as info:
        phoenix.load_text(text, environ={"TOKEN": "sk-very-secret"})
    assert len(info.value.problems) == 50
    assert "sk-very-secret" not in str(info.value) and "got '***'" in str(info.value)


def test_a_dependency_chain_of_thousands_of_agents_is_no_recursion_error():
    workers = "".join(
        f"    - name: w{index}\n      agent: {COUNTER}\n      depends_on: [w{index + 1}]\n"
        for index in range(1_499)
    )
    text = f"version: 1\nroot:\n  name: root\n  children:\n{workers}"
    assert len(phoenix.load_text(text + f"    - name: w1499\n      agent: {COUNTER}\n").agents) == (
        1_500
    )
    cyclic = text + f"    - name: w1499\n      agent: {COUNTER}\n      depends_on: [w0]\n"
    [problem] = problems_of(cyclic)
    assert problem.startswith("wiring.yaml:7:19: $.root.children[0].depends_on: dependency cycle:")
    assert problem.endswith("w1498 -> w1499 -> w0")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BILLION_LAUGHS, BOMB_PROBLEM.replace("bomb.yaml", "{file}")),
        (
            "version: 1\na: &x [*x]\n",
            "{file}:2:8: $.a[0]: alias *x is recursive (it names a node that contains it)",
        ),
        (
            "version: 1\nx: " + "[" * 10_000 + "]" * 10_000 + "\n",
            "{file}:2:103: $: nesting deeper than 100 levels (limit MAX_DEPTH)",
        ),
    ],
    ids=["billion-laughs", "recursive-alias", "deep-nesting"],
)
def test_phoenix_check_reports_a_bomb_in_one_line_and_exits_1(tmp_path, text, expected):
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "phoenix", "check", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [expected.format(file=path), f"1 problem(s) in {path}"]


def test_a_key_may_be_an_alias_of_a_scalar_but_never_a_collection():
    named = "version: 1\nx-name: &name name\nroot: {*name : root, children: []}\n"
    with pytest.raises(phoenix.WiringError) as info:
        phoenix.load_text(named)
    assert [str(p) for p in info.value.problems] == [
        "wiring.yaml:2:1: $.x-name: unknown field 'x-name'"
        " (expected one of: ray, root, system, version)"
    ]  # the root's name came through the alias: no other problem
    collection = "version: 1\nroot: {name: root, children: [], ? [1, 2] : 3}\n"
    assert problems_of(collection) == [
        "wiring.yaml:2:36: $.root: a mapping key must be a scalar (text or a number)"
    ]
