"""Property tests over the codec and every message type of every agent in wiring.yaml.

For each message and reply type of the 13 system agents (121 types, their
nested structs included): any valid instance survives a msgpack and a JSON
round trip through :mod:`vibe_actors._codec` unchanged, and decoding arbitrary
bytes, arbitrary JSON documents or corrupted valid encodings as that type
either yields an instance of it or raises :class:`CodecError` — nothing else.

Valid instances come from the types' own msgspec metadata
(``msgspec.inspect``): lengths, bounds, patterns and literals are honoured, so
every generated instance is one a peer could really send.

Two msgspec behaviours once escaped the codec (tests at the end): invalid
UTF-8 inside a string raises ``UnicodeDecodeError`` and deep nesting raises
``RecursionError``; the codec turns both into :class:`CodecError`.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import phoenix
from vibe_actors import Message, Ping, Pong
from vibe_actors._codec import (
    CodecError,
    decode_json,
    decode_msgpack,
    encode_json,
    encode_msgpack,
    roundtrip,
)
from vibe_actors._messages import (
    AgentCrashed,
    DeadlineExceeded,
    MailboxFull,
    Terminated,
    Unavailable,
    UnknownMessage,
)
from vibe_actors.agents.schema import http_name

from tests.reliability.conftest import FULL

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = 200 if FULL else 15
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # the machine is shared; bounded by max_examples instead
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=not FULL,  # CI: the same examples every run
)
INT64 = (-(2**63), 2**63 - 1)


def _wired_types() -> dict[str, type]:
    """Every message and reply type of every agent in wiring.yaml, by ``agent.Type``."""
    found: dict[str, type] = {}
    runtime = (Ping, Pong, Terminated, AgentCrashed, DeadlineExceeded, MailboxFull)
    for message_type in (*runtime, Unavailable, UnknownMessage):
        found[f"runtime.{message_type.__name__}"] = message_type
    for name, agent in sorted(phoenix.load(ROOT / "wiring.yaml").agents.items()):
        for message_type in agent.message_types():
            found.setdefault(f"{name}.{message_type.__name__}", message_type)
            for reply in agent.reply_types(message_type):
                if isinstance(reply, type) and issubclass(reply, msgspec.Struct):
                    found.setdefault(f"{name}.{reply.__name__}", reply)
    return found


TYPES = _wired_types()


def test_every_agent_of_the_wiring_is_covered() -> None:
    agents = {key.partition(".")[0] for key in TYPES} - {"runtime"}
    assert len(agents) >= 13, sorted(agents)
    assert all(issubclass(t, Message) for t in TYPES.values())
    assert len(TYPES) > 100


# -- valid instances from msgspec's type information -------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(*INT64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _bounds(info: Any, low: float, high: float) -> tuple[float, float]:
    if info.ge is not None:
        low = max(low, info.ge)
    if info.gt is not None:
        low = max(
            low, info.gt + 1 if isinstance(info, mi.IntType) else math.nextafter(info.gt, math.inf)
        )
    if info.le is not None:
        high = min(high, info.le)
    if info.lt is not None:
        high = min(
            high,
            info.lt - 1 if isinstance(info, mi.IntType) else math.nextafter(info.lt, -math.inf),
        )
    return low, high


def _sized(info: Any) -> dict[str, int | None]:
    high = info.max_length if info.max_length is not None else 5
    return {"min_size": info.min_length or 0, "max_size": min(high, (info.min_length or 0) + 5)}


def _text(info: mi.StrType) -> st.SearchStrategy[str]:
    low, high = info.min_length or 0, info.max_length if info.max_length is not None else 40
    if info.pattern is None:
        return st.text(min_size=low, max_size=min(high, low + 40))
    return st.from_regex(info.pattern).filter(lambda s: low <= len(s) <= high)


def strategy(info: Any) -> st.SearchStrategy[Any]:
    """Values valid for msgspec type ``info`` (raises TypeError for a kind not handled)."""
    if isinstance(info, mi.AnyType):
        return JSON_VALUES
    if isinstance(info, mi.NoneType):
        return st.none()
    if isinstance(info, mi.BoolType):
        return st.booleans()
    if isinstance(info, mi.IntType):
        low, high = _bounds(info, *INT64)
        return st.integers(int(low), int(high))
    if isinstance(info, mi.FloatType):
        low, high = _bounds(info, -1e300, 1e300)
        return st.floats(low, high, allow_nan=False, allow_infinity=False)
    if isinstance(info, mi.StrType):
        return _text(info)
    if isinstance(info, mi.LiteralType):
        return st.sampled_from(info.values)
    if isinstance(info, mi.ListType):
        return st.lists(strategy(info.item_type), **_sized(info))
    if isinstance(info, mi.DictType):
        keys, values = strategy(info.key_type), strategy(info.value_type)
        return st.dictionaries(keys, values, **_sized(info))
    if isinstance(info, mi.UnionType):
        return st.one_of([strategy(member) for member in info.types])
    if isinstance(info, mi.StructType):
        return st.deferred(lambda: instances(info.cls))
    raise TypeError(f"no strategy for {info!r}")


@cache
def instances(struct: type) -> st.SearchStrategy[Any]:
    """Valid instances of ``struct``: required fields always, defaulted ones sometimes."""
    info = mi.type_info(struct)
    assert isinstance(info, mi.StructType)
    required = {f.name: strategy(f.type) for f in info.fields if f.required}
    optional = {f.name: strategy(f.type) for f in info.fields if not f.required}
    fields = st.fixed_dictionaries(required, optional=optional)
    return fields.map(lambda kw: _build(struct, kw)).filter(lambda built: built is not None)


def _build(struct: type, fields: dict[str, Any]) -> Any:
    try:
        return struct(**fields)
    except ValueError:  # refused by the type's __post_init__ (msgspec reports it so too)
        return None


def _valid(message: Any) -> bool:
    """True if the instance passes its type's own validation (patterns can over-generate)."""
    try:
        msgspec.convert(msgspec.to_builtins(message), type(message))
    except msgspec.ValidationError:
        return False
    return True


