"""Mistakes in defining or using an agent are clear errors where they are made.

Two handlers for one type and a handler for something that cannot be a
message: ``TypeError`` when the class is created. Constructing an agent
yourself: ``TypeError`` naming what to do. Sending before the system's start:
:class:`SystemNotRunning`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from vibe_actors import (
    Agent,
    ErrorReply,
    Message,
    Ping,
    Pong,
    SystemNotRunning,
    UnavailableError,
    WorkerSpec,
    handler,
)


class Put(Message):
    key: str


class Stored(Message):
    pass


class _Tick(msgspec.Struct, frozen=True):
    """A private Struct an agent sends itself: a legitimate message type."""


class _Poke:
    """A plain private class (as the runtime's own signals are): legitimate too."""


# -- two handlers for one message type ----------------------------------------------


def test_two_handlers_for_one_type_in_one_class_is_a_type_error():
    with pytest.raises(TypeError, match=r"Twice has two handlers for Put: put and store"):

        class Twice(Agent):
            @handler
            def put(self, msg: Put) -> Stored:
                return Stored()

            @handler
            def store(self, msg: Put) -> Stored:
                return Stored()


def test_a_union_overlapping_another_handler_is_a_type_error():
    with pytest.raises(TypeError, match="two handlers for Put"):

        class Overlap(Agent):
            @handler
            def put(self, msg: Put) -> Stored:
                return Stored()

            @handler
            def either(self, msg: Put | Ping) -> Stored:
                return Stored()


def test_a_subclass_handler_overrides_its_base_class_handler():
    class Base(Agent):
        @handler
        def put(self, msg: Put) -> Stored:
            return Stored()

    class Derived(Base):
        @handler
        def store(self, msg: Put) -> Stored:
            return Stored()

    assert Derived.handler_for(Put) is Derived.__dict__["store"]
    assert Derived.handler_for(Ping) is Agent.__dict__["_ping"]  # the base's own Ping


# -- handler annotations that cannot be a message type -----------------------------------


@pytest.mark.parametrize(
    ("annotation", "why"),
    [
        (str, "is not a message class"),
        (dict, "is not a message class"),
        (object, "is not a message class"),
        (Any, "is not a message class"),
        (Message, "is a base class"),
        (ErrorReply, "is a base class"),
        (msgspec.Struct, "is a base class"),
    ],
)
def test_a_handler_for_a_non_message_type_is_a_type_error(annotation: Any, why: str):
    def bad(self: Agent, msg: Any) -> None:
        return None

    bad.__annotations__ = {"msg": annotation, "return": None}
    with pytest.raises(TypeError, match=f"Wrong.bad: .* {why}"):
        type("Wrong", (Agent,), {"bad": handler(bad)})


def test_private_structs_and_classes_for_messages_to_self_are_accepted():
    class SelfTalk(Agent):
        @handler
        def tick(self, msg: _Tick) -> None:
            return None

        @handler
        def poke(self, msg: _Poke) -> None:
            return None

    assert {_Tick, _Poke} <= set(SelfTalk.handler_table())
    assert set(SelfTalk.message_types()) == {Ping}  # private types stay out of the protocol


# -- constructing an agent ------------------------------------------------------------------


class Store(Agent):
    @handler
    def put(self, msg: Put) -> Stored:
        return Stored()


@pytest.mark.parametrize("agent_class", [Agent, Store])
def test_constructing_an_agent_directly_says_how_agents_are_made(agent_class: type[Agent]):
    with pytest.raises(TypeError, match="agents are created by the runtime: put a WorkerSpec"):
        agent_class()


# -- sending before the start ------------------------------------------------------------------


def test_sends_before_start_raise_system_not_running(make_system):
    system = make_system([WorkerSpec(name="store", agent=Store)], start=False)
    ref = system.ref("store")
    with pytest.raises(SystemNotRunning, match=r"'store'.*call ActorSystem.start\(\)"):
        ref.ask(Put(key="k"), timeout=5)
    with pytest.raises(SystemNotRunning):
        system.ask("store", Put(key="k"), timeout=5)
    with pytest.raises(SystemNotRunning):
        ref.ask_future(Put(key="k"), timeout=5)
    with pytest.raises(SystemNotRunning):
        ref.tell(Put(key="k"))
    with pytest.raises(SystemNotRunning):
        asyncio.run(ref.ask_async(Put(key="k"), timeout=5))
    assert not system.started
    system.start()
    assert system.started
    assert ref.ask(Put(key="k"), timeout=5) == Stored()
    assert system.ask("store", Ping(), timeout=5) == Pong(agent="store", incarnation=1)


def test_after_start_an_unknown_name_is_still_unavailable_not_an_error(make_system):
    system = make_system([WorkerSpec(name="store", agent=Store)])
    with pytest.raises(UnavailableError):
        system.ask("nobody", Ping(), timeout=5)
    system.tell("nobody", Ping())  # a dead letter, as before
    system.shutdown(timeout=5)
    system.tell("nobody", Ping())  # after shutdown too: never raises
    with pytest.raises(UnavailableError):
        system.ask("store", Ping(), timeout=5)
