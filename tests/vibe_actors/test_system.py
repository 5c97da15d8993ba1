"""The embedding API: start/stop, tree, metrics, serialize_messages, shutdown."""

from __future__ import annotations

import threading

import msgspec
import pytest
from prometheus_client import generate_latest

from vibe_actors import (
    ActorSystem,
    Agent,
    DeadlineExceededError,
    Message,
    Ping,
    StartFailed,
    SupervisorSpec,
    SystemConfig,
    SystemNotRunning,
    UnknownAgent,
    WorkerSpec,
    handler,
)

from tests.conftest import wait_until, worker
from tests.vibe_actors.agents import Add, Block, Boom, Nope, Total


def test_context_manager_starts_and_stops_everything():
    with ActorSystem([worker("a"), worker("b")]) as system:
        assert system.running
        assert system.ask("a", Ping()).agent == "a"
        threads = [t for t in threading.enumerate() if t.name.startswith("vibe:a#")]
        assert threads
    assert not system.running
    for thread in threads:
        thread.join(2)
        assert not thread.is_alive()
    assert all(node.status == "stopped" for node in system.walk())


def test_tree_snapshot(make_system):
    inner = SupervisorSpec(name="inner", children=(worker("x"),))
    system = make_system(SupervisorSpec(name="top", children=(worker("a"), inner)))
    root = system.tree()
    assert (root.name, root.kind, root.strategy) == ("top", "supervisor", "one_for_one")
    assert [c.name for c in root.children] == ["a", "inner"]
    x = root.children[1].children[0]
    assert (x.kind, x.status, x.restarts, x.mailbox_depth, x.agent) == (
        "worker", "running", 0, 0, "tests.vibe_actors.agents:Worker",
    )  # fmt: skip


def test_tree_before_start_raises():
    with pytest.raises(SystemNotRunning):
        ActorSystem([worker("a")]).tree()


def test_metrics_have_stable_names_and_labels(make_system):
    system = make_system([worker("w")])
    system.ask("w", Add(n=1))
    system.ref("w").ask_future(Nope()).wait()
    system.tell("w", Boom())
    system.ask("w", Ping())
    system.tell("ghost", Ping())
    text = generate_latest(system.registry).decode()
    assert 'vibe_messages_total{agent="w",outcome="ok",type="Add"} 1.0' in text
    assert 'vibe_messages_total{agent="w",outcome="error_reply",type="Nope"} 1.0' in text
    assert 'vibe_messages_total{agent="w",outcome="crashed",type="Boom"} 1.0' in text
    assert 'vibe_restarts_total{agent="w"} 1.0' in text
    assert 'vibe_dead_letters_total{reason="unknown_agent"} 1.0' in text
    assert 'vibe_mailbox_depth{agent="w"} 0.0' in text
    assert 'vibe_agents{state="running"} 2.0' in text
    assert 'vibe_message_duration_seconds_count{agent="w"}' in text


def test_two_systems_in_one_process_do_not_share_metrics(make_system):
    one = make_system([worker("w")])
    two = make_system([worker("w")])
    one.ask("w", Add(n=1))
    assert 'type="Add"' not in generate_latest(two.registry).decode()


def test_start_failure_of_construction_is_reported():
    class Broken(Agent):
        def __init__(self) -> None:
            super().__init__()
            raise ValueError("bad init")

    system = ActorSystem([WorkerSpec(name="b", agent=Broken)])
    with pytest.raises(StartFailed, match="root/b failed to start: ValueError: bad init"):
        system.start()


def test_a_non_agent_class_is_refused():
    with pytest.raises(TypeError, match="agent must be an Agent subclass"):
        ActorSystem([WorkerSpec(name="b", agent=dict)])


def test_names_are_one_namespace_across_the_tree():
    inner = SupervisorSpec(name="inner", children=(worker("a"),))
    with pytest.raises(ValueError, match="duplicate agent name 'a'"):
        ActorSystem(SupervisorSpec(name="top", children=(worker("a"), inner)))


