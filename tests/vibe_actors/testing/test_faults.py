"""Fault injection: crash, fail the next handler, hang until released."""

from __future__ import annotations

import pytest

from vibe_actors import AgentCrashedError, DeadlineExceededError, Ping, UnknownAgent
from vibe_actors.testing import crash, fail_next, hang, probe_spec, probes, release_all

from tests.conftest import wait_until, worker
from tests.vibe_actors.agents import Add, Echo, GetTotal, Tick


def _restarted(system, name, incarnation=2):
    wait_until(
        lambda: system.cell(name).incarnation == incarnation and system.status(name) == "running",
        what=f"{name} incarnation {incarnation}",
    )


@pytest.fixture
def system(make_system, journal):
    return make_system([worker("w", journal), probe_spec("p")])


def test_fail_next_fails_the_next_message_and_its_asker_hears_of_it(system):
    system.tell("w", Add(n=1))  # queued before: handled normally
    fail_next(system, "w", OSError("disk full"))
    with pytest.raises(AgentCrashedError, match="OSError: disk full"):
        system.ask("w", Echo(text="lost"))
    _restarted(system, "w")
    assert system.cell("w").last_failure == "OSError: disk full"
    assert system.ask("w", Ping()).incarnation == 2  # only one message failed


def test_fail_next_on_a_type_lets_other_messages_through(system):
    fail_next(system, "w", RuntimeError, on=Add)
    assert system.ask("w", Echo(text="fine")).text == "fine"
    assert system.ask("w", GetTotal()).total == 0
    with pytest.raises(AgentCrashedError, match="RuntimeError"):
        system.ask("w", Add(n=5))
    _restarted(system, "w")


def test_fail_next_on_the_fallback_of_a_probe(system):
    fail_next(system, "p", on=Tick)
    system.tell("p", Echo(text="kept"))
    with pytest.raises(AgentCrashedError, match="InjectedCrash"):
        system.ask("p", Tick())
    assert probes(system)["p"].received == [Echo(text="kept")]
    fail_next(system, "p")  # any message
    _restarted(system, "p")
    with pytest.raises(AgentCrashedError):
        system.ask("p", Echo(text="x"))


def test_fail_next_refuses_a_type_the_agent_does_not_handle(system):
    with pytest.raises(ValueError, match="no handler for Tick"):
        fail_next(system, "w", on=Tick)
    with pytest.raises(UnknownAgent):
        fail_next(system, "nobody")


def test_crash_keeps_the_queued_messages(system):
    system.tell("w", Add(n=1))
    crash(system, "w", ValueError("boom"))
    system.tell("w", Add(n=2))
    _restarted(system, "w")
    assert system.cell("w").last_failure == "ValueError: boom"
    assert system.ask("w", GetTotal()).total == 2  # state is per incarnation; Add(2) survived


def test_hang_blocks_until_released(system):
    release = hang(system, "w")
    release.wait_hung()
    assert release.hung and not release.released
    with pytest.raises(DeadlineExceededError):
        system.ask("w", Ping(), timeout=0.05)
    pending = system.ref("w").ask_future(Echo(text="after"), timeout=5)
    release.release()
    assert pending.result().text == "after"
    assert system.cell("w").incarnation == 1  # a hang is not a crash
    assert "released" in repr(release)


def test_hang_as_a_context_manager_and_release_all(system):
    with hang(system, "w") as release:
        release.wait_hung()
    assert release.released
    other = hang(system, "w")
    other.wait_hung()
    assert release_all(system) == 1
    assert system.ask("w", Ping()).incarnation == 1
    assert release_all(system) == 0


def test_wait_hung_fails_when_the_agent_never_gets_there(system):
    blocker = hang(system, "w")
    second = hang(system, "w")  # queued behind the first
    with pytest.raises(AssertionError, match="did not reach the injected hang"):
        second.wait_hung(timeout=0.01)
    assert "queued" in repr(second)
    release_all(system)
    assert blocker.released and second.released
