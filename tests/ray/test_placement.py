"""Ray placement: the same protocol as local placement, our supervision, no hangs.

The agents run in Ray worker processes of the session's local cluster; each
test uses its own agent names, so tests never share a Ray actor.
"""

from __future__ import annotations

import subprocess
from typing import Any
from unittest.mock import ANY

import pytest

from vibe_actors import (
    AgentCrashed,
    AskError,
    Ping,
    Pong,
    Ref,
    StartFailed,
    SupervisorSpec,
    Unavailable,
    WorkerSpec,
)
from vibe_actors.agents.introspect import describe, tree
from vibe_actors.agents.quota import Acquire, Denied, Granted, Limit, Quota, QuotaConfig
from vibe_actors.ray import RaySettings, placed

from tests.conftest import wait_until
from tests.ray.agents import (
    Add,
    Boom,
    Echo,
    Exit,
    OverLimit,
    Read,
    Sleep,
    Slept,
    Tally,
    TallyConfig,
    Total,
    UsesTimers,
)
from tests.ray.conftest import ray_pids

PLACEMENTS = ["local", "ray"]


def _agent(cls: type, placement: str, settings: RaySettings) -> type:
    return placed(cls, settings) if placement == "ray" else cls


def _placed_tally(make_system: Any, settings: RaySettings, name: str) -> tuple[Any, Ref[Any]]:
    """A system with one Ray-placed Tally called ``name``, and a ref on it."""
    system = make_system([WorkerSpec(name=name, agent=placed(Tally, settings))])
    return system, system.ref(name)


def _restarted(system: Any, name: str, incarnation: int) -> None:
    wait_until(
        lambda: system.cell(name).incarnation == incarnation and system.status(name) == "running",
        timeout=30,
        what=f"{name} restarted as incarnation {incarnation}",
    )


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_tally_protocol_is_the_same_on_ray(
    placement: str, ray_settings: RaySettings, make_system: Any
) -> None:
    name = f"tally-proto-{placement}"
    agent = _agent(Tally, placement, ray_settings)
    system = make_system(
        [WorkerSpec(name=name, agent=agent, config=TallyConfig(start=10, limit=20))]
    )
    ref = system.ref(name)
    assert ref.ask(Add(amount=5), timeout=10).value == 15
    assert ref.ask(Read(), timeout=10).value == 15
    with pytest.raises(AskError) as raised:
        ref.ask(Add(amount=100), timeout=10)
    assert isinstance(raised.value.reply, OverLimit) and raised.value.reply.limit == 20
    payload = {"a": [1, 2.5, "x", None, True], "b": {"c": {}}}
    assert ref.ask(Echo(payload=payload), timeout=10) == Echo(payload=payload)
    assert ref.ask(Ping(), timeout=10) == Pong(agent=name, incarnation=1)
    ref.tell(Add(amount=1))  # fire-and-forget, ordered before the next ask from here
    assert ref.ask(Read(), timeout=10).value == 16


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_quota_protocol_is_the_same_on_ray(
    placement: str, ray_settings: RaySettings, make_system: Any
) -> None:
    name = f"quota-proto-{placement}"
    config = QuotaConfig(limits=[Limit(principal="*", rate=0.001, burst=2)])
    system = make_system(
        [WorkerSpec(name=name, agent=_agent(Quota, placement, ray_settings), config=config)]
    )
    ref = system.ref(name)
    first = ref.ask(Acquire(agent="kv", principal="ann"), timeout=10)
    assert isinstance(first, Granted) and first.remaining == pytest.approx(1.0, abs=0.01)
    assert isinstance(ref.ask(Acquire(agent="kv", principal="ann"), timeout=10), Granted)
    reply = ref.ask_future(Acquire(agent="kv", principal="ann"), timeout=10).wait()
    assert isinstance(reply, Denied) and reply.retry_after > 0
    assert isinstance(ref.ask(Acquire(agent="kv", principal="bob"), timeout=10), Granted)


