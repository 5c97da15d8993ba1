"""Supervision directives in wiring.yaml: resolved to exception classes, mistakes named."""

from __future__ import annotations

import textwrap

import pytest

import phoenix
from vibe_actors import Directive


def _load(directives: str):
    return phoenix.load_text(
        textwrap.dedent(
            f"""
            version: 1
            root:
              name: root
              children:
                - name: c
                  agent: tests.phoenix.agents:Counter
                  directives: {directives}
            """
        ),
        "wiring.yaml",
    )


def test_directives_resolve_builtins_and_import_strings():
    wiring = _load('{ValueError: resume, "tests.vibe_actors.test_directives:Flaky": stop}')
    root, _ = phoenix.build(wiring)
    (spec,) = root.children
    from tests.vibe_actors.test_directives import Flaky

    assert spec.directives == {ValueError: Directive.RESUME, Flaky: Directive.STOP}


@pytest.mark.parametrize(
    ("directives", "expected"),
    [
        (
            "{ValueError: ignore}",
            "$.root.children[0].directives.ValueError: expected "
            "resume|restart|stop|escalate, got 'ignore'",
        ),
        ("{NoSuchError: resume}", "'NoSuchError' is not an exception class"),
        ('{"tests.phoenix.agents:Counter": stop}', "is not an exception class"),
        ('{"nowhere.at.all:Error": stop}', "$.root.children[0].directives.nowhere.at.all:Error"),
    ],
)
def test_directive_mistakes_are_named_with_their_place(directives, expected):
    with pytest.raises(phoenix.WiringError) as error:
        _load(directives)
    assert expected in str(error.value)
    assert "wiring.yaml:" in str(error.value)
