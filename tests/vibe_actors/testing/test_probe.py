"""TestProbe: records every message, answers asks by rule, survives its own restart."""

from __future__ import annotations

import pytest

from vibe_actors import AgentCrashedError, Ping, Terminated, UnknownAgent
from vibe_actors.testing import ProbeAgent, add_probe, crash, probe_spec, probes

from tests.conftest import wait_until, worker
from tests.vibe_actors.agents import Echo, Echoed, StopSelf, Tick, Unknown


@pytest.fixture
def system(make_system, journal):
    return make_system([probe_spec("p"), worker("w", journal)])


def test_expect_returns_the_message_whatever_its_type(system):
    probe = probes(system)["p"]
    system.tell("p", Unknown())
    system.tell("p", Echo(text="hi"))
    assert probe.expect(Unknown) == Unknown()
    assert probe.expect(Echo(text="hi")).text == "hi"  # by value
    assert probe.received == [Unknown(), Echo(text="hi")]


def test_a_mismatch_lists_what_arrived(system):
    probe = probes(system)["p"]
    system.tell("p", Tick())
    system.tell("p", Echo(text="a"))
    with pytest.raises(AssertionError, match=r"expected Echo, got Tick\(n=0\)") as info:
        probe.expect(Echo)
    assert "Echo(text='a')" in str(info.value)
    with pytest.raises(AssertionError, match="expected Echo matching"):
        probe.expect(Echo, where=lambda m: m.text == "b")


def test_a_timeout_says_nothing_arrived(system):
    probe = probes(system)["p"]
    with pytest.raises(AssertionError, match=r"expected Echo within 0.01s; nothing arrived"):
        probe.expect(Echo, timeout=0.01)


def test_expect_no_message(system):
    probe = probes(system)["p"]
    probe.expect_no_message(within=0.01)
    system.tell("p", Tick())
    with pytest.raises(AssertionError, match=r"expected no message within 0.5s, got Tick"):
        probe.expect_no_message(within=0.5)


def test_fish_skips_to_the_first_match(system):
    probe = probes(system)["p"]
    for text in ("a", "b", "c"):
        system.tell("p", Echo(text=text))
    assert probe.fish(Echo, where=lambda m: m.text == "b").text == "b"
    assert probe.expect(Echo).text == "c"


def test_reply_with_a_value_or_a_function(system):
    probe = probes(system)["p"]
    probe.reply_with(Echo, lambda m: Echoed(text=m.text.upper(), by="p", incarnation=0))
    probe.reply_with(Tick, Echoed(text="tock", by="p", incarnation=0))
    assert system.ask("p", Echo(text="hi")).text == "HI"
    assert system.ask("p", Tick()).text == "tock"
    assert system.ask("p", Unknown()) is None  # no rule: None
    assert system.ask("p", Ping()).agent == "p"  # Ping is answered, not recorded
    assert [type(m) for m in probe.received] == [Echo, Tick, Unknown]


def test_a_failing_reply_function_crashes_the_probe_and_keeps_the_record(system):
    probe = probes(system)["p"]
    probe.reply_with(Echo, lambda m: 1 / 0)
    with pytest.raises(AgentCrashedError, match="ZeroDivisionError"):
        system.ask("p", Echo(text="x"))
    wait_until(lambda: system.cell("p").incarnation == 2 and system.status("p") == "running")
    system.tell("p", Tick())
    assert probe.expect(Echo) and probe.expect(Tick)  # one record across incarnations


def test_the_probe_records_the_sender(system):
    probe = probes(system)["p"]
    assert probe.last_sender is None
    system.ref("p", sender="w").tell(Tick())
    probe.expect(Tick)
    assert probe.last_sender == "w"
    probe.tell("p", Tick(n=1))  # sent as the probe itself
    probe.expect(Tick(n=1))
    assert probe.last_sender == "p"


def test_watch_delivers_terminated(system, journal):
    probe = probes(system)["p"]
    probe.watch("w")
    system.tell("w", StopSelf())  # permanent: restarted, not terminated
    probe.expect_no_message(within=0.05)
    probe.watch("nobody")
    assert probe.expect(Terminated).agent == "nobody"


def test_probes_lookup_and_add_probe(system):
    assert list(probes(system)) == ["p"]
    assert len(probes(system)) == 1
    with pytest.raises(KeyError, match=r"no probe named 'w'.*\['p'\]"):
        probes(system)["w"]
    with pytest.raises(KeyError, match="no probe named 'zz'"):
        probes(system)["zz"]
    second = add_probe(system, "p2")
    assert system.agent_class("p2") is ProbeAgent
    system.tell("p2", Tick())
    second.expect(Tick)
    assert second.ref.ask(Ping()).agent == "p2"
    with pytest.raises(ValueError, match="duplicate"):
        add_probe(system, "p2")


def test_crash_of_a_probe_keeps_what_it_received(system):
    probe = probes(system)["p"]
    system.tell("p", Tick())
    crash(system, "p")
    wait_until(lambda: system.cell("p").incarnation == 2 and system.status("p") == "running")
    assert probe.received == [Tick()]
    with pytest.raises(UnknownAgent):
        crash(system, "nobody")
