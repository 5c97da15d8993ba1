"""Agents with Config structs, for the Phoenix tests (importable by wiring files)."""

from __future__ import annotations

import msgspec

from vibe_actors import Agent, Entity, Message, handler


class CounterConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    start: int = 0
    label: str = ""


class Bump(Message):
    by: int = 1


class Count(Message):
    value: int
    label: str


class Counter(Agent):
    """An in-memory counter: the state a live reload must keep when unchanged."""

    Config = CounterConfig

    def on_start(self) -> None:
        self.value = self.config.start

    @handler
    def bump(self, msg: Bump) -> Count:
        self.value += msg.by
        return Count(value=self.value, label=self.config.label)


class VisitState(msgspec.Struct):
    visits: int = 0


class Visit(Message):
    pass


class Visits(Message):
    visits: int


class VisitorConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    step: int = 1


class Visitor(Entity[VisitState]):
    """An entity kind for the wiring tests: counts visits per id."""

    Config = VisitorConfig

    @handler
    def visit(self, msg: Visit) -> Visits:
        self.state = VisitState(visits=self.state.visits + self.config.step)
        return Visits(visits=self.state.visits)
