"""Gateway settings: flags, VIBE_* variables, and one line per problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

import gateway._main
import phoenix
from gateway import (
    AppSettings,
    BreakerSettings,
    GatewaySettings,
    SettingsError,
    create_app,
    parse_settings,
)
from gateway._breaker import CrashBreaker

from tests.conftest import worker

ROOT = Path(__file__).resolve().parents[2]


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


# -- the circuit breaker -------------------------------------------------------------

#: field -> (flag, variable, default, a valid value other than the default)
BREAKER_FLAGS = {
    "crashes": ("--breaker-crashes", "VIBE_BREAKER_CRASHES", 3, 5),
    "window": ("--breaker-window", "VIBE_BREAKER_WINDOW", 60.0, 2.5),
    "cooldown": ("--breaker-cooldown", "VIBE_BREAKER_COOLDOWN", 30.0, 7.5),
    "max_cooldown": ("--breaker-max-cooldown", "VIBE_BREAKER_MAX_COOLDOWN", 600.0, 900.0),
}


@pytest.mark.parametrize("field", list(BREAKER_FLAGS))
def test_every_breaker_setting_has_a_default_a_flag_and_a_variable(field: str) -> None:
    flag, env, default, value = BREAKER_FLAGS[field]
    assert getattr(BreakerSettings(), field) == default
    assert getattr(parse_settings([], {}).breaker_settings(), field) == default
    from_env = parse_settings([], {env: str(value)}).breaker_settings()
    assert getattr(from_env, field) == value
    from_flag = parse_settings([flag, str(value)], {env: "1"}).breaker_settings()
    assert getattr(from_flag, field) == value  # the flag wins over the variable


def test_breaker_crashes_0_turns_the_breaker_off(make_system) -> None:
    settings = parse_settings([], {"VIBE_BREAKER_CRASHES": "0"}).breaker_settings()
    breaker = CrashBreaker(make_system([worker("w")]), CollectorRegistry(), settings)
    for number in range(10):
        breaker.crashed("w", "Boom", f"r{number}")
    assert not breaker.tripped and breaker.refuse("w", "Boom") is None


@pytest.mark.parametrize(
    ("argv", "environ", "problem"),
    [
        (["--breaker-crashes", "-1"], {},
         "--breaker-crashes / VIBE_BREAKER_CRASHES: Expected `int` >= 0 (got '-1')"),
        ([], {"VIBE_BREAKER_CRASHES": "2.5"},
         "--breaker-crashes / VIBE_BREAKER_CRASHES: Expected `int`, got `str` (got '2.5')"),
        ([], {"VIBE_BREAKER_WINDOW": "0"},
         "--breaker-window / VIBE_BREAKER_WINDOW: Expected `float` > 0.0 (got '0')"),
        (["--breaker-window", "soon"], {},
         "--breaker-window / VIBE_BREAKER_WINDOW: Expected `float`, got `str` (got 'soon')"),
        ([], {"VIBE_BREAKER_COOLDOWN": "nan"},
         "--breaker-cooldown / VIBE_BREAKER_COOLDOWN: Expected `float` > 0.0 (got 'nan')"),
        (["--breaker-max-cooldown", "inf"], {},
         "--breaker-max-cooldown / VIBE_BREAKER_MAX_COOLDOWN: must be a finite number > 0,"
         " got inf"),
        (["--breaker-cooldown", "900"], {},
         "--breaker-cooldown / VIBE_BREAKER_COOLDOWN (900) must not exceed"
         " --breaker-max-cooldown / VIBE_BREAKER_MAX_COOLDOWN (600)"),
    ],
    ids=["negative", "fraction", "zero", "word", "nan", "inf", "cooldown-over-max"],
)  # fmt: skip
def test_a_bad_breaker_setting_is_one_line_naming_its_flag_and_variable(
    argv, environ, problem
) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings(argv, environ)
    assert caught.value.problems == [problem]


def test_breaker_settings_built_in_code_are_checked_under_their_names() -> None:
    with pytest.raises(ValueError, match="--breaker-crashes / VIBE_BREAKER_CRASHES: must be >= 0"):
        GatewaySettings(breaker_crashes=-1)
    with pytest.raises(ValueError, match="--breaker-window / VIBE_BREAKER_WINDOW: must be a fin"):
        GatewaySettings(breaker_window=0.0)


def test_help_lists_every_breaker_flag_with_its_variable(capsys) -> None:
    with pytest.raises(SystemExit):
        parse_settings(["--help"], {})
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for flag, env, _, _ in BREAKER_FLAGS.values():
        assert flag in shown and f"[{env}]" in shown
    assert "0 turns the circuit breaker off" in shown


def test_the_gateway_process_serves_with_the_breaker_of_its_settings(
    make_system, monkeypatch
) -> None:
    made: list[AppSettings] = []

    def create(system, settings):
        made.append(settings)
        return create_app(system, settings)

    class NotServing:  # serve() returns at once: what matters is what it built
        def __init__(self, config, on_reload, on_shutdown) -> None:
            self.should_exit = False

        def run(self) -> None:
            pass

    monkeypatch.setattr(gateway._main, "create_app", create)
    monkeypatch.setattr(gateway._main, "GatewayServer", NotServing)
    settings = parse_settings(["--breaker-crashes", "7"], {"VIBE_BREAKER_COOLDOWN": "12"})
    assert gateway._main.serve(make_system([worker("w")]), settings) == 0
    assert made[0].breaker == BreakerSettings(crashes=7, cooldown=12.0)


def test_a_bad_breaker_setting_stops_the_process_with_exit_2() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIBE_")}
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "--breaker-window", "inf", "--log-format", "console"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, env=env,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.splitlines() == [  # for people: the console format
        "gateway: --breaker-window / VIBE_BREAKER_WINDOW: must be a finite number > 0, got inf"
    ]


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--header-timeout", "nan"], "header_timeout must be > 0 and finite, got nan"),
        (["--body-timeout", "inf"], "body_timeout must be > 0 and finite, got inf"),
        (["--drain-timeout", "nan"], "drain_timeout must be >= 0 and finite, got nan"),
        (["--drain-timeout", "-5"], "drain_timeout must be >= 0 and finite, got -5.0"),
    ],
)
def test_a_duration_must_be_a_finite_number(argv, problem) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings(argv, {})
    assert any(problem in line for line in caught.value.problems), caught.value.problems


def test_the_process_defaults_are_the_parts_defaults() -> None:
    from gateway import AppSettings, BreakerSettings
    from gateway._admission import AdmissionLimits
    from gateway._server import ServerLimits

    settings = GatewaySettings()
    app = settings.app_settings()
    assert app == AppSettings(breaker=BreakerSettings(), access_log=True)  # json: on
    assert settings.admission_limits() == AdmissionLimits()
    assert settings.server_limits() == ServerLimits(drain_timeout=30.0)


def test_an_unknown_server_limit_is_an_error_not_ignored() -> None:
    from gateway import uvicorn_config

    with pytest.raises(TypeError, match="header_timout"):
        uvicorn_config(object(), "127.0.0.1", 0, header_timout=1.0)


def test_without_a_wiring_setting_the_working_directorys_wiring_yaml_is_used(
    tmp_path, monkeypatch
) -> None:
    (tmp_path / "wiring.yaml").write_text("version: 1\n")
    monkeypatch.chdir(tmp_path)
    assert parse_settings([], {}).wiring == "wiring.yaml"  # the repository's `make run`


def test_without_a_wiring_setting_or_file_the_shipped_wiring_is_used(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no wiring.yaml here: an installed package, anywhere
    assert parse_settings([], {}).wiring == str(phoenix.default_wiring())


def test_a_wiring_flag_or_variable_wins_over_every_default(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_settings([], {"VIBE_WIRING": "env.yaml"}).wiring == "env.yaml"
    flag = parse_settings(["--wiring", "flag.yaml"], {"VIBE_WIRING": "env.yaml"})
    assert flag.wiring == "flag.yaml"


def test_a_missing_shipped_wiring_is_a_settings_problem_naming_the_flag(
    tmp_path, monkeypatch
) -> None:
    def missing() -> Path:
        raise FileNotFoundError("the shipped wiring is gone")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(phoenix, "default_wiring", missing)
    with pytest.raises(SettingsError) as error:
        parse_settings([], {})
    assert error.value.problems == [
        "--wiring / VIBE_WIRING: not given, no ./wiring.yaml, and the shipped wiring is gone"
    ]
