"""An inline wiring of the pytest plugin: problems point at the snippet as written in
the test, never at the wrapper the plugin puts around a list of children."""

from __future__ import annotations

import pytest

import phoenix
from phoenix.pytest_plugin import system_from_wiring

pytest_plugins = ["pytester"]

COUNTER = "tests.phoenix.agents:Counter"


def positions(wiring: str) -> list[str]:
    with pytest.raises(phoenix.WiringError) as info:
        system_from_wiring(wiring)
    return [f"{p.line}:{p.column}: {p.path}" for p in info.value.problems]


def test_a_list_of_children_as_a_marker_writes_it():
    wiring = f"""
        - name: counter
          agent: {COUNTER}
          restart: sometimes
          config:
            start: many
    """
    # Line 1 is the blank line after the opening quotes; the snippet is indented by 8.
    assert positions(wiring) == [
        "4:20: $.root.children[0].restart",
        "6:20: $.root.children[0].config.start",
    ]
    assert wiring.splitlines()[3][19:] == "sometimes"
    assert wiring.splitlines()[5][19:] == "many"


def test_a_snippet_without_leading_blank_line_or_indentation():
    wiring = (
        f"- name: a\n  agent: {COUNTER}\n- name: b\n  agent: {COUNTER}\n  depends_on: [ghost]\n"
    )
    assert positions(wiring) == ["5:16: $.root.children[1].depends_on[0]"]


def test_a_whole_file_keeps_its_lines_as_given():
    wiring = f"""

        version: 1
        root:
          name: top
          intensity: lots
          children:
            - name: a
              agent: {COUNTER}
    """
    assert positions(wiring) == ["6:22: $.root.intensity"]
    assert wiring.splitlines()[5][21:] == "lots"


def test_a_problem_of_the_wrapper_itself_points_at_the_first_line_of_the_snippet():
    wiring = f"""
        - name: root
          agent: {COUNTER}
    """
    problems = positions(wiring)
    assert problems == ["2:17: $.root.children[0].name"]  # the wrapper's root is named root


def test_the_message_names_the_inline_wiring_and_the_snippets_line():
    with pytest.raises(phoenix.WiringError, match=r"^<inline wiring>:3:12: "):
        system_from_wiring(f"- name: a\n  agent: {COUNTER}\n  restart: sometimes\n")


def test_a_marker_that_does_not_validate_fails_the_test_at_the_snippets_line(pytester):
    test_file = pytester.makepyfile(
        """
        import pytest

        @pytest.mark.wiring(\"\"\"
            - name: schema
              agent: vibe_actors.agents.schema:Schema
              restart: sometimes
        \"\"\")
        def test_it(actor_system):
            pass
        """
    )
    source = test_file.read_text().splitlines()
    marker = next(i for i, line in enumerate(source) if "mark.wiring" in line)
    assert source[marker + 3].index("sometimes") == 15  # snippet line 4, column 16
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.re_match_lines([r".*<inline wiring>:4:16: \$\.root\.children\[0\]\.restart: "])
