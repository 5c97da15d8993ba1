"""Agents, refs and asks: SEMANTICS.md sections 1-3."""

from __future__ import annotations

import pytest

from vibe_actors import (
    Agent,
    AgentCrashedError,
    AskError,
    DeadlineExceeded,
    DeadlineExceededError,
    Message,
    Ping,
    Pong,
    UnavailableError,
    UnknownMessageError,
    WorkerSpec,
    handler,
)

from tests.conftest import wait_until, worker
from tests.vibe_actors.agents import (
    Add,
    Block,
    Boom,
    Echo,
    Echoed,
    GetTotal,
    Nope,
    Refused,
    Total,
    Unknown,
)


def test_ask_returns_the_handler_reply(make_system):
    system = make_system([worker("w")])
    assert system.ask("w", Echo(text="hi")) == Echoed(text="hi", by="w", incarnation=1)


def test_every_agent_answers_ping_with_pong(make_system):
    system = make_system([worker("w")])
    assert system.ask("w", Ping()) == Pong(agent="w", incarnation=1)


def test_messages_from_one_sender_arrive_in_order(make_system):
    system = make_system([worker("w")])
    ref = system.ref("w")
    for n in range(1, 501):
        ref.tell(Add(n=n))
    assert ref.ask(GetTotal()) == Total(total=sum(range(1, 501)))


def test_pipelined_asks_all_resolve_in_order(make_system):
    system = make_system([worker("w")])
    ref = system.ref("w")
    futures = [ref.ask_future(Add(n=1)) for _ in range(1000)]
    assert [f.result().total for f in futures] == list(range(1, 1001))


def test_agent_error_reply_raises_ask_error_carrying_the_reply(make_system):
    system = make_system([worker("w")])
    with pytest.raises(AskError) as info:
        system.ask("w", Nope())
    assert type(info.value) is AskError
    assert info.value.reply == Refused(detail="no")
    assert system.ref("w").ask_future(Nope()).wait() == Refused(detail="no")


def test_unknown_message_type_is_an_error_reply_not_a_crash(make_system):
    system = make_system([worker("w")])
    with pytest.raises(UnknownMessageError):
        system.ask("w", Unknown())
    assert system.ask("w", Ping()).incarnation == 1
    assert system.dead_letters.counts()["unhandled"] == 1


def test_ask_to_unknown_agent_is_unavailable_at_once(make_system):
    system = make_system([worker("w")])
    with pytest.raises(UnavailableError):
        system.ask("nobody", Ping(), timeout=30)
    assert system.dead_letters.counts()["unknown_agent"] == 1


def test_failing_ask_gets_agent_crashed_and_the_agent_restarts(make_system):
    system = make_system([worker("w")])
    with pytest.raises(AgentCrashedError) as info:
        system.ask("w", Boom(why="kaput"))
    assert "kaput" in info.value.reply.error
    assert system.ask("w", Ping()).incarnation == 2


def test_failing_tell_crashes_like_a_failing_ask(make_system):
    system = make_system([worker("w")])
    system.tell("w", Boom())
    assert system.ask("w", Ping()).incarnation == 2


def test_ask_times_out_with_deadline_exceeded(make_system, journal):
    system = make_system([worker("w", journal)])
    system.tell("w", Block())
    assert journal.entered.wait(5)
    with pytest.raises(DeadlineExceededError) as info:
        system.ask("w", Ping(), timeout=0.05)
    assert info.value.reply == DeadlineExceeded(agent="w", timeout=0.05)


def test_ask_whose_deadline_passed_in_the_mailbox_is_not_executed(make_system, journal):
    system = make_system([worker("w", journal)])
    system.tell("w", Block())
    assert journal.entered.wait(5)
    late = system.ref("w").ask_future(Add(n=100), timeout=0.05)
    assert isinstance(late.wait(), DeadlineExceeded)
    journal.gate.set()
    # The Add expired before its handler started: the total never saw it.
    assert system.ask("w", GetTotal()) == Total(total=0)
    assert system.dead_letters.counts()["expired"] == 1


