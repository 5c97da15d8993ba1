"""Deferred replies when their incarnation ends first (SEMANTICS.md section 3).

An ask answered later through ``defer()`` is answered by the runtime when the
incarnation that deferred it ends: ``AgentCrashed`` after a crash (once
``on_failure`` returned), when it is replaced as hung or abandoned;
``Unavailable`` (reason ``stopped``) after a graceful stop (once ``on_stop``
returned). Every wait here is far shorter than the asks' own deadline (60 s):
an answer comes from the end of the incarnation, never from a timeout.
"""

from __future__ import annotations

import threading
from typing import ClassVar

from vibe_actors import (
    Agent,
    AgentCrashed,
    Deferred,
    Message,
    RestartType,
    Unavailable,
    WorkerSpec,
    handler,
)

from tests.conftest import wait_until

ASK_TIMEOUT = 60.0  # the asks' deadline: far beyond every wait below
WAIT = 5.0


class Hold(Message):
    pass


class Held(Message):
    count: int


class Explode(Message):
    pass


class Stall(Message):
    pass


class Leave(Message):
    pass


class Answer(Message):
    text: str


class Keeper(Agent):
    """Defers every Hold and never answers it by itself."""

    #: Every handle it ever deferred (the test resolves some after the end).
    handles: ClassVar[list[Deferred]] = []
    #: Set by a test to let a stalled handler return.
    gate: ClassVar[threading.Event] = threading.Event()

    def on_start(self) -> None:
        self.count = 0

    @handler
    def hold(self, msg: Hold) -> Held:
        self.handles.append(self.defer())
        self.count += 1
        return Held(count=self.count)  # not sent: the reply was deferred

    @handler
    def explode(self, msg: Explode) -> None:
        raise RuntimeError("boom on another message")

    @handler
    def stall(self, msg: Stall) -> Answer:
        self.gate.wait(30)
        return Answer(text="late")

    @handler
    def leave(self, msg: Leave) -> None:
        self.stop()


class Settler(Keeper):
    """Answers its deferred asks itself in on_failure and on_stop."""

    def on_failure(self, error: BaseException) -> None:
        for deferred in self.handles:
            deferred.resolve(Answer(text="from on_failure"))

    def on_stop(self) -> None:
        for deferred in self.handles:
            deferred.resolve(Answer(text="from on_stop"))


def _spec(name: str, agent: type[Agent] = Keeper, **kwargs: object) -> WorkerSpec:
    return WorkerSpec(name=name, agent=agent, **kwargs)  # type: ignore[arg-type]


def _deferred_asks(system, name: str, n: int = 3) -> list:
    Keeper.handles.clear()
    ref = system.ref(name)
    futures = [ref.ask_future(Hold(), timeout=ASK_TIMEOUT) for _ in range(n)]
    wait_until(lambda: len(Keeper.handles) == n, WAIT, "the asks deferred")
    return futures


def _wait_stalled(system, name: str) -> None:
    cell = system.cell(name)

    def stalled() -> bool:
        host = cell.host
        env = None if host is None else host.current
        return env is not None and isinstance(env.message, Stall)

    wait_until(stalled, WAIT, "the stalled handler")


def test_a_crash_on_another_message_answers_the_deferred_asks_at_once(make_system):
    system = make_system([_spec("k")])
    futures = _deferred_asks(system, "k")
    system.tell("k", Explode())
    for future in futures:
        reply = future.wait(WAIT)
        assert isinstance(reply, AgentCrashed), reply
        assert "boom on another message" in reply.error
    wait_until(lambda: system.cell("k").incarnation == 2, WAIT, "the restart")


def test_a_deferred_reply_given_after_the_end_is_discarded(make_system):
    system = make_system([_spec("k")])
    (future,) = _deferred_asks(system, "k", 1)
    system.tell("k", Explode())
    assert isinstance(future.wait(WAIT), AgentCrashed)
    Keeper.handles[0].resolve(Answer(text="too late"))  # from the test's thread: ignored
    Keeper.handles[0].resolve(Answer(text="again"))
    assert isinstance(future.wait(0), AgentCrashed)


