"""The pytest plugin (phoenix.pytest_plugin): systems from inline wiring, checked after each test."""

from __future__ import annotations

import sys

import pytest

from phoenix import WiringError
from phoenix.pytest_plugin import system_from_wiring
from vibe_actors import AgentRestarted, BackoffSpec, Ping
from vibe_actors.testing import ManualClock, crash, hang, probes, record_events

pytest_plugins = ["pytester"]

CHILDREN = """
- name: p
  agent: vibe_actors.testing:ProbeAgent
- name: w
  agent: tests.vibe_actors.agents:Worker
"""


@pytest.mark.wiring(CHILDREN)
def test_actor_system_from_the_marker(actor_system):
    assert actor_system.running
    assert actor_system.config.serialize_messages
    assert "data" in actor_system.config.data_dir
    assert set(probes(actor_system)) == {"p"}
    assert actor_system.ask("w", Ping()).agent == "w"
    hang(actor_system, "w").wait_hung()  # released by the fixture before shutdown


@pytest.mark.wiring(
    """
    root:
      name: root
      intensity: 5
      children:
        - name: w
          agent: tests.vibe_actors.agents:Worker
    """
)
def test_actor_system_uses_the_manual_clock_fixture(actor_system, manual_clock):
    assert actor_system.clock is manual_clock
    with record_events(actor_system) as events:
        crash(actor_system, "w")
        events.wait_for(AgentRestarted)
        crash(actor_system, "w")  # the second restart backs off (root default: 0.01 s min)
        manual_clock.wait_for_timers(1)
        manual_clock.advance(1.0)
        events.wait_for(AgentRestarted, where=lambda e: e.incarnation == 3)


def test_factory_takes_a_whole_file_and_overrides(actor_system_factory, tmp_path):
    system = actor_system_factory(
        """
        version: 1
        system:
          ask_timeout: 2.5
        root:
          name: top
          intensity: 3
          children:
            - name: w
              agent: tests.vibe_actors.agents:Worker
        """,
        data_dir=str(tmp_path / "mine"),
        clock=ManualClock(),
    )
    assert system.tree().name == "top"
    assert system.config.ask_timeout == 2.5
    assert system.config.data_dir.endswith("mine")
    assert system.root_spec.backoff == BackoffSpec()
    unstarted = actor_system_factory(CHILDREN, start=False, serialize_messages=False)
    assert not unstarted.running and not unstarted.config.serialize_messages


def test_an_invalid_wiring_names_its_problems():
    with pytest.raises(WiringError, match="<inline wiring>"):
        system_from_wiring("- name: w\n  agent: nowhere:Nothing\n")


def test_the_plugin_is_registered_and_checks_for_leftover_threads(pytester):
    pytester.makepyfile(
        stuck="""
        import threading
        from vibe_actors import Agent, Message, handler

        class Stick(Message):
            pass

        GATE = threading.Event()

        class Stuck(Agent):
            @handler
            def stick(self, msg: Stick) -> None:
                GATE.wait(5)
        """,
        test_inner="""
        import pytest
        from stuck import GATE, Stick

        WIRING = '''
        - name: s
          agent: stuck:Stuck
          shutdown: 10
        '''

        @pytest.mark.wiring(WIRING)
        def test_leaks(actor_system):
            actor_system.tell("s", Stick())

        def test_no_marker(actor_system):
            pass

        def test_leak_ok(actor_system_factory):
            actor_system_factory(WIRING, leak_ok=True).tell("s", Stick())
        """,
    )

    class LetGo:  # once the inner run is over, free its stuck thread
        def pytest_sessionfinish(self) -> None:
            sys.modules["stuck"].GATE.set()

    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q", plugins=[LetGo()])
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(["*actor threads alive after shutdown: *vibe:s#1*"])
    result.stdout.fnmatch_lines(["*needs @pytest.mark.wiring*"])
