"""The codec: every message round-trips through msgpack and JSON (hypothesis)."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibe_actors import (
    AgentCrashed,
    CodecError,
    DeadlineExceeded,
    MailboxFull,
    Message,
    Ping,
    Pong,
    Terminated,
    Unavailable,
    UnknownMessage,
    decode_error,
    decode_json,
    decode_msgpack,
    encode_json,
    encode_msgpack,
)
from vibe_actors._codec import roundtrip

from tests.vibe_actors.agents import Add, Echo, Echoed

RUNTIME_MESSAGES = [
    Ping, Pong, Terminated, AgentCrashed, MailboxFull, DeadlineExceeded, Unavailable,
    UnknownMessage, Add, Echo, Echoed,
]  # fmt: skip
Union = (
    Ping
    | Pong
    | Terminated
    | AgentCrashed
    | MailboxFull
    | DeadlineExceeded
    | Unavailable
    | UnknownMessage
    | Add
    | Echo
    | Echoed
)

text = st.text(max_size=50)
finite = st.floats(allow_nan=False, allow_infinity=False)
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)  # msgpack's range
messages = st.one_of(
    st.builds(Ping),
    st.builds(Pong, agent=text, incarnation=ints),
    st.builds(Terminated, agent=text, reason=text),
    st.builds(AgentCrashed, agent=text, error=text, detail=text),
    st.builds(
        MailboxFull, agent=text, capacity=st.integers(min_value=0, max_value=2**63 - 1), detail=text
    ),
    st.builds(DeadlineExceeded, agent=text, timeout=finite),
    st.builds(Unavailable, agent=text, reason=text),
    st.builds(UnknownMessage, agent=text, message_type=text),
    st.builds(Add, n=ints, key=text),
    st.builds(Echo, text=text),
    st.builds(Echoed, text=text, by=text, incarnation=st.integers(min_value=0, max_value=2**32)),
)


@settings(deadline=None, max_examples=300)
@given(messages)
def test_round_trip_through_msgpack_and_json_as_a_tagged_union(message):
    assert decode_msgpack(encode_msgpack(message), Union) == message
    assert decode_json(encode_json(message), Union) == message
    assert roundtrip(message) == message


@settings(deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_codec_error(data):
    for decode in (decode_msgpack, decode_json):
        try:
            decode(data, Union)
        except CodecError as exc:
            assert exc.message
            assert exc.path.startswith("$")


def test_json_tag_is_the_class_name():
    assert encode_json(Add(n=1)) == b'{"type":"Add","n":1,"key":""}'


def test_decode_error_names_the_field():
    with pytest.raises(CodecError) as info:
        decode_json(b'{"type":"Add","n":"one"}', Union)
    assert info.value.path == "$.n"
    assert "Expected `int`, got `str`" in info.value.message


def test_unknown_fields_are_rejected():
    with pytest.raises(CodecError, match="unknown field `extra`"):
        decode_json(b'{"type":"Ping","extra":1}', Union)


def test_messages_are_frozen():
    with pytest.raises(AttributeError):
        Add(n=1).n = 2  # type: ignore[misc]


def test_unencodable_message_fails_at_send_under_serialize_messages(make_system):
    from tests.conftest import worker

    class Bad(Message):
        payload: object

    system = make_system([worker("w")])
    with pytest.raises(CodecError, match="Bad cannot be serialized") as error:
        system.tell("w", Bad(payload=object()))
    assert error.value.path == "$.payload"


@pytest.mark.parametrize(
    ("decode", "data"),
    [
        (decode_json, b'{"type":"Echo","text":"\xff"}'),
        (decode_json, b'{"type":"Echo","text":"\xed\xa0\x80"}'),  # an encoded surrogate
        (decode_msgpack, b"\x82\xa4type\xa4Echo\xa4text\xa1\xff"),
    ],
    ids=["json-ff", "json-surrogate", "msgpack-ff"],
)
def test_invalid_utf8_in_a_string_is_a_codec_error(decode, data):
    with pytest.raises(CodecError, match="invalid UTF-8 in a string") as info:
        decode(data, Echo)
    assert info.value.path == "$"
    # UnicodeDecodeError from msgspec before 0.23, a DecodeError from 0.23 on.
    assert isinstance(info.value.__cause__, UnicodeDecodeError | msgspec.DecodeError)


@pytest.mark.parametrize(
    ("decode", "data"),
    [(decode_json, b"[" * 100_000), (decode_msgpack, b"\x91" * 100_000)],
    ids=["json", "msgpack"],
)
def test_nesting_past_the_recursion_limit_is_a_codec_error(decode, data):
    from typing import Any

    with pytest.raises(CodecError, match="nesting too deep") as info:
        decode(data, Any)
    assert info.value.path == "$"
    within = b"[" * 100 + b"]" * 100 if decode is decode_json else b"\x91" * 99 + b"\x90"
    assert decode(within, Any) is not None  # MAX_NESTING levels


def test_decode_error_splits_msgspecs_suffix_only_when_it_names_a_path() -> None:
    error = decode_error(msgspec.ValidationError("Expected `int`, got `str` - at `$.a[0]`"))
    assert (error.path, error.message) == ("$.a[0]", "Expected `int`, got `str`")
    error = decode_error(msgspec.ValidationError("Object missing required field `key`"))
    assert (error.path, error.message) == ("$", "Object missing required field `key`")
    text = "Expected `int` - at `key` in `$`"  # msgspec's wording for a dict key
    error = decode_error(msgspec.ValidationError(text))
    assert (error.path, error.message) == ("$", text)
