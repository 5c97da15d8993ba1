"""Issue 16.7: the watchdog is watched, and readiness is truthful.

The runtime's progress monitor (installed by the watchdog, sampling on the
timer thread) replaces a watchdog stuck in one message, and readiness names an
agent stuck in one message past its heartbeat deadline whatever the watchdog
is doing: between its rounds, across its restart, while it is hung.

Only names that exist before this change are imported, so that each test
fails on its behaviour, not on an import, against the code before it.
"""

from __future__ import annotations

import threading
import time

from structlog.testing import capture_logs

from gateway._ops import not_ready
from vibe_actors import ActorSystem, SupervisorSpec, SystemConfig, WorkerSpec
from vibe_actors.agents.watchdog import AgentDeclaredHung, Watchdog, WatchdogConfig
from vibe_actors.testing import ManualClock, hang

from tests.conftest import wait_until, worker
from tests.vibe_actors.agents import Block, Journal, Nap, Napper
from tests.vibe_actors.system_agents.watchdog.test_watchdog import events_of, rounds

FAST = {"interval": 0.05, "deadline": 0.05, "misses": 2}


def watchdog(**settings: float) -> WorkerSpec:
    return WorkerSpec(
        name="watchdog", agent=Watchdog, config=WatchdogConfig(**{**FAST, **settings})
    )


def tree(*children: WorkerSpec) -> SupervisorSpec:
    """A root that restarts both the watchdog and a hung agent (the default allows one)."""
    return SupervisorSpec(name="root", children=children, intensity=10)


def test_a_hung_watchdog_is_replaced_and_its_successor_replaces_a_hung_agent(make_system, journal):
    system = make_system(tree(worker("stuck", journal), worker("other"), watchdog()))
    declared = events_of(system, AgentDeclaredHung)
    wait_until(lambda: rounds(system) >= 1, what="a first round")
    with capture_logs() as logs, hang(system, "watchdog") as held:
        held.wait_hung(5)
        hung_at = time.monotonic()
        system.tell("stuck", Block())
        assert journal.entered.wait(5)
        # Budget: the watchdog's own (max(1 s, interval * misses + deadline)), its
        # restart, then misses rounds for "stuck"; slack for a busy machine.
        wait_until(lambda: system.cell("stuck").incarnation == 2, 10, "stuck replaced")
        replaced_after = time.monotonic() - hung_at
    assert system.cell("watchdog").incarnation == 2
    assert [(e.agent, e.incarnation, e.replaced) for e in declared] == [
        ("watchdog", 1, True),
        ("stuck", 1, True),
    ]
    assert "_block" in declared[0].stack  # the hung watchdog's own stack
    registry = system.registry
    assert registry.get_sample_value("vibe_watchdog_replaced_total", {"agent": "watchdog"}) == 1
    assert registry.get_sample_value("vibe_watchdog_hung_total", {"agent": "stuck"}) == 1
    (line,) = [entry for entry in logs if entry["event"] == "watchdog_replaced"]
    assert line["agent"] == "watchdog" and line["incarnation"] == 1 and "_block" in line["stack"]
    assert 1.0 <= replaced_after < 10
    print(f"watchdog hung: stuck replaced {replaced_after:.2f}s after the watchdog hung")


def test_readiness_names_a_hung_agent_while_the_watchdog_is_hung_until_it_is_replaced(
    make_system, journal
):
    # The watchdog's own budget is max(1, 0.5 * 4 + 0.05) = 2.05 s: "stuck" (deadline
    # 0.05 s) is named long before anything could replace either of them.
    system = make_system(
        tree(worker("stuck", journal), worker("other"), watchdog(interval=0.5, misses=4))
    )
    wait_until(lambda: rounds(system) >= 1, what="a first round")
    with hang(system, "watchdog") as held:
        held.wait_hung(5)
        system.tell("stuck", Block())
        assert journal.entered.wait(5)
        entered = time.monotonic()
        wait_until(lambda: "stuck" in not_ready(system), 1.5, "readiness to name stuck")
        named_after = time.monotonic() - entered
        assert system.cell("watchdog").incarnation == 1  # named while the watchdog is hung
        assert "other" not in not_ready(system)
        gaps: list[list[str]] = []

        def replaced_and_never_ready_before() -> bool:
            failing = not_ready(system)  # read first: the incarnation only grows
            if "stuck" not in failing and system.cell("stuck").incarnation == 1:
                gaps.append(failing)
            return system.cell("stuck").incarnation >= 2

        wait_until(replaced_and_never_ready_before, 15, "the watchdog to replace stuck")
        assert gaps == [], "ready while stuck's first incarnation was hung"
        replaced_after = time.monotonic() - entered
        wait_until(lambda: not_ready(system) == [], 5, "ready again after the replacement")
    assert system.cell("watchdog").incarnation == 2
    print(f"watchdog hung: not ready {named_after:.3f}s, replaced {replaced_after:.2f}s after")


