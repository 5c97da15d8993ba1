"""Supervision (SEMANTICS.md section 4): strategies, restart types, intensity, order."""

from __future__ import annotations

import pytest

from vibe_actors import (
    AgentStatus,
    BackoffSpec,
    Ping,
    RestartType,
    StartFailed,
    Strategy,
    SupervisorSpec,
    SystemFailed,
    Terminated,
)

from tests.conftest import wait_until, worker
from tests.vibe_actors.agents import Add, Boom, StopSelf

NO_BACKOFF = BackoffSpec(min=0.0, max=0.0, random_factor=0.0)


def tree(strategy, journal, *, intensity=10, restart=RestartType.PERMANENT, names="abcd"):
    return SupervisorSpec(
        name="sup",
        strategy=strategy,
        intensity=intensity,
        period=60,
        backoff=NO_BACKOFF,
        children=tuple(worker(n, journal, restart=restart) for n in names),
    )


def crash_and_wait(system, journal, name, expected_starts):
    journal.clear()
    system.tell(name, Boom())
    journal.wait_for(lambda j: len(j.of("start")) >= expected_starts)
    system.ask("sup", Ping())  # handled after the restart is complete
    return journal.of("stop"), journal.of("start")


def test_children_start_in_order_and_stop_in_reverse(make_system, journal):
    system = make_system(tree(Strategy.ONE_FOR_ONE, journal))
    assert journal.of("start") == ["a", "b", "c", "d"]
    journal.clear()
    assert system.shutdown()
    assert journal.of("stop") == ["d", "c", "b", "a"]


@pytest.mark.parametrize(
    ("strategy", "stopped", "started"),
    [
        (Strategy.ONE_FOR_ONE, [], ["b"]),
        (Strategy.ONE_FOR_ALL, ["d", "c", "a"], ["a", "b", "c", "d"]),
        (Strategy.REST_FOR_ONE, ["d", "c"], ["b", "c", "d"]),
    ],
)
def test_strategy_decides_which_siblings_restart_and_in_which_order(
    make_system, journal, strategy, stopped, started
):
    system = make_system(tree(strategy, journal))
    stops, starts = crash_and_wait(system, journal, "b", len(started))
    assert stops == stopped
    assert starts == started
    assert system.ask("b", Ping()).incarnation == 2
    assert system.ask("a", Ping()).incarnation == (2 if strategy is Strategy.ONE_FOR_ALL else 1)


def test_restart_counts_and_last_failure_show_in_the_tree(make_system, journal):
    system = make_system(tree(Strategy.ONE_FOR_ONE, journal))
    crash_and_wait(system, journal, "c", 1)
    node = {n.name: n for n in system.walk()}["c"]
    assert node.restarts == 1
    assert node.status == "running"
    assert "RuntimeError: boom" in node.last_failure


def test_temporary_child_is_not_restarted_and_is_removed(make_system, journal):
    spec = SupervisorSpec(
        name="sup",
        backoff=NO_BACKOFF,
        children=(worker("a", journal), worker("t", journal, restart=RestartType.TEMPORARY)),
    )
    system = make_system(spec)
    system.tell("t", Boom())
    journal.wait_for(lambda j: "failure" in [k for k, _, _ in j.events])
    system.ask("sup", Ping())  # the supervisor has handled the exit
    assert "t" not in system.names()
    assert system.ask("a", Ping()).incarnation == 1


def test_transient_child_stopping_normally_stays_stopped(make_system, journal):
    spec = SupervisorSpec(
        name="sup",
        strategy=Strategy.ONE_FOR_ALL,
        backoff=NO_BACKOFF,
        children=(worker("a", journal), worker("t", journal, restart=RestartType.TRANSIENT)),
    )
    system = make_system(spec)
    system.tell("t", StopSelf())
    journal.wait_for(lambda j: "t" in j.of("stop"))
    system.ask("sup", Ping())
    assert system.cell("t").status is AgentStatus.STOPPED
    assert system.ask("a", Ping()).incarnation == 1  # no sibling restarted


