"""Blocking asks that could never be answered are refused at the send (SelfAsk).

An agent's thread asking itself, or asking an agent blocked in an ask of it,
would wait until the deadline. ``Ref.ask`` raises :class:`SelfAsk` at once
instead. The outer asks here have a deadline far shorter than the inner ones,
so a missed detection fails the test by its own deadline, never by a hang.
"""

from __future__ import annotations

import threading
from typing import ClassVar

import pytest

from vibe_actors import (
    Agent,
    Message,
    Ping,
    Pong,
    SelfAsk,
    StartFailed,
    VibeError,
    WorkerSpec,
    handler,
)

OUTER = 5.0  # the test's asks
INNER = 60.0  # the agents' own asks: a deadlock would last this long


class AskMyself(Message):
    via_system: bool = False


class AskPeer(Message):
    peer: str


class AskBack(Message):
    asker: str


class Outcome(Message):
    text: str


def _outcome(error: SelfAsk) -> Outcome:
    return Outcome(text=f"{type(error).__name__}|{error.agent}|{error.via}|{error}")


class Narcissus(Agent):
    @handler
    def myself(self, msg: AskMyself) -> Outcome:
        ref = self.system.ref(self.name) if msg.via_system else self.ref(self.name)
        try:
            ref.ask(Ping(), timeout=INNER)
        except SelfAsk as error:
            return _outcome(error)
        return Outcome(text="answered")

    @handler
    def peer(self, msg: AskPeer) -> Outcome:
        reply = self.ref(msg.peer).ask(AskBack(asker=self.name), timeout=INNER)
        assert isinstance(reply, Outcome)
        return reply

    @handler
    def back(self, msg: AskBack) -> Outcome:
        try:
            self.ref(msg.asker).ask(Ping(), timeout=INNER)
        except SelfAsk as error:
            return _outcome(error)
        return Outcome(text="answered")


def test_an_agent_asking_itself_gets_self_ask_at_once(make_system):
    system = make_system([WorkerSpec(name="n", agent=Narcissus)])
    reply = system.ask("n", AskMyself(), timeout=OUTER)
    kind, agent, via, text = reply.text.split("|")
    assert (kind, agent, via) == ("SelfAsk", "n", "None")
    assert "asked itself" in text and "tell()" in text
    # system.ref(...) (no sender) from the agent's thread is the same mistake
    assert system.ask("n", AskMyself(via_system=True), timeout=OUTER).text.startswith("SelfAsk|n|")
    # nothing was sent, nothing crashed: the agent is still its first incarnation
    assert system.ask("n", Ping(), timeout=OUTER) == Pong(agent="n", incarnation=1)


def test_an_ask_cycle_of_two_agents_is_refused_at_once(make_system):
    system = make_system(
        [WorkerSpec(name="a", agent=Narcissus), WorkerSpec(name="b", agent=Narcissus)]
    )
    # a asks b; b's handler asks a, which is blocked waiting for b
    reply = system.ask("a", AskPeer(peer="b"), timeout=OUTER)
    kind, agent, via, text = reply.text.split("|")
    assert (kind, agent, via) == ("SelfAsk", "b", "a")
    assert "ask cycle" in text


def test_an_agent_may_ask_one_that_asked_it_before(make_system):
    """No false alarm: a's ask of b was answered, so b may ask a later."""
    system = make_system(
        [WorkerSpec(name="a", agent=Narcissus), WorkerSpec(name="b", agent=Narcissus)]
    )
    system.ask("b", AskBack(asker="a"), timeout=OUTER)  # b asks a: fine, a is idle
    assert system.ask("b", AskBack(asker="a"), timeout=OUTER) == Outcome(text="answered")


class Starter(Agent):
    def on_start(self) -> None:
        self.ref(self.name).ask(Ping(), timeout=INNER)


def test_asking_itself_in_on_start_is_a_start_failure_naming_self_ask(make_system):
    system = make_system([WorkerSpec(name="s", agent=Starter)], start=False, start_timeout=OUTER)
    with pytest.raises(StartFailed) as failed:
        system.start()
    assert isinstance(failed.value.__cause__, SelfAsk)
    assert isinstance(failed.value.__cause__, VibeError)


class Polite(Agent):
    """ask_future to itself does not block its thread: allowed."""

    pongs: ClassVar[list[Pong]] = []
    seen: ClassVar[threading.Event] = threading.Event()

    @handler
    def myself(self, msg: AskMyself) -> Outcome:
        def got(reply: object) -> None:
            assert isinstance(reply, Pong)
            self.pongs.append(reply)
            self.seen.set()

        self.ref(self.name).ask_future(Ping(), timeout=INNER, callback=got)
        return Outcome(text="sent")


def test_ask_future_to_itself_is_allowed(make_system):
    Polite.seen.clear()
    system = make_system([WorkerSpec(name="p", agent=Polite)])
    assert system.ask("p", AskMyself(), timeout=OUTER) == Outcome(text="sent")
    assert Polite.seen.wait(OUTER)
    assert Polite.pongs[-1] == Pong(agent="p", incarnation=1)


class Deferrer(Agent):
    """Defers a's ask to a timer thread, then asks a while a still waits: no deadlock,
    since another thread answers a (so no SelfAsk either)."""

    results: ClassVar[list[object]] = []
    done: ClassVar[threading.Event] = threading.Event()

    @handler
    def back(self, msg: AskBack) -> Outcome:
        deferred = self.defer()
        threading.Timer(0.05, deferred.resolve, [Outcome(text="from the timer")]).start()
        try:
            self.results.append(self.ref(msg.asker).ask(Ping(), timeout=INNER))
        except SelfAsk as error:
            self.results.append(error)
        self.done.set()
        return Outcome(text="deferred")


def test_a_deferred_reply_answered_elsewhere_is_no_cycle(make_system):
    Deferrer.done.clear()
    Deferrer.results.clear()
    system = make_system(
        [WorkerSpec(name="a", agent=Narcissus), WorkerSpec(name="d", agent=Deferrer)]
    )
    assert system.ask("a", AskPeer(peer="d"), timeout=OUTER) == Outcome(text="from the timer")
    assert Deferrer.done.wait(OUTER)
    assert Deferrer.results == [Pong(agent="a", incarnation=1)]
