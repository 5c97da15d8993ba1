"""Agents with Config structs, for the Phoenix tests (importable by wiring files)."""

from __future__ import annotations

import msgspec

from vibe_actors import Agent, Message, handler


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
