"""Which fields are durations: declared with ``msgspec.Meta(extra={"duration": ...})``,
or listed in phoenix._durations.KNOWN for the vibe_actors types phoenix does not define."""

from __future__ import annotations

import importlib
import pkgutil
import typing
from typing import Annotated

import msgspec
import pytest

import phoenix
import vibe_actors
import vibe_actors.agents
from phoenix import _durations
from vibe_actors import Agent


class TimedConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    grace: Annotated[float, msgspec.Meta(ge=0, extra={"duration": "s"})] = 1.0
    window: Annotated[int, msgspec.Meta(ge=0, extra={"duration": "ms"})] | None = None
    ratio: float = 0.5  # not a duration


class Timed(Agent):
    """An agent whose config declares its durations."""

    Config = TimedConfig


def timed(config: str) -> str:
    return (
        "version: 1\nroot:\n  name: root\n  children:\n"
        f"    - name: t\n      agent: {__name__}:Timed\n      config: {config}\n"
    )


def test_an_agents_config_declares_its_durations_with_msgspec_meta():
    config = phoenix.load_text(timed("{grace: 1m, window: 2s}")).configs["t"]
    assert (config.grace, config.window) == (60.0, 2000)
    config = phoenix.load_text(timed("{grace: 3, window: 1500}")).configs["t"]
    assert (config.grace, config.window) == (3.0, 1500)  # plain numbers: the declared unit
    with pytest.raises(phoenix.WiringError) as info:
        phoenix.load_text(timed("{window: 1.5, ratio: 1s}"))
    assert [p.message for p in info.value.problems] == [
        "expected a duration >= 0, got 1.5: a number with a unit, ms, s, m or h"
        " (250ms, 10s, 1m); a plain number here is whole milliseconds",
        "expected float, got '1s'",
    ]


def _vibe_structs() -> dict[str, type]:
    """Every Struct class of vibe_actors and its system agents, by qualified name."""
    modules = [vibe_actors] + [
        importlib.import_module(f"vibe_actors.agents.{m.name}")
        for m in pkgutil.iter_modules(vibe_actors.agents.__path__)
    ]
    return {
        value.__qualname__: value
        for module in modules
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, msgspec.Struct)
    }


def _numbers(tp: object) -> set[object]:
    """The plain types of an annotation, without Annotated metadata and None."""
    if typing.get_origin(tp) is typing.Annotated:
        return _numbers(typing.get_args(tp)[0])
    if typing.get_args(tp):
        return {t for arg in typing.get_args(tp) for t in _numbers(arg)}
    return set() if tp is type(None) else {tp}


@pytest.mark.parametrize("name", sorted(_durations.KNOWN))
def test_every_known_duration_names_a_number_field_of_a_vibe_actors_struct(name):
    struct = _vibe_structs().get(name)
    assert struct is not None, f"no vibe_actors struct {name}: update phoenix._durations.KNOWN"
    fields = {f.name: f for f in msgspec.structs.fields(struct)}
    for field in _durations.KNOWN[name]:
        assert field in fields, f"{name}.{field}"
        assert _durations.unit_of(struct, fields[field]) == "s"
        assert _numbers(fields[field].type) == {float}, f"{name}.{field} is not a number"
