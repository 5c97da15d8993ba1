"""What a send refuses (issue 20.8): builtin values, and with serialize_messages on,
messages that do not survive msgpack, each with a typed error naming the type and field."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from vibe_actors import CodecError, Message, NotAMessage

from tests.conftest import worker
from tests.vibe_actors.agents import Add


class Carries(Message):
    value: Any


class Tagged(Message):
    tags: set[str]


@pytest.mark.parametrize("value", [{"type": "Add", "n": 1}, "Add", 1, None, [1], (1,)])
def test_a_builtin_value_is_refused_at_the_send(make_system, value):
    system = make_system([worker("w")])
    ref = system.ref("w")
    with pytest.raises(NotAMessage, match="send a vibe_actors.Message subclass"):
        ref.tell(value)
    with pytest.raises(NotAMessage):
        ref.ask(value)
    with pytest.raises(NotAMessage):
        ref.ask_future(value)
    with pytest.raises(NotAMessage):
        asyncio.run(ref.ask_async(value))
    assert ref.ask(Add(n=1)) is not None  # nothing was sent; the agent serves on
    assert system.dead_letters.total() == 0


def test_an_unencodable_field_is_a_codec_error_naming_type_and_field(make_system):
    system = make_system([worker("w")], serialize_messages=True)
    with pytest.raises(CodecError) as error:
        system.ref("w").tell(Carries(value=object()))
    assert error.value.path == "$.value"
    assert "Carries cannot be serialized" in str(error.value)


def test_a_value_that_comes_back_different_is_a_codec_error(make_system):
    system = make_system([worker("w")], serialize_messages=True)
    with pytest.raises(CodecError, match=r"Carries.value does not survive serialization: a set"):
        system.ref("w").tell(Carries(value={"a"}))
    system.ref("w").tell(Tagged(tags={"a"}))  # a declared set[str] survives
    system.ref("w").tell(Carries(value=float("nan")))  # NaN stays NaN: not a difference


def test_without_serialize_messages_structs_pass_as_they_are(make_system):
    system = make_system([worker("w")], serialize_messages=False)
    system.ref("w").tell(Carries(value={"a"}))  # in process: the object itself