IDS = list(TYPES)
ALL = [TYPES[key] for key in IDS]


# -- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("message_type", ALL, ids=IDS)
def test_valid_messages_round_trip_through_msgpack_and_json(message_type: type) -> None:
    @FUZZ
    @given(instances(message_type))
    def check(message: Any) -> None:
        assume(_valid(message))
        assert decode_msgpack(encode_msgpack(message), message_type) == message
        assert decode_json(encode_json(message), message_type) == message
        assert roundtrip(message) == message  # what serialize_messages=True does
        tag = msgspec.json.decode(encode_json(message))["type"]
        # Its wire tag ("pubsub.Subscribe" for a system agent's), whose HTTP name is its class's.
        assert tag == message_type.__struct_config__.tag
        assert http_name(tag) == message_type.__name__

    check()


# -- hostile input --------------------------------------------------------------------------


def decodes_or_codec_error(decode: Any, data: bytes, message_type: type) -> None:
    try:
        decoded = decode(data, message_type)
    except CodecError as exc:
        assert exc.message and exc.path.startswith("$"), (exc.message, exc.path)
        return
    assert isinstance(decoded, message_type)


@pytest.mark.parametrize("message_type", ALL, ids=IDS)
def test_arbitrary_bytes_decode_or_raise_codec_error(message_type: type) -> None:
    @FUZZ
    @given(st.binary(max_size=200))
    def check(data: bytes) -> None:
        decodes_or_codec_error(decode_msgpack, data, message_type)
        decodes_or_codec_error(decode_json, data, message_type)

    check()


@pytest.mark.parametrize("message_type", ALL, ids=IDS)
def test_arbitrary_json_documents_decode_or_raise_codec_error(message_type: type) -> None:
    tags = st.sampled_from([message_type.__name__, "Ping", "Other", ""])
    documents = JSON_VALUES | st.dictionaries(st.text(max_size=10), JSON_VALUES).flatmap(
        lambda body: tags.map(lambda tag: {**body, "type": tag})
    )

    @FUZZ
    @given(documents)
    def check(document: Any) -> None:
        decodes_or_codec_error(decode_json, encode_json(document), message_type)
        decodes_or_codec_error(decode_msgpack, encode_msgpack(document), message_type)

    check()


@pytest.mark.parametrize("message_type", ALL, ids=IDS)
def test_corrupted_encodings_decode_or_raise_codec_error(message_type: type) -> None:
    @FUZZ
    @given(instances(message_type), st.data())
    def check(message: Any, data: st.DataObject) -> None:
        for encode, decode in ((encode_msgpack, decode_msgpack), (encode_json, decode_json)):
            raw = bytearray(encode(message))
            cut = data.draw(st.integers(0, len(raw)), label="cut")
            flips = data.draw(
                st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)), max_size=3),
                label="flips",
            )
            for index, value in flips:
                raw[index] = value
            decodes_or_codec_error(decode, bytes(raw[:cut] if cut % 2 else raw), message_type)

    check()


def test_an_unencodable_payload_is_a_codec_error_not_a_crash() -> None:
    from vibe_actors.agents.state import Put

    with pytest.raises(CodecError, match="Put cannot be serialized") as error:
        roundtrip(Put(key="k", value={1j}))
    assert error.value.path == "$.value"
    with pytest.raises((TypeError, msgspec.EncodeError, OverflowError)):
        encode_msgpack(Put(key="k", value=2**70))


# -- what once escaped the codec -----------------------------------------------------------


@pytest.mark.parametrize(
    ("decode", "data"),
    [
        (decode_json, b'{"type":"Pong","agent":"\xff","incarnation":1}'),
        (decode_msgpack, b"\x83\xa4type\xa4Pong\xa5agent\xa1\xff\xabincarnation\x01"),
    ],
    ids=["json", "msgpack"],
)
def test_invalid_utf8_in_a_string_is_a_codec_error(decode: Any, data: bytes) -> None:
    with pytest.raises(CodecError):
        decode(data, Pong)


@pytest.mark.parametrize(
    ("decode", "data"),
    [(decode_json, b"[" * 100_000), (decode_msgpack, b"\x91" * 100_000)],
    ids=["json", "msgpack"],
)
def test_deep_nesting_is_a_codec_error(decode: Any, data: bytes) -> None:
    from typing import Any as AnyType

    with pytest.raises(CodecError):
        decode(data, AnyType)