def test_shutdown_abandons_a_hung_agent_within_its_timeout(make_system, journal):
    system = make_system([worker("w", journal, shutdown=0.05)], leak_ok=True)
    system.tell("w", Block())
    assert journal.entered.wait(5)
    assert system.shutdown() is False  # abandoned, reported, and the call returned
    assert system.failures.abandonments() == {"w": 1}


def test_shutdown_from_inside_an_agent_does_not_deadlock():
    class Quitter(Agent):
        @handler
        def quit(self, msg: Ping) -> None:
            self.system.shutdown()

    system = ActorSystem([WorkerSpec(name="q", agent=Quitter)]).start()
    system.tell("q", Ping())
    assert system.wait(timeout=5)


class Opaque(Message):
    payload: bytes


def test_serialize_messages_round_trips_what_is_sent(make_system):
    seen: list[object] = []

    class Keeper(Agent):
        @handler
        def keep(self, msg: Opaque) -> None:
            seen.append(msg)

    system = make_system([WorkerSpec(name="k", agent=Keeper)], serialize_messages=True)
    original = Opaque(payload=b"\x00\x01")
    system.ask("k", original)
    assert seen == [original] and seen[0] is not original


def test_config_is_validated():
    with pytest.raises(ValueError, match="must be > 0"):
        SystemConfig(ask_timeout=0)


def test_runtime_events_report_crashes_restarts_dead_letters_and_give_ups(journal):
    from vibe_actors import (
        AgentCrashedEvent,
        AgentRestarted,
        DeadLettered,
        SupervisorGaveUp,
    )

    events: list[object] = []
    spec = SupervisorSpec(name="sup", intensity=1, children=(worker("w", journal),))
    system = ActorSystem(spec)
    system.events.subscribe(events.append)
    system.start()
    system.tell("w", Boom())
    system.ask("w", Ping())
    system.tell("ghost", Ping())
    system.tell("w", Boom())
    wait_until(lambda: any(isinstance(e, SupervisorGaveUp) for e in events))
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("AgentCrashedEvent") < kinds.index("AgentRestarted")
    restarted = next(e for e in events if isinstance(e, AgentRestarted))
    assert (restarted.agent, restarted.incarnation, restarted.supervisor) == ("w", 2, "sup")
    assert any(isinstance(e, DeadLettered) and e.agent == "ghost" for e in events)
    assert all(e.at > 0 for e in events)
    assert isinstance(events[0], AgentCrashedEvent)


def test_injected_crash_and_hang_run_in_the_agents_thread(make_system, journal):
    spec = SupervisorSpec(name="sup", intensity=5, children=(worker("w", journal),))
    system = make_system(spec)
    system.inject_fault("w", "crash")
    assert system.ask("w", Ping()).incarnation == 2
    assert "InjectedCrash: injected crash in w" in system.cell("w").last_failure
    system.inject_fault("w", "hang", seconds=0.2)
    with pytest.raises(DeadlineExceededError):
        system.ask("w", Ping(), timeout=0.05)
    assert system.ask("w", Ping(), timeout=5).incarnation == 2  # served after the hang
    with pytest.raises(UnknownAgent):
        system.inject_fault("ghost", "crash")
    with pytest.raises(ValueError, match="fault kind"):
        system.inject_fault("w", "explode")


class Settings(msgspec.Struct, frozen=True):
    size: int = 3


class Configured(Agent):
    Config = Settings

    @handler
    def size(self, msg: Ping) -> Total:
        return Total(total=self.config.size)


def test_config_is_coerced_to_the_agents_config_struct(make_system):
    system = make_system(
        [
            WorkerSpec(name="default", agent=Configured),
            WorkerSpec(name="mapping", agent=Configured, config={"size": 7}),
            WorkerSpec(name="struct", agent=Configured, config=Settings(size=9)),
        ],
        serialize_messages=False,
    )
    assert [system.ask(n, Ping()).total for n in ("default", "mapping", "struct")] == [3, 7, 9]


def test_invalid_config_fails_at_construction_naming_the_agent():
    with pytest.raises(ValueError, match=r"root/bad: config for Configured: Expected `int`"):
        ActorSystem([WorkerSpec(name="bad", agent=Configured, config={"size": "big"})])
