"""The agents benchmarks/ray_placement.py places on Ray (importable by Ray's workers)."""

from __future__ import annotations

import msgspec

from vibe_actors import Agent, Entity, Message, handler

__all__ = ["Burn", "Burned", "Count", "Counter", "CounterEntity", "Inc", "RawCounter"]


class Inc(Message):
    """Add one."""


class Count(Message):
    value: int


class Burn(Message):
    """CPU-bound work: ``rounds`` iterations of integer arithmetic."""

    rounds: int


class Burned(Message):
    result: int


def burn(rounds: int) -> int:
    total = 0
    for i in range(rounds):
        total = (total + i * i) % 1_000_003
    return total


class Counter(Agent[Inc | Burn]):
    """A counter, and a CPU burner for the scaling measure."""

    def on_start(self) -> None:
        self.value = 0

    @handler
    def inc(self, msg: Inc) -> Count:
        self.value += 1
        return Count(value=self.value)

    @handler
    def burn(self, msg: Burn) -> Burned:
        return Burned(result=burn(msg.rounds))


class CounterState(msgspec.Struct):
    value: int = 0


class CounterEntity(Entity[CounterState]):
    """The same counter as an entity (a kind placed on Ray: its shard's Ray actor holds it)."""

    @handler
    def inc(self, msg: Inc) -> Count:
        self.state.value += 1
        return Count(value=self.state.value)


class RawCounter:
    """The same counter as a plain Ray actor class (the raw-Ray baseline)."""

    def __init__(self) -> None:
        self.value = 0

    def inc(self) -> int:
        self.value += 1
        return self.value

    def inc_message(self, msg: Inc) -> Count:
        """The same call carrying our message and reply Structs, pickled by Ray."""
        self.value += 1
        return Count(value=self.value)

    def burn(self, rounds: int) -> int:
        return burn(rounds)
