"""Testing your own agent with vibe_actors.testing (the pytest plugin is loaded automatically).

A probe stands in for the agent that receives the summaries, a manual clock
drives the flush timer and the supervisor's restart intensity, and injected
faults crash the agent. No test sleeps; the whole file runs in well under a second.
"""

from __future__ import annotations

import pytest
from custom_agent import Reading, Summary

from vibe_actors import AgentCrashedError, AgentRestarted, SupervisorGaveUp, SystemFailed
from vibe_actors.testing import crash, fail_next, probes, record_events

WIRING = """
root:
  name: root
  intensity: 2          # more than 2 restarts ...
  period: 5s            # ... within 5 seconds: give up
  backoff: {min: 1s, max: 1s, random_factor: 0.0}
  children:
    - name: sink
      agent: vibe_actors.testing:ProbeAgent
    - name: averager
      agent: custom_agent:Averager
      config: {sink: sink, flush_every: 10s}
"""


@pytest.mark.wiring(WIRING)
def test_summaries_are_sent_every_flush_period(actor_system, manual_clock):
    sink = probes(actor_system)["sink"]
    averager = actor_system.ref("averager")
    averager.ask(Reading(sensor="t1", value=20.0))
    averager.ask(Reading(sensor="t1", value=22.0))

    manual_clock.advance(9.9)
    sink.expect_no_message(within=0.05)
    manual_clock.advance(0.1)  # the flush timer fires
    assert sink.expect(Summary) == Summary(sensor="t1", count=2, mean=21.0)

    manual_clock.advance(10.0)  # nothing recorded since: nothing sent
    sink.expect_no_message(within=0.05)


@pytest.mark.wiring(WIRING)
def test_a_failing_reading_crashes_the_agent_and_loses_unflushed_sums(actor_system, manual_clock):
    sink = probes(actor_system)["sink"]
    averager = actor_system.ref("averager")
    averager.ask(Reading(sensor="t1", value=1.0))
    with record_events(actor_system) as events:
        fail_next(actor_system, "averager", OSError("sensor bus down"), on=Reading)
        with pytest.raises(AgentCrashedError, match="sensor bus down"):
            averager.ask(Reading(sensor="t1", value=2.0))
        events.wait_for(AgentRestarted, where=lambda e: e.agent == "averager")
    averager.ask(Reading(sensor="t2", value=5.0))
    manual_clock.advance(10.0)
    assert sink.expect(Summary).sensor == "t2"  # t1's sums died with the first incarnation


@pytest.mark.wiring(WIRING)
def test_three_crashes_within_five_seconds_escalate(actor_system, manual_clock):
    with record_events(actor_system) as events:
        crash(actor_system, "averager")  # t=0: restarted at once
        events.wait_for(AgentRestarted)
        crash(actor_system, "averager")  # t=0: the second restart backs off 1 s
        manual_clock.wait_for_timers(1, within=2.0)  # the restart (the flush is 10 s away)
        manual_clock.advance(1.0)
        events.wait_for(AgentRestarted, where=lambda e: e.incarnation == 3)
        manual_clock.advance(2.0)
        crash(actor_system, "averager")  # t=3: the third restart within 5 s
        assert events.wait_for(SupervisorGaveUp).supervisor == "root"
    with pytest.raises(SystemFailed, match="gave up"):
        actor_system.wait(timeout=5)
