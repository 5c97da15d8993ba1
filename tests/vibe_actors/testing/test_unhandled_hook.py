"""Agent.on_unhandled: the fallback handler for messages no @handler takes."""

from __future__ import annotations

from typing import Any

import pytest

from vibe_actors import (
    Agent,
    AgentCrashedError,
    DeadLetterReason,
    Message,
    Ping,
    UnavailableError,
    UnknownMessageError,
    WorkerSpec,
    handler,
)

from tests.conftest import wait_until
from tests.vibe_actors.agents import Echo, Tick


class Wrapped(Message):
    inner: str


class Proxy(Agent):
    @handler
    def echo(self, msg: Echo) -> Wrapped:
        return Wrapped(inner=f"handled {msg.text}")

    def on_unhandled(self, message: Any) -> Any:
        if isinstance(message, Tick) and message.n < 0:
            raise ValueError("negative tick")
        if isinstance(message, Tick) and message.n == 99:
            self.degrade("tired")
        return Wrapped(inner=f"fallback {type(message).__name__}")


class Plain(Agent):
    pass


def test_the_fallback_takes_what_no_handler_takes(make_system):
    system = make_system([WorkerSpec(name="x", agent=Proxy)])
    assert system.ask("x", Echo(text="a")).inner == "handled a"
    assert system.ask("x", Tick()).inner == "fallback Tick"
    assert system.ask("x", Ping()).agent == "x"  # Ping keeps its handler
    assert Proxy.message_types() == (Ping, Echo)  # the protocol: the declared handlers


def test_a_fallback_that_raises_crashes_the_agent(make_system):
    system = make_system([WorkerSpec(name="x", agent=Proxy)])
    with pytest.raises(AgentCrashedError, match="negative tick"):
        system.ask("x", Tick(n=-1))
    wait_until(lambda: system.cell("x").incarnation == 2 and system.status("x") == "running")


def test_degrade_replaces_the_fallback(make_system):
    system = make_system([WorkerSpec(name="x", agent=Proxy)])
    system.ask("x", Tick(n=99))
    with pytest.raises(UnavailableError, match="tired"):
        system.ask("x", Tick())


def test_without_an_override_unknown_messages_are_refused(make_system):
    system = make_system([WorkerSpec(name="x", agent=Plain)])
    with pytest.raises(UnknownMessageError):
        system.ask("x", Tick())
    assert system.dead_letters.recent()[-1].reason is DeadLetterReason.UNHANDLED