def test_placed_agent_describes_itself_as_the_hosted_one(
    ray_settings: RaySettings, make_system: Any
) -> None:
    proxy = placed(Tally, ray_settings)
    assert placed(Tally, ray_settings) is proxy  # equal specs across reloads
    assert proxy.message_types() == Tally.message_types()
    assert all(proxy.reply_types(t) == Tally.reply_types(t) for t in Tally.message_types())
    assert proxy.declared_messages() == Tally.declared_messages()
    system = make_system(
        [
            WorkerSpec(name="tally-view-ray", agent=proxy),
            WorkerSpec(name="tally-view-local", agent=Tally),
        ]
    )
    views = {view.name: view for view in describe(system)}
    remote, local = views["tally-view-ray"], views["tally-view-local"]
    assert (remote.placement, local.placement) == ("ray", "local")
    assert remote.agent == local.agent == "tests.ray.agents:Tally"
    assert remote.messages == local.messages
    placements = {node.name: node.placement for node in tree(system).children}
    assert placements == {"tally-view-ray": "ray", "tally-view-local": "local"}


def test_handler_crash_restarts_under_our_supervisor(
    ray_settings: RaySettings, make_system: Any
) -> None:
    name = "tally-crash"
    system, ref = _placed_tally(make_system, ray_settings, name)
    assert ref.ask(Add(amount=3), timeout=10).value == 3
    reply = ref.ask_future(Boom(), timeout=10).wait()
    assert isinstance(reply, AgentCrashed) and "boom" in reply.error
    _restarted(system, name, 2)
    assert ref.ask(Read(), timeout=10).value == 0  # in-memory state is rebuilt
    assert system.cell(name).restarts == 1


def test_ray_actor_process_exit_is_a_child_failure(
    ray_settings: RaySettings, make_system: Any
) -> None:
    name = "tally-exit"
    system, ref = _placed_tally(make_system, ray_settings, name)
    before = ref.ask(Add(amount=7), timeout=10)
    reply = ref.ask_future(Exit(), timeout=10).wait()
    assert isinstance(reply, AgentCrashed), reply
    assert "ActorDiedError" in reply.error
    _restarted(system, name, 2)
    after = ref.ask(Read(), timeout=10)
    assert after.value == 0 and after.pid != before.pid  # a fresh Ray actor, same name
    assert "RayActorLost" in (system.cell(name).last_failure or "")


def test_asks_in_flight_when_the_actor_dies_never_hang(
    ray_settings: RaySettings, make_system: Any
) -> None:
    name = "tally-inflight"
    system, ref = _placed_tally(make_system, ray_settings, name)
    slow = ref.ask_future(Sleep(seconds=0.5), timeout=20)
    dying = ref.ask_future(Exit(), timeout=20)
    behind = [ref.ask_future(Add(amount=1), timeout=20) for _ in range(5)]
    # Well inside the asks' own deadline: an answer comes from the failure, not a timeout.
    # The proxy sends what was queued together as one Ray call, so a reply computed
    # before the process died may be lost with it: AgentCrashed, never a hang.
    assert slow.wait(10) in (Slept(seconds=0.5), AgentCrashed(agent=name, error=ANY))
    assert isinstance(dying.wait(10), AgentCrashed)
    for future in behind:
        reply = future.wait(10)
        # Submitted behind the exit: lost with the actor (crashed), or refused, or -
        # if queued locally until the restart - handled by the next incarnation.
        assert isinstance(reply, AgentCrashed | Unavailable | Total), reply
    _restarted(system, name, 2)


def test_pool_of_placed_workers_runs_in_separate_processes(
    ray_settings: RaySettings, make_system: Any
) -> None:
    from vibe_actors import PoolSpec

    system = make_system(
        [WorkerSpec(name="tally-pool", agent=placed(Tally, ray_settings), pool=PoolSpec(size=2))]
    )
    pids = {system.ref(f"tally-pool.{i}").ask(Read(), timeout=10).pid for i in (1, 2)}
    assert len(pids) == 2