def test_transient_child_that_crashes_is_restarted(make_system, journal):
    spec = SupervisorSpec(
        name="sup",
        backoff=NO_BACKOFF,
        children=(worker("t", journal, restart=RestartType.TRANSIENT),),
    )
    system = make_system(spec)
    crash_and_wait(system, journal, "t", 1)
    assert system.ask("t", Ping()).incarnation == 2


def test_permanent_child_stopping_normally_is_restarted(make_system, journal):
    system = make_system(tree(Strategy.ONE_FOR_ONE, journal, names="a"))
    journal.clear()
    system.tell("a", StopSelf())
    journal.wait_for(lambda j: j.of("start") == ["a"])
    assert system.ask("a", Ping()).incarnation == 2


def test_more_than_intensity_restarts_stops_the_system_with_a_clear_error(make_system, journal):
    system = make_system(tree(Strategy.ONE_FOR_ONE, journal, intensity=2))
    for expected in (2, 3):
        system.tell("a", Boom())
        assert system.ask("a", Ping()).incarnation == expected
    journal.clear()
    system.tell("a", Boom())
    with pytest.raises(SystemFailed, match="gave up: more than 2 restarts"):
        system.wait(timeout=5)
    # Giving up stopped the siblings in reverse order before failing upward.
    assert journal.of("stop") == ["d", "c", "b"]


def test_escalation_goes_through_two_levels(make_system, journal):
    inner = SupervisorSpec(
        name="inner", intensity=0, backoff=NO_BACKOFF, children=(worker("x", journal),)
    )
    middle = SupervisorSpec(
        name="middle", intensity=5, period=60, backoff=NO_BACKOFF,
        children=(inner, worker("m", journal)),
    )  # fmt: skip
    root = SupervisorSpec(
        name="root", strategy=Strategy.ONE_FOR_ALL, intensity=5, period=60, backoff=NO_BACKOFF,
        children=(worker("r", journal), middle),
    )  # fmt: skip
    system = make_system(root)
    journal.clear()
    system.tell("x", Boom())  # inner gives up at once (intensity 0) -> middle restarts inner
    journal.wait_for(lambda j: "x" in j.of("start"))
    system.ask("middle", Ping())  # handled after middle restarted inner
    assert system.cell("inner").restarts == 1
    assert system.ask("x", Ping()).incarnation == 2
    assert system.ask("r", Ping()).incarnation == 1  # root not involved
    assert system.ask("m", Ping()).incarnation == 1  # one_for_one in middle


def test_initial_start_failure_names_the_agent_and_stops_the_rest(make_system, journal):
    journal.fail_start.add("c")
    system = make_system(tree(Strategy.ONE_FOR_ONE, journal), start=False)
    with pytest.raises(StartFailed, match="sup/c failed to start: RuntimeError: c refuses") as info:
        system.start()
    assert isinstance(info.value.__cause__, RuntimeError)  # the innermost cause, unwrapped
    assert info.value.path == "sup/c"
    assert journal.of("stop") == ["b", "a"]


def test_death_watch_delivers_terminated_also_for_already_dead(make_system, journal):
    from vibe_actors import Agent, handler

    seen: list[Terminated] = []

    class Watcher(Agent):
        @handler
        def terminated(self, msg: Terminated) -> None:
            seen.append(msg)
            journal.add("terminated", msg.agent, 0)

        @handler
        def ping_watch(self, msg: Ping) -> None:
            self.watch("t")
            self.watch("ghost")

    from vibe_actors import WorkerSpec

    spec = SupervisorSpec(
        name="sup",
        backoff=NO_BACKOFF,
        children=(
            WorkerSpec(name="watcher", agent=Watcher),
            worker("t", journal, restart=RestartType.TEMPORARY),
        ),
    )
    system = make_system(spec, serialize_messages=False)
    system.ask("watcher", Ping())
    journal.wait_for(lambda j: "ghost" in j.of("terminated"))
    system.tell("t", Boom())
    journal.wait_for(lambda j: "t" in j.of("terminated"))
    by_agent = {m.agent: m.reason for m in seen}
    assert by_agent["ghost"] == "unknown agent"
    assert "boom" in by_agent["t"]


