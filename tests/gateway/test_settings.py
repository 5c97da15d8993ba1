"""Gateway settings: flags, VIBE_* variables, and one line per problem."""

from __future__ import annotations

import pytest

from gateway import GatewaySettings, SettingsError, parse_settings


def test_gc_threshold_defaults_above_pythons_and_reads_its_flag_and_variable() -> None:
    assert parse_settings([], {}).gc_threshold == 10_000
    assert parse_settings([], {"VIBE_GC_THRESHOLD": "0"}).gc_threshold == 0
    flag_wins = parse_settings(["--gc-threshold", "2500"], {"VIBE_GC_THRESHOLD": "0"})
    assert flag_wins.gc_threshold == 2500


@pytest.mark.parametrize(
    ("argv", "environ", "problem"),
    [
        (["--gc-threshold", "-1"], {}, "gc_threshold must be >= 0, got -1"),
        ([], {"VIBE_GC_THRESHOLD": "lots"}, "--gc-threshold / VIBE_GC_THRESHOLD: Expected `int`"),
    ],
)
def test_a_bad_gc_threshold_names_the_setting(argv, environ, problem) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings(argv, environ)
    assert any(problem in line for line in caught.value.problems), caught.value.problems


def test_the_settings_struct_refuses_a_negative_gc_threshold() -> None:
    with pytest.raises(ValueError, match="gc_threshold"):
        GatewaySettings(gc_threshold=-5)