def test_a_graceful_stop_answers_the_deferred_asks_unavailable_stopped(make_system):
    system = make_system([_spec("k", restart=RestartType.TRANSIENT)])
    futures = _deferred_asks(system, "k")
    system.tell("k", Leave())
    for future in futures:
        assert future.wait(WAIT) == Unavailable(agent="k", reason="stopped")


def test_shutdown_answers_the_deferred_asks(make_system):
    system = make_system([_spec("k")])
    futures = _deferred_asks(system, "k")
    system.shutdown(timeout=WAIT)
    for future in futures:
        assert future.wait(WAIT) == Unavailable(agent="k", reason="stopped")


def test_on_failure_and_on_stop_answer_first(make_system):
    system = make_system([_spec("crashy", Settler), _spec("stoppy", Settler)])
    crashed = _deferred_asks(system, "crashy", 2)
    system.tell("crashy", Explode())
    assert [f.wait(WAIT) for f in crashed] == [Answer(text="from on_failure")] * 2
    stopped = _deferred_asks(system, "stoppy", 2)
    system.shutdown(timeout=WAIT)
    assert [f.wait(WAIT) for f in stopped] == [Answer(text="from on_stop")] * 2


def test_an_agent_replaced_as_hung_answers_its_deferred_asks(make_system):
    Keeper.gate.clear()
    system = make_system([_spec("k")])
    try:
        futures = _deferred_asks(system, "k")
        stalled = system.ref("k").ask_future(Stall(), timeout=ASK_TIMEOUT)
        _wait_stalled(system, "k")
        assert system.replace_hung("k", "test: declared hung") is not None
        assert isinstance(stalled.wait(WAIT), AgentCrashed)
        for future in futures:
            reply = future.wait(WAIT)
            assert isinstance(reply, AgentCrashed), reply
            assert "hung" in reply.error
    finally:
        Keeper.gate.set()


def test_an_abandoned_incarnation_answers_its_asks_at_once(make_system):
    Keeper.gate.clear()
    system = make_system([_spec("k", shutdown=0.1)], leak_ok=True)
    try:
        futures = _deferred_asks(system, "k")
        stalled = system.ref("k").ask_future(Stall(), timeout=ASK_TIMEOUT)
        _wait_stalled(system, "k")
        assert system.shutdown(timeout=WAIT) is False  # abandoned after 0.1 s
        for future in [stalled, *futures]:
            reply = future.wait(WAIT)
            assert isinstance(reply, AgentCrashed), reply
            assert "abandoned" in reply.error
    finally:
        Keeper.gate.set()


def test_resolved_handles_are_not_held(make_system):
    system = make_system([_spec("k")])
    futures = _deferred_asks(system, "k")
    host = system.cell("k").host
    assert host is not None and len(host.deferred) == 3
    for number, deferred in enumerate(Keeper.handles):
        deferred.resolve(Held(count=number))
    assert [f.wait(WAIT) for f in futures] == [Held(count=n) for n in range(3)]
    assert not host.deferred
    system.tell("k", Explode())  # nothing owed: the crash answers nobody twice
    wait_until(lambda: system.cell("k").incarnation == 2, WAIT, "the restart")
    assert [f.wait(0) for f in futures] == [Held(count=n) for n in range(3)]


def test_a_tell_that_defers_holds_nothing(make_system):
    system = make_system([_spec("k")])
    Keeper.handles.clear()
    system.tell("k", Hold())
    future = system.ref("k").ask_future(Hold(), timeout=ASK_TIMEOUT)
    wait_until(lambda: len(Keeper.handles) == 2, WAIT, "both handled")
    host = system.cell("k").host
    assert host is not None and len(host.deferred) == 1  # the ask's, not the tell's
    Keeper.handles[0].resolve(Answer(text="nobody asked"))  # a tell's handle: a no-op
    Keeper.handles[1].resolve(Answer(text="asked"))
    assert future.wait(WAIT) == Answer(text="asked")