def test_escalation_through_two_levels_restarts_the_grandparents_subtree(make_system, journal):
    inner = SupervisorSpec(
        name="inner", intensity=0, backoff=NO_BACKOFF, children=(worker("x", journal),)
    )
    middle = SupervisorSpec(
        name="middle", intensity=0, backoff=NO_BACKOFF, children=(worker("m", journal), inner)
    )
    root = SupervisorSpec(
        name="root", strategy=Strategy.ONE_FOR_ALL, intensity=5, period=60, backoff=NO_BACKOFF,
        children=(worker("r", journal), middle),
    )  # fmt: skip
    system = make_system(root)
    journal.clear()
    system.tell("x", Boom())  # inner gives up -> middle gives up -> root restarts everything
    journal.wait_for(lambda j: j.of("start") == ["r", "m", "x"])
    system.ask("root", Ping())
    assert journal.of("stop") == ["m", "r"]  # middle stopped m; root stopped r (one_for_all)
    assert system.failures.escalations() == {"inner": 1, "middle": 1}
    assert [system.ask(n, Ping()).incarnation for n in ("r", "m", "x")] == [2, 2, 2]
    assert system.cell("middle").restarts == 1


def test_a_hung_agent_is_replaced_on_the_same_mailbox(make_system, journal):
    from vibe_actors import AgentCrashedError, AgentHung

    from tests.vibe_actors.agents import Add, Block, Total

    spec = SupervisorSpec(name="sup", backoff=NO_BACKOFF, children=(worker("w", journal),))
    system = make_system(spec, leak_ok=True)
    stuck = system.ref("w").ask_future(Block(), timeout=30)
    assert journal.entered.wait(5)
    queued = system.ref("w").ask_future(Add(n=2), timeout=30)
    failure = system.replace_hung("w", "heartbeat missed 3 times")
    assert isinstance(failure, AgentHung)
    assert "in block" in failure.stack  # the stuck handler's frame is in the report
    with pytest.raises(AgentCrashedError, match="hung: heartbeat missed"):
        stuck.result()
    assert queued.result() == Total(total=2)  # served by the new incarnation
    assert system.ask("w", Ping()).incarnation == 2
    journal.gate.set()  # the abandoned thread returns, and handles nothing more
    assert system.ask("w", Ping()).incarnation == 2


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
def test_group_restart_starts_a_transient_child_that_had_stopped(make_system, journal, strategy):
    """As OTP: a group restart starts every non-temporary child of the group again."""
    spec = SupervisorSpec(
        name="sup",
        strategy=strategy,
        intensity=10,
        period=60,
        backoff=NO_BACKOFF,
        children=(
            worker("a", journal),
            worker("t", journal, restart=RestartType.TRANSIENT),
            worker("b", journal),
        ),
    )
    system = make_system(spec)
    system.tell("t", StopSelf())
    journal.wait_for(lambda j: "t" in j.of("stop"))
    wait_until(lambda: system.cell("t").status is AgentStatus.STOPPED, what="t stopped for good")
    stops, starts = crash_and_wait(system, journal, "a", 3)
    assert starts == ["a", "t", "b"]
    assert stops == ["b"]  # t had nothing to stop
    assert system.cell("t").status is AgentStatus.RUNNING
    assert system.ask("t", Ping()).incarnation == 2
    assert system.cell("t").restarts == 1