def test_unavailable_feature_in_on_start_is_a_start_failure(
    ray_settings: RaySettings, make_system: Any
) -> None:
    root = SupervisorSpec(
        name="root",
        children=(WorkerSpec(name="timers-ray", agent=placed(UsesTimers, ray_settings)),),
    )
    with pytest.raises(StartFailed) as raised:
        make_system(root, start_timeout=20)
    assert "not available to a Ray-placed agent" in str(raised.value.__cause__ or raised.value)


def test_every_ray_socket_listens_on_loopback_only(ray_settings: RaySettings) -> None:
    listing = subprocess.run(
        ["ss", "-tlnpH"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    ours = ray_pids()
    checked = 0
    for line in listing.splitlines():
        pids = {int(p) for p in _pids(line)}
        if not pids & ours:
            continue
        checked += 1
        local = line.split()[3]
        host = local.rsplit(":", 1)[0].strip("[]")
        assert host in ("127.0.0.1", "::ffff:127.0.0.1", "::1"), f"not loopback: {line}"
    assert checked >= 3, f"no Ray sockets found:\n{listing}"


def _pids(line: str) -> list[str]:
    return [part.split(",")[0] for part in line.split("pid=")[1:]]


def test_openapi_is_the_same_for_either_placement(
    ray_settings: RaySettings, make_system: Any
) -> None:
    from vibe_actors.agents.schema import Catalogue, OpenAPI, Schema

    documents = []
    for placement in PLACEMENTS:
        system = make_system(
            [
                WorkerSpec(name="tally-api", agent=_agent(Tally, placement, ray_settings)),
                WorkerSpec(name="schema", agent=Schema),
            ]
        )
        schema = system.ref("schema")
        documents.append((schema.ask(OpenAPI(), timeout=10), schema.ask(Catalogue(), timeout=10)))
        system.shutdown(timeout=30)
    assert documents[0] == documents[1]


def test_mailbox_bound_applies_in_front_of_the_ray_calls(
    ray_settings: RaySettings, make_system: Any
) -> None:
    import msgspec

    from vibe_actors import MailboxFull, MailboxSpec

    settings = msgspec.structs.replace(ray_settings, max_in_flight=1)
    name = "tally-bound"
    system = make_system(
        [WorkerSpec(name=name, agent=placed(Tally, settings), mailbox=MailboxSpec(capacity=1))]
    )
    ref = system.ref(name)
    mailbox = system.cell(name).mailbox
    first = ref.ask_future(Sleep(seconds=1.0), timeout=20)
    wait_until(lambda: mailbox.qsize() == 0, timeout=10, what="the first one sent")
    second = ref.ask_future(Sleep(seconds=0.0), timeout=20)
    # The proxy holds the second message, waiting for the one in-flight slot.
    wait_until(lambda: mailbox.qsize() == 0, timeout=10, what="the second one taken")
    third = ref.ask_future(Read(), timeout=20)  # fills the mailbox (capacity 1)
    assert isinstance(ref.ask_future(Read(), timeout=20).wait(5), MailboxFull)
    assert first.wait(10) == Slept(seconds=1.0)
    assert second.wait(10) == Slept(seconds=0.0)
    assert isinstance(third.wait(10), Total)


def test_idle_proxy_answers_a_blocking_ask_in_the_askers_thread(
    ray_settings: RaySettings, make_system: Any
) -> None:
    """SEMANTICS.md section 2: inline when idle, never ahead of the asker's own tells."""
    name = "tally-inline"
    system, ref = _placed_tally(make_system, ray_settings, name)

    def inline_asks() -> float:
        return system.registry.get_sample_value("vibe_ray_inline_asks_total", {"agent": name}) or 0

    assert ref.ask(Read(), timeout=10).value == 0
    wait_until(
        lambda: ref.ask(Read(), timeout=10).value == 0 and inline_asks() > 0,
        timeout=10,
        what="a blocking ask answered inline",
    )
    for i in range(1, 51):
        ref.tell(Add(amount=1))
        assert ref.ask(Read(), timeout=10).value == i
    futures = [ref.ask_future(Add(amount=1), timeout=10) for _ in range(20)]
    assert sorted(f.wait().value for f in futures) == list(range(51, 71))
