"""Durations in a wiring file: a number with a unit, or a plain number in the field's unit.

The rule, the same for every duration of the file: a duration may be written
with a unit, ``ms``, ``s``, ``m`` or ``h`` (``250ms``, ``10s``, ``1.5m``,
``1h``). A plain number keeps the unit the field always had, so no existing
file changes meaning: milliseconds for ``shutdown`` (as in an OTP child spec:
``shutdown: 10000`` is ten seconds), seconds for every other duration.

Which fields are durations: those of the wiring format (``shutdown``,
``period``, ``backoff``, ``mailbox.block_timeout``, ``system.ask_timeout``,
``system.start_timeout``), those of the system agents' configs (:data:`KNOWN`),
and any field of an agent's ``Config`` declared as one with
``msgspec.Meta(extra={"duration": "s"})`` (or ``"ms"``: the unit of a plain
number).
"""

from __future__ import annotations

import re
import types
import typing
from decimal import Decimal
from typing import Any

import msgspec

__all__ = ["KNOWN", "MILLISECONDS", "PATTERN", "SECONDS", "hint", "parse", "unit_of"]

MILLISECONDS = "ms"
SECONDS = "s"
_FACTORS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600)}
_TEXT = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)\s*")
#: What a duration with a unit looks like (for the JSON Schema).
PATTERN = r"^\s*(\d+(\.\d*)?|\.\d+)\s*(ms|s|m|h)\s*$"

#: The duration fields of types phoenix does not define (all in seconds), by the
#: class's name within vibe_actors, until those types declare them with
#: ``msgspec.Meta(extra={"duration": "s"})``. tests/phoenix checks every entry.
KNOWN: dict[str, frozenset[str]] = {
    name: frozenset(fields.split())
    for name, fields in {
        "SystemConfig": "ask_timeout start_timeout",
        "MailboxSpec": "block_timeout",
        "BackoffSpec": "min max reset_after",
        "AuditConfig": "verify_interval dead_letter_flush append_timeout",
        "IntrospectConfig": "sample_interval",
        "JobsConfig": "default_timeout backoff_initial backoff_max",
        "JobWorkerConfig": "kill_grace",
        "PubSubConfig": "deliver_timeout recheck_interval",
        "RegistryConfig": "recheck_interval",
        "SchedulerConfig": "min_interval caller_min_interval",
        "StateConfig": "sweep_interval",
        "WatchdogConfig": "interval deadline",
        "AgentWatch": "deadline",
        "WebhooksConfig": "timeout connect_timeout backoff_initial backoff_max breaker_cooldown",
    }.items()
}


def unit_of(owner: type, field: msgspec.structs.FieldInfo) -> str | None:
    """The unit of a plain number in ``owner``'s ``field`` if it is a duration, else None."""
    declared = _declared(field.type)
    if declared is not None:
        return declared
    if owner.__module__.split(".")[0] == "vibe_actors" and field.name in KNOWN.get(
        owner.__qualname__, ()
    ):
        return SECONDS
    return None


def _declared(tp: Any) -> str | None:
    """``"s"`` or ``"ms"`` from a ``msgspec.Meta(extra={"duration": ...})`` in ``tp``
    (also inside ``X | None`` or ``X | Literal[...]``)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        for meta in typing.get_args(tp)[1:]:
            if isinstance(meta, msgspec.Meta) and meta.extra:
                unit = meta.extra.get("duration")
                if unit in (SECONDS, MILLISECONDS):
                    return str(unit)
        return _declared(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        for member in typing.get_args(tp):
            unit = _declared(member)
            if unit is not None:
                return unit
    return None


def parse(text: str, unit: str) -> int | float | None:
    """``text`` (``"250ms"``, ``"1.5s"``) as a number of ``unit``, or None if it is not
    a duration with a unit. A whole number of milliseconds is an int."""
    match = _TEXT.fullmatch(text)
    if match is None:
        return None
    number, written = match.groups()
    value = Decimal(number) * _FACTORS[written] / _FACTORS[unit]  # exact: 1.1s is 1100 ms
    if unit == MILLISECONDS and value == value.to_integral_value():
        return int(value)
    return float(value)


def hint(unit: str) -> str:
    """What a duration field accepts, for an error message."""
    plain = "whole milliseconds" if unit == MILLISECONDS else "seconds"
    return f"a number with a unit, ms, s, m or h (250ms, 10s, 1m); a plain number here is {plain}"