def test_a_revived_transient_child_queues_messages_while_its_group_backs_off(make_system, journal):
    spec = SupervisorSpec(
        name="sup",
        strategy=Strategy.ONE_FOR_ALL,
        intensity=10,
        period=60,
        backoff=BackoffSpec(min=30.0, max=30.0, random_factor=0.0),
        children=(worker("a", journal), worker("t", journal, restart=RestartType.TRANSIENT)),
    )
    system = make_system(spec)
    t = system.cell("t")
    system.tell("t", StopSelf())
    wait_until(lambda: t.status is AgentStatus.STOPPED, what="t stopped for good")
    crash_and_wait(system, journal, "a", 2)  # the first group restart is immediate
    assert system.ask("t", Ping()).incarnation == 2
    system.tell("t", StopSelf())
    wait_until(lambda: t.status is AgentStatus.STOPPED, what="t stopped for good again")
    journal.clear()
    system.tell("a", Boom())  # the second consecutive one backs off 30 s
    wait_until(lambda: t.status is AgentStatus.RESTARTING, what="t waiting for its restart")
    assert journal.of("start") == []  # still backing off
    system.tell("t", Add(n=5))
    assert t.mailbox.qsize() == 1  # queued for the next incarnation, not a dead letter
    assert not [d for d in system.dead_letters.recent() if d.agent == "t"]


def test_default_limit_gives_up_naming_supervisor_limit_failure_and_setting(make_system):
    """ActorSystem([...]) wraps its children in a root with OTP's 1 restart in 5 s."""
    from structlog.testing import capture_logs

    from vibe_actors import SupervisorGaveUp, WorkerSpec

    from tests.vibe_actors.agents import Worker

    events: list[object] = []
    system = make_system([WorkerSpec(name="w", agent=Worker)], start=False)
    system.events.subscribe(events.append)
    system.start()
    with capture_logs() as logs:
        system.tell("w", Boom(why="disk on fire"))
        assert system.ask("w", Ping()).incarnation == 2  # the first crash is restarted
        system.tell("w", Boom(why="disk on fire"))
        with pytest.raises(SystemFailed) as info:
            system.wait(timeout=5)
    message = str(info.value)
    for part in (
        "supervisor 'root' gave up",
        "more than 1 restart within 5s",
        "intensity=1, period=5",
        "last failure: child 'w', RuntimeError: disk on fire",
        "SupervisorSpec(name='root', intensity=..., period=...)",
        "intensity: / period: of 'root' in the wiring file",
    ):
        assert part in message
    assert system.failure is not None and system.failure in message
    assert system.failure.startswith("RestartIntensityExceeded: supervisor 'root' gave up")
    gave_up = next(e for e in events if isinstance(e, SupervisorGaveUp))
    assert gave_up.supervisor == "root" and "SupervisorSpec(name='root'" in gave_up.reason
    entry = next(e for e in logs if e["event"] == "supervisor_gave_up")
    assert (entry["supervisor"], entry["child"], entry["intensity"], entry["period"]) == (
        "root",
        "w",
        1,
        5.0,
    )
    assert "intensity=..." in entry["setting"]
    failed = next(e for e in logs if e["event"] == "system_failed")
    assert "SupervisorSpec(name='root'" in failed["reason"]


def test_a_pool_that_gives_up_names_the_period_to_change(make_system):
    from vibe_actors import PoolSpec, RestartIntensityExceeded, WorkerSpec

    from tests.vibe_actors.agents import Worker

    pool = WorkerSpec(name="p", agent=Worker, pool=PoolSpec(size=1))
    root = SupervisorSpec(name="root", intensity=0, period=7.0, children=(pool,))
    system = make_system(root)
    system.tell("p.1", Boom())
    assert system.ask("p.1", Ping()).incarnation == 2
    system.tell("p.1", Boom())
    with pytest.raises(SystemFailed) as info:
        system.wait(timeout=5)
    message = str(info.value)
    assert f"{RestartIntensityExceeded.__name__}: supervisor 'p' gave up" in message
    assert "within 7s" in message
    assert "shorten the period of supervisor 'root'" in message
