"""Gateway settings from command-line flags and VIBE_* variables: :func:`parse_settings`.

Precedence: a flag given on the command line, else its environment variable,
else the default. Every problem is reported at once, one line each, naming the
flag and its variable; a token never appears in any message.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn

import msgspec

import phoenix
from gateway._settings import GatewaySettings, SettingsError
from gateway._settings_flags import OPTIONS, SWITCHES, flags, named

__all__ = ["default_wiring_file", "parse_settings"]

#: The wiring of the working directory: the repository's, where `make run` starts.
LOCAL_WIRING = "wiring.yaml"

#: Switches' variables: the spellings of true and false.
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})

_FIELD_TYPES = {field.name: field.type for field in msgspec.structs.fields(GatewaySettings)}


class _Parser(argparse.ArgumentParser):
    """Usage errors (an unknown flag, a missing value) are settings problems like any other:
    reported in the log format, one line each, exit 2."""

    def error(self, message: str) -> NoReturn:
        raise SettingsError([f"{message} (python -m gateway --help lists the flags)"])


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m gateway",
        description="Start the actor system from wiring.yaml and serve it over HTTP.",
        epilog="Every flag can also be set by its VIBE_* variable; switches take 1/0, true/false, "
        "yes/no or on/off there. Bearer tokens come only from VIBE_TOKENS ('principal:token,...') "
        "or VIBE_TOKENS_FILE (one 'principal:token' a line).",
    )
    for field, (env, text) in OPTIONS.items():
        names = flags(field)
        if field == "chaos":
            parser.add_argument(*names, action="store_true", default=None, help=f"{text} [{env}]")
        elif field in SWITCHES:
            parser.add_argument(
                *names, action=argparse.BooleanOptionalAction, default=None, help=f"{text} [{env}]"
            )
        else:
            parser.add_argument(*names, dest=field, default=None, help=f"{text} [{env}]")
    return parser


def _switch(raw: str) -> bool | None:
    """A switch's variable as a bool (None: not a spelling of either)."""
    value = raw.strip().lower()
    return True if value in _TRUE else False if value in _FALSE else None


def _requested_format(argv: Sequence[str] | None, environ: Mapping[str, str]) -> str:
    """The log format asked for, found without parsing the rest (to report usage errors in)."""
    args = list(sys.argv[1:] if argv is None else argv)
    for i, arg in enumerate(args):
        if arg == "--log-format" and i + 1 < len(args):
            return "console" if args[i + 1] == "console" else "json"
        if arg.startswith("--log-format="):
            return "console" if arg.partition("=")[2] == "console" else "json"
    return "console" if environ.get("VIBE_LOG_FORMAT") == "console" else "json"


def _tokens(environ: Mapping[str, str], problems: list[str]) -> dict[str, str]:
    raw = environ.get("VIBE_TOKENS", "")
    source = "VIBE_TOKENS"
    if not raw and environ.get("VIBE_TOKENS_FILE"):
        source = f"VIBE_TOKENS_FILE ({environ['VIBE_TOKENS_FILE']})"
        try:
            with open(environ["VIBE_TOKENS_FILE"], encoding="utf-8") as handle:
                raw = ",".join(line.strip() for line in handle if line.strip())
        except OSError as exc:
            problems.append(f"{source}: cannot read: {exc.strerror}")
            return {}
    tokens: dict[str, str] = {}
    for number, pair in enumerate(filter(None, (p.strip() for p in raw.split(","))), 1):
        principal, sep, token = pair.partition(":")
        if not sep or not principal or not token:
            problems.append(f"{source}: entry {number} is not 'principal:token'")  # no secret
        else:
            tokens[principal] = token
    return tokens


def default_wiring_file() -> str:
    """The wiring to boot when neither ``--wiring`` nor ``VIBE_WIRING`` names one.

    ``./wiring.yaml`` if it exists (the repository's, so ``make run`` is unchanged; one
    that exists but cannot be read fails the start, it is not skipped), else the wiring
    shipped in the package (:func:`phoenix.default_wiring`). Raises
    :class:`FileNotFoundError` if the package's copy is missing (a broken install).
    """
    if os.path.exists(LOCAL_WIRING):
        return LOCAL_WIRING
    return str(phoenix.default_wiring())


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> GatewaySettings:
    """Build the settings; raises :class:`SettingsError` listing every problem."""
    environ = os.environ if environ is None else environ
    try:
        args = vars(_parser().parse_args(argv))
    except SettingsError as exc:
        raise SettingsError(exc.problems, _requested_format(argv, environ)) from None
    problems: list[str] = []
    values: dict[str, object] = {}
    for field, (env, _) in OPTIONS.items():
        value = args.get(field)
        if value is None and env in environ:
            value = environ[env]
            if field in SWITCHES:
                value = _switch(environ[env])
                if value is None:
                    problems.append(
                        f"{named(field)}: expected 1/0, true/false, yes/no or on/off "
                        f"(got {environ[env]!r})"
                    )
                    continue
        if value is None:
            continue
        try:
            values[field] = msgspec.convert(value, _FIELD_TYPES[field], strict=False)
        except msgspec.ValidationError as exc:
            problems.append(f"{named(field)}: {exc} (got {value!r})".replace(" - at `$`", ""))
    if "wiring" not in values:
        try:
            values["wiring"] = default_wiring_file()
        except FileNotFoundError as exc:
            problems.append(f"{named('wiring')}: not given, no ./wiring.yaml, and {exc}")
    values["tokens"] = _tokens(environ, problems)
    log_format = str(values.get("log_format", "json"))
    if problems:
        raise SettingsError(problems, log_format)
    try:
        return GatewaySettings(**values)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise SettingsError([str(exc)], log_format) from exc
