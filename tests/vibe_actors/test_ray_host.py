"""The Ray side of placement without Ray: AgentHost runs an agent's handlers by itself."""

from __future__ import annotations

import msgspec
import pytest

from vibe_actors import Ping, decode_msgpack, encode_msgpack
from vibe_actors.ray import RaySettings
from vibe_actors.ray._host import (
    AgentHost,
    HostCrashed,
    HostRefused,
    RemoteFeatureUnavailable,
    import_agent,
    reply_targets,
)

from tests.ray.agents import (
    Add,
    Ambiguous,
    Boom,
    Echo,
    OverLimit,
    Read,
    Tally,
    TallyConfig,
    Total,
    UsesCaller,
    UsesTimers,
)


def _host(config: TallyConfig | None = None) -> AgentHost:
    return AgentHost("tests.ray.agents:Tally", "tally", encode_msgpack(config or TallyConfig()), 3)


def _call(host: AgentHost, message: object) -> object:
    return decode_msgpack(host.handle(encode_msgpack(message)), reply_targets(Tally)[type(message)])


def test_host_runs_the_handlers_with_config_and_state() -> None:
    host = _host(TallyConfig(start=1, limit=5))
    assert host.ping() == 3
    added = _call(host, Add(amount=2))
    assert isinstance(added, Total) and added.value == 3
    assert isinstance(_call(host, Add(amount=10)), OverLimit)
    assert _call(host, Echo(payload=[1, {"a": None}])) == Echo(payload=[1, {"a": None}])
    replies = host.handle_batch([encode_msgpack(Add(amount=1)), encode_msgpack(Read())])
    assert [decode_msgpack(r, reply_targets(Tally)[Read]).value for r in replies] == [4, 4]
    host.stop()


def test_a_raising_handler_crashes_the_host_and_later_calls_are_refused() -> None:
    host = _host()
    crashed = _call(host, Boom())
    assert isinstance(crashed, HostCrashed) and "boom" in crashed.error
    refused = _call(host, Add(amount=1))
    assert isinstance(refused, HostRefused) and refused.error == crashed.error
    host.stop()  # no on_stop after a crash; nothing raises


def test_features_a_placed_agent_lacks_raise_plainly() -> None:
    with pytest.raises(RemoteFeatureUnavailable, match="not available to a Ray-placed agent"):
        AgentHost("tests.ray.agents:UsesTimers", "timers", encode_msgpack(None), 1)
    assert import_agent("tests.ray.agents:UsesTimers") is UsesTimers
    with pytest.raises(TypeError, match="not a vibe_actors.Agent subclass"):
        import_agent("tests.ray.agents:TallyConfig")


def test_a_placed_agent_cannot_read_its_caller_as_trusted_code() -> None:
    host = AgentHost("tests.ray.agents:UsesCaller", "caller", encode_msgpack(None), 1)
    crashed = decode_msgpack(host.handle(encode_msgpack(Read())), reply_targets(UsesCaller)[Read])
    assert isinstance(crashed, HostCrashed)  # not Total(value=1): "trusted" was never said
    assert "RemoteFeatureUnavailable" in crashed.error and "caller" in crashed.error
    host.stop()


def test_replies_must_form_one_msgpack_union() -> None:
    with pytest.raises(TypeError, match="Ambiguous: the replies declared for Read"):
        reply_targets(Ambiguous)
    assert set(reply_targets(Tally)) == set(Tally.message_types()) - {Ping}


def test_settings_resources_per_agent_and_pool() -> None:
    raw = {"num_cpus": 0.5, "resources": {"jobs": {"num_cpus": 1}}}
    settings = msgspec.convert(raw, RaySettings)
    assert settings.for_agent("jobs").num_cpus == 1
    assert settings.for_agent("jobs.2").num_cpus == 1  # a pool worker takes its pool's
    assert settings.for_agent("other").num_cpus == 0.5