class Hold(Message):
    pass


class Release(Message):
    pass


class Batcher(Agent):
    """Defers replies to Hold until a Release arrives (group commit in miniature)."""

    def on_start(self) -> None:
        self.held = []

    @handler
    def hold(self, msg: Hold) -> None:
        self.held.append(self.defer())

    @handler
    def release(self, msg: Release) -> Total:
        for number, deferred in enumerate(self.held, 1):
            deferred.resolve(Total(total=number))
        count, self.held = len(self.held), []
        return Total(total=count)


def test_deferred_replies_resolve_later(make_system):
    system = make_system([WorkerSpec(name="b", agent=Batcher)])
    ref = system.ref("b")
    held = [ref.ask_future(Hold()) for _ in range(3)]
    assert ref.ask(Release()) == Total(total=3)
    assert [f.result() for f in held] == [Total(total=1), Total(total=2), Total(total=3)]


def test_defer_outside_a_handler_raises(make_system):
    system = make_system([WorkerSpec(name="b", agent=Batcher)])
    with pytest.raises(RuntimeError, match="only valid inside a handler"):
        Batcher.defer(system.cell("b").agent)


def test_handler_annotation_errors_are_reported_at_class_creation():
    with pytest.raises(TypeError, match="one annotated message parameter"):

        class NoAnnotation(Agent):
            @handler
            def bad(self, msg):  # type: ignore[no-untyped-def]
                return None

    with pytest.raises(TypeError, match="is not a message class"):

        class NotAClass(Agent):
            @handler
            def bad(self, msg: list[int]) -> None:
                return None


def test_union_annotation_handles_each_member(make_system):
    class Either(Agent):
        @handler
        def both(self, msg: Add | Echo) -> Total:
            return Total(total=1)

    assert set(Either.message_types()) >= {Add, Echo, Ping}
    system = make_system([WorkerSpec(name="e", agent=Either)])
    assert system.ask("e", Echo(text="x")) == system.ask("e", Add(n=1)) == Total(total=1)


class Sulky(Agent):
    """Degrades in on_start when its config says so, or later on Degrade."""

    def on_start(self) -> None:
        if self.config == "degrade":
            self.degrade("its disk is gone")

    @handler
    def echo(self, msg: Echo) -> Echoed:
        return Echoed(text=msg.text, by=self.name, incarnation=self.incarnation)

    @handler
    def nope(self, msg: Nope) -> None:
        self.degrade("asked to")


def test_a_degraded_agent_answers_unavailable_but_ping_and_shows_why(make_system):
    system = make_system([WorkerSpec(name="s", agent=Sulky, config="degrade"), worker("w")])
    with pytest.raises(UnavailableError) as raised:
        system.ask("s", Echo(text="hi"))
    assert (raised.value.reply.agent, raised.value.reply.reason) == ("s", "its disk is gone")
    assert system.ask("s", Ping()) == Pong(agent="s", incarnation=1)
    nodes = {node.name: node for node in system.walk()}
    assert (nodes["s"].status, nodes["s"].degraded) == ("running", "its disk is gone")
    assert nodes["w"].degraded is None
    assert system.ask("w", Echo(text="hi")).by == "w"  # the rest of the system serves
    value = system.registry.get_sample_value("vibe_agents", {"state": "degraded"})
    assert value == 1


def test_degrade_in_a_handler_applies_from_the_next_message_and_a_restart_clears_it(make_system):
    system = make_system([WorkerSpec(name="s", agent=Sulky)])
    assert system.ask("s", Echo(text="a")).text == "a"
    system.tell("s", Nope())
    with pytest.raises(UnavailableError):
        system.ask("s", Echo(text="b"))
    system.inject_fault("s", "crash")
    wait_until(lambda: system.cell("s").incarnation == 2 and system.status("s") == "running")
    assert system.ask("s", Echo(text="c")).incarnation == 2
    assert system.tree().children[0].degraded is None
