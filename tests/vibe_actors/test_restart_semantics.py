"""The fate of failing, queued and in-flight messages across a restart (SEMANTICS.md 3)."""

from __future__ import annotations

import pytest

from vibe_actors import AgentCrashedError, AgentStatus, Ping, Strategy, SupervisorSpec

from tests.conftest import wait_until, worker
from tests.vibe_actors.agents import Add, Block, Boom, GetTotal, Total
from tests.vibe_actors.test_supervisor import NO_BACKOFF


def test_failing_message_is_not_reprocessed_and_queued_ones_reach_the_new_incarnation(
    make_system, journal
):
    system = make_system([worker("w", journal)])
    ref = system.ref("w")
    ref.tell(Block())
    assert journal.entered.wait(5)
    crashing = ref.ask_future(Boom(), timeout=10)
    queued = [ref.ask_future(Add(n=n), timeout=10) for n in (1, 2, 3)]
    journal.gate.set()
    with pytest.raises(AgentCrashedError):
        crashing.result()
    # State is per incarnation (the new one starts from 0), order is kept.
    assert [f.result() for f in queued] == [Total(total=1), Total(total=3), Total(total=6)]
    assert ref.ask(Ping()).incarnation == 2
    assert journal.of("failure") == ["w"]


def test_sibling_in_flight_message_completes_before_its_restart(make_system, journal):
    spec = SupervisorSpec(
        name="sup",
        strategy=Strategy.ONE_FOR_ALL,
        backoff=NO_BACKOFF,
        intensity=5,
        children=(worker("a", journal), worker("b", journal)),
    )
    system = make_system(spec)
    in_flight = system.ref("a").ask_future(Block(), timeout=10)
    assert journal.entered.wait(5)
    queued = system.ref("a").ask_future(Add(n=7), timeout=10)
    system.tell("b", Boom())  # one_for_all: a must stop, but finishes its message first
    wait_until(lambda: system.cell("a").status is AgentStatus.STOPPING, what="a asked to stop")
    journal.gate.set()
    assert in_flight.result() == Total(total=0)
    assert queued.result() == Total(total=7)  # handled by a's next incarnation
    assert system.ask("a", Ping()).incarnation == 2
    assert system.ask("a", GetTotal()) == Total(total=7)


def test_restart_keeps_the_ref_valid(make_system):
    system = make_system(SupervisorSpec(name="sup", intensity=5, children=(worker("w"),)))
    ref = system.ref("w")
    for expected in (2, 3):
        ref.tell(Boom())
        assert ref.ask(Ping()).incarnation == expected
