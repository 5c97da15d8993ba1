"""ask_async: the event loop keeps running while an ask is pending."""

from __future__ import annotations

import asyncio

import pytest

from vibe_actors import DeadlineExceededError, Ping, Pong

from tests.conftest import worker
from tests.vibe_actors.agents import Block, Total


def test_ask_async_does_not_block_the_loop(make_system, journal):
    system = make_system([worker("w", journal)])

    async def scenario() -> tuple[Total, int]:
        ticks = 0
        pending = asyncio.ensure_future(system.ref("w").ask_async(Block(), timeout=10))
        # The handler is blocked in its thread; the loop must keep running meanwhile.
        while not journal.entered.is_set():
            await asyncio.sleep(0.001)
        for _ in range(20):
            await asyncio.sleep(0)
            ticks += 1
        assert not pending.done()
        journal.gate.set()
        return await pending, ticks

    reply, ticks = asyncio.run(scenario())
    assert reply == Total(total=0)
    assert ticks == 20


def test_ask_async_deadline(make_system, journal):
    system = make_system([worker("w", journal)])

    async def scenario() -> None:
        system.tell("w", Block())
        with pytest.raises(DeadlineExceededError):
            await system.ask_async("w", Ping(), timeout=0.05)

    asyncio.run(scenario())


def test_many_concurrent_async_asks(make_system):
    system = make_system([worker("w")])

    async def scenario() -> list[Pong]:
        return await asyncio.gather(*(system.ask_async("w", Ping()) for _ in range(500)))

    assert all(p == Pong(agent="w", incarnation=1) for p in asyncio.run(scenario()))


def test_ask_async_works_under_uvloop(make_system):
    import uvloop

    system = make_system([worker("w")])
    assert uvloop.run(system.ask_async("w", Ping())) == Pong(agent="w", incarnation=1)