def test_readiness_names_a_hung_agent_between_heartbeat_rounds():
    # Manual time: no watchdog round ever fires (interval 5 s); only the runtime looks.
    clock = ManualClock()
    journal = Journal()
    system = ActorSystem(
        [worker("stuck", journal), watchdog(interval=5.0, deadline=0.5)],
        SystemConfig(ask_timeout=5.0),
        clock=clock,
    ).start()
    try:
        period = 0.5 / 4  # min(interval, deadline) / 4
        system.tell("stuck", Block())
        assert journal.entered.wait(5)
        clock.advance(period)  # the first sample sees it inside Block
        clock.advance(0.5 - period)
        assert not_ready(system) == []  # seen for 0.375 s: within its 0.5 s deadline
        clock.advance(period)
        assert not_ready(system) == ["stuck"]  # seen for its whole deadline
        journal.gate.set()
        # Read at call time: ready as soon as the handler returned, no sample needed.
        wait_until(lambda: not_ready(system) == [], 5, "ready once Block returned")
        assert system.cell("stuck").incarnation == 1
    finally:
        journal.gate.set()
        system.shutdown(timeout=5.0)


def test_a_slow_agent_that_keeps_finishing_messages_is_never_named(make_system, journal):
    # No round within the test (interval 10 s): readiness is the runtime's alone.
    system = make_system(
        [WorkerSpec(name="slow", agent=Napper), worker("stuck", journal),
         watchdog(interval=10.0, deadline=0.2)]
    )  # fmt: skip
    futures = [system.ref("slow").ask_future(Nap(ms=10), timeout=30) for _ in range(100)]
    system.tell("stuck", Block())
    assert journal.entered.wait(5)
    seen: set[str] = set()

    # ~1 s of queued work: each message is far within the deadline, the queue is not.
    def drained() -> bool:
        seen.update(not_ready(system))
        return all(future.done() for future in futures)

    wait_until(drained, 20, "the slow agent to drain its queue")
    for future in futures:
        future.result(timeout=1)
    assert "stuck" in seen  # readiness was watching all along
    assert "slow" not in seen
    assert system.cell("slow").incarnation == 1


def test_readiness_keeps_naming_a_hung_agent_across_a_watchdog_restart(make_system, journal):
    system = make_system([worker("stuck", journal), watchdog(interval=0.5, misses=10)])
    system.tell("stuck", Block())
    assert journal.entered.wait(5)
    wait_until(lambda: "stuck" in not_ready(system), 3, "readiness to name stuck")
    system.inject_fault("watchdog", "crash")
    wait_until(lambda: system.cell("watchdog").incarnation == 2, what="the watchdog restarted")
    wait_until(lambda: system.status("watchdog") == "running", what="the watchdog running")
    assert not_ready(system) == ["stuck"]  # the new watchdog's fresh view changes nothing
    assert system.cell("stuck").incarnation == 1


def test_readiness_is_unknown_when_the_runtime_stops_sampling(make_system):
    system = make_system([worker("a"), watchdog()])
    wait_until(lambda: rounds(system) >= 1, what="a first round")
    unblock = threading.Event()
    system._timers.call_later(0, unblock.wait, 30)  # a timer callback that blocks the thread
    try:
        # Stale after max(1 s, deadline + 4 periods): then unknown, so not ready.
        wait_until(lambda: "vibe-timers" in not_ready(system), 5, "staleness to show")
    finally:
        unblock.set()
    wait_until(lambda: not_ready(system) == [], 5, "sampling to resume")
