"""Registry bounds: the length of every name and capability, capabilities per registration,
and the count of subscriptions (``max_subscriptions``).

A decoded message past a bound is a validation error naming the field (the gateway's 422);
one built in process reaches the agent (``serialize_messages`` off, as in production) and
is answered ``InvalidRegistration``. The subscription cap refuses a new pair with a typed
429, lets an existing pair resubscribe, frees a slot on ``Unsubscribe`` or the subscriber's
death, and is counted again from the store after a restart.

The new names are imported inside the tests: on a version without them each test fails on
its own instead of the whole module failing to import.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec
import pytest
from structlog.testing import capture_logs

from vibe_actors import CodecError, RestartType, decode_json, encode_json
from vibe_actors.agents.registry import (
    Entry,
    Find,
    InvalidRegistration,
    Lookup,
    Register,
    Registered,
    RegistryConfig,
    Subscribe,
    Subscribed,
    Unregister,
    Unsubscribe,
    Unsubscribed,
)

from tests.conftest import wait_until
from tests.vibe_actors.system_agents.registry.test_registry import member, registry, restart, tree

#: One character past the bound of a name or capability (256).
LONG = "x" * 257
#: One capability past the bound of a registration (64).
MANY = [f"c{n}" for n in range(65)]


def refusals(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == event]


# -- lengths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"type": "Register", "name": LONG}, "$.name"),
        ({"type": "Register", "name": "a", "capabilities": ["kv", LONG]}, "$.capabilities[1]"),
        ({"type": "Register", "name": "a", "capabilities": MANY}, "$.capabilities"),
        ({"type": "Unregister", "name": LONG}, "$.name"),
        ({"type": "Lookup", "name": LONG}, "$.name"),
        ({"type": "Find", "capability": LONG}, "$.capability"),
        ({"type": "Subscribe", "capability": LONG, "subscriber": "w"}, "$.capability"),
        ({"type": "Subscribe", "capability": "kv", "subscriber": LONG}, "$.subscriber"),
        ({"type": "Unsubscribe", "capability": LONG, "subscriber": "w"}, "$.capability"),
        ({"type": "Unsubscribe", "capability": "kv", "subscriber": LONG}, "$.subscriber"),
    ],
)
def test_a_decoded_message_past_a_bound_is_refused_naming_the_field(body, path):
    message_type = {
        t.__name__: t for t in (Register, Unregister, Lookup, Find, Subscribe, Unsubscribe)
    }[body["type"]]
    data = encode_json({**body, "type": message_type.__struct_config__.tag})  # its wire tag
    with pytest.raises(CodecError) as raised:
        decode_json(data, message_type)
    assert raised.value.path == path
    with pytest.raises(msgspec.ValidationError, match=path.replace("$", r"\$").replace("[", r"\[")):
        msgspec.json.decode(data, type=message_type)


def test_messages_at_the_bounds_decode():
    from vibe_actors.agents.registry import MAX_CAPABILITIES, MAX_NAME_LENGTH

    assert (MAX_NAME_LENGTH, MAX_CAPABILITIES) == (256, 64)
    body = {"type": "registry.Register", "name": "x" * 256, "capabilities": ["y" * 256] * 64}
    assert decode_json(encode_json(body), Register) == Register(
        name="x" * 256, capabilities=["y" * 256] * 64
    )


def test_the_schema_shows_the_bounds():
    schema = msgspec.json.schema(Register)
    register = schema["$defs"]["Register"]["properties"]
    assert register["name"]["maxLength"] == 256
    assert register["capabilities"]["maxItems"] == 64
    assert register["capabilities"]["items"]["maxLength"] == 256
    subscribe = msgspec.json.schema(Subscribe)["$defs"]["Subscribe"]["properties"]
    assert subscribe["capability"]["maxLength"] == subscribe["subscriber"]["maxLength"] == 256


def test_a_message_built_in_process_past_a_bound_is_invalid(make_system, tmp_path):
    longest = "m" * 256  # an agent may have so long a name
    system = make_system(
        tree(registry(), member("a"), member(longest)),
        data_dir=str(tmp_path),
        serialize_messages=False,  # as in production: the message reaches the agent as built
    )
    ref = system.ref("registry")
    for message, detail in [
        (Register(name=LONG), "name is longer than 256"),
        (Register(name="a", capabilities=["kv", LONG]), "capability is longer than 256"),
        (Register(name="a", capabilities=MANY), "65 capabilities are more than 64"),
        (Unregister(name=LONG), "name is longer than 256"),
        (Lookup(name=LONG), "name is longer than 256"),
        (Find(capability=LONG), "capability is longer than 256"),
        (Subscribe(capability=LONG, subscriber="a"), "capability is longer than 256"),
        (Subscribe(capability="kv", subscriber=LONG), "subscriber is longer than 256"),
        (Unsubscribe(capability=LONG, subscriber="a"), "capability is longer than 256"),
        (Unsubscribe(capability="kv", subscriber=LONG), "subscriber is longer than 256"),
    ]:
        reply = ref.ask_future(message).wait()
        assert isinstance(reply, InvalidRegistration), message
        assert reply.http_status == 422 and detail in reply.detail, reply
    # Nothing of them was kept; the longest accepted strings are.
    db = sqlite3.connect(tmp_path / "registry.db")
    assert list(db.execute("SELECT * FROM registrations")) == []
    assert list(db.execute("SELECT * FROM subscriptions")) == []
    most = [f"{n:02d}".ljust(256, "c") for n in range(64)]
    assert isinstance(ref.ask_future(Register(name=longest, capabilities=most)).wait(), Registered)
    assert isinstance(
        ref.ask_future(Subscribe(capability=most[0], subscriber=longest)).wait(), Subscribed
    )


def test_static_entries_are_held_to_the_same_bounds():
    with pytest.raises(ValueError, match="name is longer than 256"):
        RegistryConfig(entries=[Entry(name=LONG)])
    with pytest.raises(ValueError, match="65 capabilities are more than 64"):
        RegistryConfig(entries=[Entry(name="a", capabilities=MANY)])
    with pytest.raises(msgspec.ValidationError, match=r"\$\.entries\[0\]\.capabilities\[0\]"):
        msgspec.convert({"entries": [{"name": "a", "capabilities": [LONG]}]}, RegistryConfig)


# -- subscriptions ------------------------------------------------------------------------------


def test_subscriptions_are_capped_and_counted_again_after_a_restart(make_system, tmp_path):
    from vibe_actors.agents.registry import TooManyRegistrySubscriptions

    with capture_logs() as logs:  # around the start: the agent binds its logger there
        system = make_system(
            tree(registry(max_subscriptions=2), member("w"), member("v")),
            data_dir=str(tmp_path),
        )
        ref = system.ref("registry")
        for capability in ("kv", "cache"):
            reply = system.ask("registry", Subscribe(capability=capability, subscriber="w"))
            assert isinstance(reply, Subscribed)
        message = Subscribe(capability="db", subscriber="v")
        over = ref.ask_future(message, request_id="r-1").wait()
        assert isinstance(over, TooManyRegistrySubscriptions)
        assert (over.http_status, over.limit) == (429, 2)
        assert "2 subscriptions" in over.detail
        (logged,) = refusals(logs, "registry_limit_reached")
        assert logged["log_level"] == "warning"
        assert (logged["limit"], logged["capability"], logged["subscriber"]) == (
            "max_subscriptions",
            "db",
            "v",
        )
        assert (logged["held"], logged["request_id"]) == (2, "r-1")
        # At the limit a pair held already may subscribe again.
        again = system.ask("registry", Subscribe(capability="kv", subscriber="w"))
        assert again == Subscribed(capability="kv", names=[])

        # A new incarnation counts the subscriptions in the store: still full.
        restart(system, "registry")
        assert isinstance(ref.ask_future(message).wait(), TooManyRegistrySubscriptions)
        assert isinstance(
            system.ask("registry", Subscribe(capability="cache", subscriber="w")), Subscribed
        )

        # Unsubscribing frees a slot, and the freed slot survives a restart too.
        unsubscribe = Unsubscribe(capability="kv", subscriber="w")
        assert system.ask("registry", unsubscribe) == Unsubscribed(capability="kv", subscriber="w")
        restart(system, "registry")
        assert isinstance(ref.ask_future(message).wait(), Subscribed)
        over = ref.ask_future(Subscribe(capability="kv", subscriber="w")).wait()
        assert isinstance(over, TooManyRegistrySubscriptions)

    sample = system.registry.get_sample_value
    refused = {"agent": "registry", "limit": "max_subscriptions"}
    assert sample("vibe_registry_refused_total", refused) == 3
    assert sample("vibe_registry_refused_total", {"agent": "registry", "limit": "max_names"}) in (
        None,
        0,
    )
    db = sqlite3.connect(tmp_path / "registry.db")
    assert sorted(db.execute("SELECT * FROM subscriptions")) == [("cache", "w"), ("db", "v")]


def test_a_dead_subscriber_frees_its_slots(make_system, tmp_path):
    from vibe_actors.agents.registry import TooManyRegistrySubscriptions

    system = make_system(
        tree(
            registry(max_subscriptions=2),
            member("w"),
            member("gone", restart=RestartType.TEMPORARY),
        ),
        data_dir=str(tmp_path),
    )
    ref = system.ref("registry")
    for capability in ("kv", "cache"):
        system.ask("registry", Subscribe(capability=capability, subscriber="gone"))
    assert isinstance(
        ref.ask_future(Subscribe(capability="kv", subscriber="w")).wait(),
        TooManyRegistrySubscriptions,
    )
    system.inject_fault("gone", "crash")
    db = sqlite3.connect(tmp_path / "registry.db")
    wait_until(lambda: not list(db.execute("SELECT * FROM subscriptions")), 5.0, "dropped")
    for capability in ("kv", "cache"):
        reply = system.ask("registry", Subscribe(capability=capability, subscriber="w"))
        assert isinstance(reply, Subscribed)


def test_max_subscriptions_must_be_positive():
    with pytest.raises(ValueError, match="max_subscriptions"):
        RegistryConfig(max_subscriptions=0)
    with pytest.raises(msgspec.ValidationError, match="max_subscriptions"):
        msgspec.convert({"max_subscriptions": 0}, RegistryConfig)
    assert RegistryConfig().max_subscriptions == 100_000


def test_the_directory_counts_each_pair_once():
    from vibe_actors.agents.registry._index import Directory

    directory = Directory()
    directory.subscribe("kv", "w")
    directory.subscribe("kv", "w")
    directory.subscribe("cache", "w")
    directory.unsubscribe("db", "w")  # never subscribed: nothing freed
    directory.pending_subs.add(("kv", "v"))
    assert directory.subscriptions_held() == 3
    directory.unsubscribe("kv", "w")
    directory.unsubscribe("kv", "w")
    assert directory.subscriptions_held() == 2
