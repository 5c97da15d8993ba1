"""Watchdog: hung agents are found and replaced, slow ones are not, stacks are reported."""

from __future__ import annotations

import pytest

from vibe_actors import AgentCrashedError, RuntimeEvent, WorkerSpec
from vibe_actors.agents.watchdog import (
    AgentDeclaredHung,
    AgentWatch,
    Report,
    Watchdog,
    WatchdogConfig,
    WatchdogReport,
    unresponsive,
)

from tests.conftest import wait_until, worker
from tests.vibe_actors.agents import Block, Echo, Nap, Napper

FAST = {"interval": 0.05, "deadline": 0.05, "misses": 2}


def watchdog(**settings) -> WorkerSpec:
    return WorkerSpec(
        name="watchdog", agent=Watchdog, config=WatchdogConfig(**{**FAST, **settings})
    )


def rounds(system) -> int:
    return sum(n for t, _, n in system.cell("watchdog").stats.items() if t.__name__ == "_Round")


def events_of(system, kind: type) -> list[RuntimeEvent]:
    seen: list[RuntimeEvent] = []
    system.events.subscribe(lambda event: isinstance(event, kind) and seen.append(event))
    return seen


def test_a_hung_agent_is_replaced_within_its_budget_while_others_serve(make_system, journal):
    system = make_system([worker("stuck", journal), worker("other"), watchdog()])
    declared = events_of(system, AgentDeclaredHung)
    in_flight = system.ref("stuck").ask_future(Block(), timeout=30)
    assert journal.entered.wait(5)
    # Budget: misses x interval to notice, one more round to act, generous slack for a busy box.
    wait_until(lambda: system.cell("stuck").incarnation == 2, timeout=3, what="replacement")
    assert system.ask("other", Echo(text="still here")).text == "still here"
    with pytest.raises(AgentCrashedError, match="hung"):
        in_flight.result(timeout=1)
    wait_until(lambda: system.status("stuck") == "running")
    assert system.ask("stuck", Echo(text="fresh")).incarnation == 2
    (event,) = declared
    assert (event.agent, event.incarnation, event.replaced) == ("stuck", 1, True)
    assert "in block" in event.stack and "gate.wait" in event.stack
    report = system.ask("watchdog", Report())
    assert isinstance(report, WatchdogReport)
    (incident,) = report.incidents
    assert incident.agent == "stuck" and "missed 2 heartbeats" in incident.reason
    assert "in block" in incident.stack
    assert "hung" in system.cell("stuck").last_failure
    assert system.registry.get_sample_value("vibe_watchdog_hung_total", {"agent": "stuck"}) == 1
    assert system.registry.get_sample_value("vibe_abandoned_total", {"agent": "stuck"}) == 1
    journal.gate.set()  # let the abandoned thread leave


def test_a_slow_agent_that_keeps_draining_is_not_replaced(make_system):
    system = make_system([WorkerSpec(name="slow", agent=Napper), watchdog()])
    futures = [system.ref("slow").ask_future(Nap(ms=10), timeout=30) for _ in range(60)]
    start = rounds(system)
    wait_until(lambda: rounds(system) >= start + 8, what="eight watchdog rounds")
    for future in futures:
        future.result(timeout=10)
    assert system.cell("slow").incarnation == 1
    assert system.ask("watchdog", Report()).incidents == []
    missed = system.registry.get_sample_value("vibe_watchdog_misses_total", {"agent": "slow"})
    assert missed and missed >= 1  # it did miss heartbeats: slow, not hung


