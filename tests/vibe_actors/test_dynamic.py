"""Dynamic supervisors: children started and stopped at run time (SEMANTICS.md section 4)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from vibe_actors import (
    ActorSystem,
    AgentStatus,
    DynamicChildStarted,
    DynamicChildTerminated,
    NameTaken,
    NotDynamic,
    Ping,
    PoolSpec,
    RestartType,
    SelfAsk,
    StartFailed,
    Strategy,
    SupervisorFull,
    SupervisorGaveUp,
    SupervisorSpec,
    SystemFailed,
    SystemNotRunning,
    UnknownAgent,
    WorkerSpec,
)
from vibe_actors.testing import record_events

from tests.conftest import wait_until, worker
from tests.vibe_actors.agents import Add, Boom, Echo, GetTotal, StopSelf, Total, Worker
from tests.vibe_actors.dynamic_agents import (
    Quit,
    SelfStarter,
    Spawn,
    Spawned,
    Spawner,
    Watch,
    Watcher,
)


def dynamic(name: str = "dyn", **kwargs) -> SupervisorSpec:
    kwargs.setdefault("intensity", 10)
    return SupervisorSpec(name=name, dynamic=True, **kwargs)


# -- the spec ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"dynamic": True, "strategy": Strategy.ONE_FOR_ALL}, "is one_for_one"),
        ({"dynamic": True, "children": (WorkerSpec(name="w", agent=Worker),)}, "no static"),
        ({"max_children": 3}, "dynamic=True"),
        ({"templates": (Worker,)}, "dynamic=True"),
        ({"dynamic": True, "max_children": -1}, "max_children must be >= 0"),
    ],
)
def test_a_dynamic_spec_that_cannot_work_is_refused_naming_the_setting(kwargs, words):
    with pytest.raises(ValueError, match=words):
        SupervisorSpec(name="dyn", **kwargs)


def test_templates_must_be_agents_with_distinct_class_names():
    with pytest.raises(TypeError, match="dyn: templates: a template must be an Agent"):
        ActorSystem([dynamic(templates=(int,))])
    with pytest.raises(ValueError, match="dyn: templates: .*no.such.module"):
        ActorSystem([dynamic(templates=("no.such.module:Agent",))])
    twin = type("Worker", (Worker,), {})
    with pytest.raises(ValueError, match="two templates are named 'Worker'"):
        ActorSystem([dynamic(templates=(Worker, twin))])
    system = ActorSystem([dynamic(templates=("tests.vibe_actors.agents:Worker",))]).start()
    try:
        assert system.dynamic_templates("dyn") == {"Worker": Worker}
    finally:
        system.shutdown()


# -- start, crash and restart, terminate --------------------------------------------------


def test_a_started_child_is_supervised_listed_and_answers(make_system, journal):
    system = make_system([dynamic()])
    with record_events(system) as events:
        ref = system.start_child("dyn", worker("c1", journal))
        assert ref.name == "c1"
        started = events.wait_for(DynamicChildStarted)
    assert started.supervisor == "dyn"
    assert started.agent_class == "tests.vibe_actors.agents:Worker"
    assert journal.of("start") == ["c1"]  # on_start had returned when start_child did
    assert ref.ask(Echo(text="hi")).by == "c1"
    (node,) = system.tree().children
    assert node.dynamic and [c.name for c in node.children] == ["c1"]
    assert node.children[0].dynamic and node.children[0].kind == "worker"
    assert "c1" in system.names()


def test_a_crashed_permanent_child_restarts_on_its_name(make_system, journal):
    system = make_system([dynamic()])
    system.start_child("dyn", worker("c1", journal))
    system.ask("c1", Add(n=3))
    system.tell("c1", Boom())
    journal.wait_for(lambda j: j.of("start") == ["c1", "c1"])
    wait_until(lambda: system.status("c1") is AgentStatus.RUNNING)
    assert system.ask("c1", Ping()).incarnation == 2
    assert system.ask("c1", GetTotal()) == Total(total=0)  # a fresh incarnation
    assert system.cell("c1").restarts == 1


@pytest.mark.parametrize(
    ("restart", "how", "stays"),
    [
        (RestartType.PERMANENT, StopSelf(), True),
        (RestartType.TRANSIENT, Boom(), True),
        (RestartType.TRANSIENT, StopSelf(), False),
        (RestartType.TEMPORARY, Boom(), False),
        (RestartType.TEMPORARY, StopSelf(), False),
    ],
)
def test_each_restart_type_is_honoured_and_a_child_not_restarted_frees_its_name(
    make_system, journal, restart, how, stays
):
    system = make_system([dynamic()])
    system.start_child("dyn", worker("c", journal, restart=restart))
    with record_events(system) as events:
        system.tell("c", how)
        if stays:
            journal.wait_for(lambda j: j.of("start") == ["c", "c"])
            wait_until(lambda: system.status("c") is AgentStatus.RUNNING)
        else:
            gone = events.wait_for(DynamicChildTerminated)
            assert gone.agent == "c" and gone.supervisor == "dyn"
            with pytest.raises(UnknownAgent):
                system.cell("c")
            assert system.start_child("dyn", worker("c", journal)).ask(Ping()).incarnation == 1


def test_terminate_child_stops_it_tells_watchers_and_frees_the_name(make_system, journal):
    system = make_system([dynamic(), WorkerSpec(name="watcher", agent=Watcher, config=journal)])
    system.start_child("dyn", worker("c1", journal))
    system.ask("watcher", Watch(name="c1"))
    with record_events(system) as events:
        system.terminate_child("c1")
        assert events.wait_for(DynamicChildTerminated).reason == "terminated"
    assert journal.of("stop") == ["c1"]  # stopped gracefully before terminate_child returned
    journal.wait_for(lambda j: j.of("terminated") == ["c1"])
    assert "c1" not in system.names()
    assert system.tree().children[0].children == ()
    system.tell("c1", Echo(text="late"))
    assert system.dead_letters.recent()[-1].reason.value == "unknown_agent"
    again = system.start_child("dyn", worker("c1", journal))
    assert again.ask(Ping()).incarnation == 1
    with pytest.raises(UnknownAgent):
        system.terminate_child("nobody")


def test_static_agents_are_never_stopped_or_extended_as_dynamic(make_system, journal):
    system = make_system([dynamic(), worker("static", journal)])
    with pytest.raises(NotDynamic, match="'static' is not a dynamic child"):
        system.terminate_child("static")
    with pytest.raises(NotDynamic, match="'dyn' is not a dynamic child"):
        system.terminate_child("dyn")
    with pytest.raises(NotDynamic, match="'root' is not a dynamic supervisor"):
        system.start_child("root", worker("c", journal))
    with pytest.raises(UnknownAgent):
        system.start_child("nope", worker("c", journal))
    assert system.status("static") is AgentStatus.RUNNING
    assert journal.of("stop") == []


def test_a_spec_that_is_not_one_valid_worker_is_refused_before_sending(make_system):
    system = make_system([dynamic()])
    with pytest.raises(TypeError, match="a dynamic child is a WorkerSpec"):
        system.start_child("dyn", SupervisorSpec(name="s"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a pool"):
        system.start_child("dyn", WorkerSpec(name="p", agent=Worker, pool=PoolSpec(size=2)))
    with pytest.raises(ValueError, match="no depends_on"):
        system.start_child("dyn", WorkerSpec(name="d", agent=Worker, depends_on=("x",)))
    with pytest.raises(TypeError, match="must be an Agent subclass"):
        system.start_child("dyn", WorkerSpec(name="x", agent=object))


# -- refusals -----------------------------------------------------------------------------


def test_max_children_refuses_with_the_limit_and_the_setting(make_system, journal):
    system = make_system([dynamic(max_children=2)])
    system.start_child("dyn", worker("c1", journal))
    system.start_child("dyn", worker("c2", journal))
    with pytest.raises(SupervisorFull) as refused:
        system.start_child("dyn", worker("c3", journal))
    assert refused.value.limit == 2 and refused.value.supervisor == "dyn"
    assert "max_children" in refused.value.setting
    assert "c3" not in system.names()
    system.terminate_child("c1")
    system.start_child("dyn", worker("c3", journal))


def test_a_name_in_use_anywhere_is_taken(make_system, journal):
    pool = WorkerSpec(name="pool", agent=Worker, pool=PoolSpec(size=2))
    system = make_system([dynamic(), worker("static", journal), pool])
    system.start_child("dyn", worker("c1", journal))
    for name in ("static", "c1", "pool", "pool.2", "dyn", "root"):
        with pytest.raises(NameTaken, match=repr(name)):
            system.start_child("dyn", worker(name, journal))
    assert system.ask("static", Ping()).incarnation == 1


def test_a_stopped_transient_static_child_still_holds_its_name(make_system, journal):
    system = make_system([dynamic(), worker("t", journal, restart=RestartType.TRANSIENT)])
    system.tell("t", StopSelf())
    wait_until(lambda: system.status("t") is AgentStatus.STOPPED)
    with pytest.raises(NameTaken):
        system.start_child("dyn", worker("t", journal))


def test_a_start_failure_names_the_child_frees_the_name_and_is_no_restart(make_system, journal):
    system = make_system([dynamic(intensity=0)])  # a restart would make it give up
    journal.fail_start.add("bad")
    with pytest.raises(StartFailed, match="root/dyn/bad failed to start") as failed:
        system.start_child("dyn", worker("bad", journal))
    assert isinstance(failed.value.__cause__, RuntimeError)
    assert "bad" not in system.names()
    journal.fail_start.clear()
    system.start_child("dyn", worker("bad", journal))
    assert system.status("dyn") is AgentStatus.RUNNING
    assert system.tree().children[0].incarnation == 1


def test_requests_need_a_running_system(journal):
    system = ActorSystem([dynamic()])
    with pytest.raises(SystemNotRunning):
        system.start_child("dyn", worker("c", journal))
    system.start()
    system.shutdown()
    with pytest.raises(SystemNotRunning):
        system.terminate_child("c")


# -- intensity, escalation, shutdown --------------------------------------------------------


def test_a_crash_looping_child_makes_it_give_up_and_it_restarts_empty(make_system, journal):
    system = make_system([dynamic(intensity=1, period=60)])
    system.start_child("dyn", worker("loop", journal))
    system.start_child("dyn", worker("quiet", journal))
    with record_events(system) as events:
        system.tell("loop", Boom())
        journal.wait_for(lambda j: j.of("start").count("loop") == 2)
        wait_until(lambda: system.status("loop") is AgentStatus.RUNNING)
        system.tell("loop", Boom())
        gave_up = events.wait_for(SupervisorGaveUp)
        assert gave_up.supervisor == "dyn" and "'loop'" in gave_up.reason
        dropped = {events.wait_for(DynamicChildTerminated).agent for _ in range(2)}
    assert dropped == {"loop", "quiet"}
    wait_until(lambda: system.status("dyn") is AgentStatus.RUNNING)
    assert system.tree().children[0].children == ()
    assert system.tree().children[0].restarts == 1
    assert system.start_child("dyn", worker("quiet", journal)).ask(Ping()).incarnation == 1


def test_escalation_error_names_the_dynamic_supervisor_and_the_child(journal):
    system = ActorSystem(dynamic(intensity=0)).start()  # the root itself is dynamic
    system.start_child("dyn", worker("c", journal))
    system.tell("c", Boom())
    with pytest.raises(SystemFailed, match="supervisor 'dyn' gave up.*child 'c', RuntimeError"):
        system.wait(5)
    wait_until(lambda: not system.threads(), what="the failed system's threads to end")


def test_shutdown_stops_dynamic_children_last_started_first_in_the_parents_order(
    make_system, journal
):
    system = make_system([worker("before", journal), dynamic(), worker("after", journal)])
    for name in ("c1", "c2", "c3"):
        system.start_child("dyn", worker(name, journal))
    system.terminate_child("c2")
    system.start_child("dyn", worker("c2", journal))
    journal.clear()
    assert system.shutdown()
    assert journal.of("stop") == ["after", "c2", "c3", "c1", "before"]


# -- from any thread, from handlers, from asyncio ------------------------------------------


def test_a_handler_of_another_agent_starts_children(make_system, journal):
    system = make_system([dynamic(), WorkerSpec(name="spawner", agent=Spawner, config=journal)])
    assert system.ask("spawner", Spawn(supervisor="dyn", name="k1")) == Spawned(
        name="k1", incarnation=1
    )
    assert system.ask("k1", Echo(text="x")).by == "k1"


def test_a_dynamic_child_starts_a_sibling_and_terminates_itself(make_system, journal):
    system = make_system([dynamic()])
    system.start_child("dyn", WorkerSpec(name="spawner", agent=Spawner, config=journal))
    system.ask("spawner", Spawn(supervisor="dyn", name="sib"))
    with record_events(system) as events:
        system.ask("spawner", Quit())  # returns at once: the child stops after this message
        assert events.wait_for(DynamicChildTerminated).agent == "spawner"
    assert "spawner" not in system.names()
    assert system.ask("sib", Ping()).incarnation == 1


def test_a_start_from_on_start_below_the_supervisor_is_refused_not_deadlocked(make_system, journal):
    system = make_system([dynamic()], start_timeout=30.0)
    with pytest.raises(StartFailed) as failed:
        system.start_child(
            "dyn", WorkerSpec(name="selfish", agent=SelfStarter, config=journal), timeout=5
        )
    assert isinstance(failed.value.__cause__, SelfAsk)
    assert journal.of("self-ask") == ["selfish"]
    assert "sibling" not in system.names()


def test_concurrent_starts_from_many_threads_respect_max_children(make_system):
    system = make_system([dynamic(max_children=10)])
    outcomes: list[str] = []
    lock = threading.Lock()

    def start(thread: int) -> None:
        for index in range(5):
            try:
                system.start_child("dyn", WorkerSpec(name=f"t{thread}-{index}", agent=Worker))
                outcome = "started"
            except SupervisorFull:
                outcome = "full"
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=start, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes).count("started") == 10 and outcomes.count("full") == 20
    assert len(system.tree().children[0].children) == 10


def test_asyncio_callers_start_and_terminate_without_blocking_the_loop(make_system, journal):
    system = make_system([dynamic()])

    async def scenario() -> list[str]:
        ticks: list[str] = []
        loop_alive = asyncio.get_running_loop().call_later(0, ticks.append, "tick")
        ref = await system.start_child_async("dyn", worker("a1", journal))
        assert (await ref.ask_async(Echo(text="x"))).by == "a1"
        await system.terminate_child_async("a1")
        with pytest.raises(UnknownAgent):
            await system.terminate_child_async("a1")
        with pytest.raises(SupervisorFull):
            await system.start_child_async("full", worker("a2", journal))
        loop_alive.cancel()
        return ticks

    system.apply(SupervisorSpec(name="root", children=(dynamic(), dynamic("full", max_children=0))))
    assert asyncio.run(scenario()) == ["tick"]
    assert "a1" not in system.names()


def test_the_metrics_count_children_and_start_outcomes(make_system, journal):
    system = make_system([dynamic(max_children=1), dynamic("idle")])
    system.start_child("dyn", worker("c1", journal))
    with pytest.raises(SupervisorFull):
        system.start_child("dyn", worker("c2", journal))
    with pytest.raises(NameTaken):
        system.start_child("idle", worker("c1", journal))
    value = system.registry.get_sample_value
    assert value("vibe_dynamic_children", {"supervisor": "dyn"}) == 1
    assert value("vibe_dynamic_children", {"supervisor": "idle"}) == 0
    starts = "vibe_dynamic_child_starts_total"
    assert value(starts, {"supervisor": "dyn", "outcome": "started"}) == 1
    assert value(starts, {"supervisor": "dyn", "outcome": "full"}) == 1
    assert value(starts, {"supervisor": "idle", "outcome": "name_taken"}) == 1
    assert value(starts, {"supervisor": "idle", "outcome": "start_failed"}) == 0