def test_detect_only_reports_the_stack_and_readiness_without_replacing(make_system, journal):
    system = make_system([worker("stuck", journal), watchdog(replace=False)])
    declared = events_of(system, AgentDeclaredHung)
    system.tell("stuck", Block())
    assert journal.entered.wait(5)
    wait_until(lambda: declared, timeout=3, what="a hung declaration")
    assert declared[0].replaced is False and "gate.wait" in declared[0].stack
    wait_until(lambda: "stuck" in unresponsive(system), timeout=3)
    assert system.cell("stuck").incarnation == 1
    journal.gate.set()
    wait_until(lambda: "stuck" not in unresponsive(system), timeout=3, what="recovery")

    def states() -> list[str]:
        return [h.state for h in system.ask("watchdog", Report()).agents]

    # A detect-only declaration drops the agent's heartbeat state until the next round.
    wait_until(lambda: states() == ["ok"], what="ok")
    (heartbeat,) = system.ask("watchdog", Report()).agents
    assert (heartbeat.agent, heartbeat.incarnation, heartbeat.misses) == ("stuck", 1, 0)


def test_excluded_agents_and_pools_are_never_pinged(make_system, journal):
    system = make_system([worker("stuck", journal), worker("free"), watchdog(exclude=["stuck"])])
    system.tell("stuck", Block())
    assert journal.entered.wait(5)
    start = rounds(system)
    wait_until(lambda: rounds(system) >= start + 6, what="six watchdog rounds")
    assert system.cell("stuck").incarnation == 1
    names = [h.agent for h in system.ask("watchdog", Report()).agents]
    assert names == ["free"]
    journal.gate.set()


def test_excluding_an_entity_kind_excludes_its_shards(make_system):
    import threading

    from vibe_actors import EntitySpec

    from tests.vibe_actors.test_entities import GATES, Block, Counter, Get

    kind = WorkerSpec(name="counters", agent=Counter, entity=EntitySpec(shards=3))
    system = make_system([kind, worker("free"), watchdog(exclude=["counters"])])
    GATES["slow"] = gate = threading.Event()
    try:
        shard = system.entity_shard("counters", "a")
        system.entity("counters", "a").tell(Block(key="slow"))  # its shard is busy for long
        wait_until(lambda: system.cell(shard).host.current is not None, what="the shard busy")
        start = rounds(system)
        wait_until(lambda: rounds(system) >= start + 6, what="six watchdog rounds")
        assert [h.agent for h in system.ask("watchdog", Report()).agents] == ["free"]
        assert system.cell(shard).incarnation == 1  # not declared hung, not replaced
        assert shard not in unresponsive(system)  # nor unready
    finally:
        gate.set()
    assert system.entity("counters", "b").ask(Get()).total == 0


def test_a_per_agent_budget_overrides_the_default(make_system, journal):
    patient = AgentWatch(deadline=30.0)
    system = make_system([worker("stuck", journal), watchdog(agents={"stuck": patient})])
    system.tell("stuck", Block())
    assert journal.entered.wait(5)
    start = rounds(system)
    wait_until(lambda: rounds(system) >= start + 6, what="six watchdog rounds")
    assert system.cell("stuck").incarnation == 1
    (heartbeat,) = system.ask("watchdog", Report()).agents
    assert heartbeat.misses == 0  # its ping is still within the 30 s deadline
    journal.gate.set()


def test_report_shows_round_trips_and_the_watchdog_restarts_afresh(make_system):
    system = make_system([worker("a"), watchdog()])
    wait_until(
        lambda: any(h.last_rtt for h in system.ask("watchdog", Report()).agents),
        what="a measured round trip",
    )
    system.inject_fault("watchdog", "crash")
    wait_until(lambda: system.cell("watchdog").incarnation == 2)
    wait_until(lambda: system.status("watchdog") == "running")
    report = system.ask("watchdog", Report())
    assert report.incidents == [] and report.interval == FAST["interval"]


def test_config_is_validated():
    import msgspec

    with pytest.raises(msgspec.ValidationError, match="interval"):
        msgspec.convert({"interval": 0}, WatchdogConfig)
    with pytest.raises(msgspec.ValidationError, match="misses"):
        msgspec.convert({"agents": {"x": {"misses": 0}}}, WatchdogConfig)


def test_unresponsive_is_empty_for_a_system_without_watchdog(make_system):
    assert unresponsive(make_system([worker("a")])) == frozenset()
