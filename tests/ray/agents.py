"""Agents the Ray placement tests host: in-memory state, typed errors, crashes, a slow call."""

from __future__ import annotations

import os
import threading
from typing import Any, ClassVar

import msgspec

from vibe_actors import Agent, ErrorReply, Message, handler


class TallyConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    start: int = 0
    limit: int = 1_000_000


class Add(Message):
    amount: int


class Total(Message):
    value: int
    pid: int


class Read(Message):
    """Ask for the total."""


class OverLimit(ErrorReply):
    limit: int
    http_status: ClassVar[int] = 409


class Boom(Message):
    """The handler raises (a crash)."""


class Exit(Message):
    """The handler ends its process at once (``os._exit``): the Ray actor dies."""


class Sleep(Message):
    seconds: float


class Slept(Message):
    seconds: float


class Echo(Message):
    payload: Any


class Tally(Agent[Add | Read | Boom | Exit | Sleep | Echo]):
    """A running total in memory: lost (rebuilt from ``start``) on restart."""

    Config = TallyConfig

    def on_start(self) -> None:
        self.total = self.config.start

    @handler
    def add(self, msg: Add) -> Total | OverLimit:
        if self.total + msg.amount > self.config.limit:
            return OverLimit(limit=self.config.limit, detail="over the limit")
        self.total += msg.amount
        return Total(value=self.total, pid=os.getpid())

    @handler
    def read(self, msg: Read) -> Total:
        return Total(value=self.total, pid=os.getpid())

    @handler
    def boom(self, msg: Boom) -> None:
        raise RuntimeError("boom")

    @handler
    def exit(self, msg: Exit) -> None:
        os._exit(1)

    @handler
    def sleep(self, msg: Sleep) -> Slept:
        threading.Event().wait(msg.seconds)
        return Slept(seconds=msg.seconds)

    @handler
    def echo(self, msg: Echo) -> Echo:
        return msg


class UsesTimers(Agent):
    """Starts a timer in on_start: not available on Ray (a start failure)."""

    @handler
    def read(self, msg: Read) -> Total:
        return Total(value=0, pid=os.getpid())

    def on_start(self) -> None:
        self.start_timer("tick", Read(), 1.0)


class UsesCaller(Agent):
    """Decides by ``self.caller``: not available on Ray, where None would mean trusted code."""

    @handler
    def read(self, msg: Read) -> Total:
        trusted = self.caller is None
        return Total(value=int(trusted), pid=os.getpid())


class PlainA(msgspec.Struct, frozen=True):
    a: int


class PlainB(msgspec.Struct, frozen=True):
    b: int


class Ambiguous(Agent):
    """Replies with one of two untagged structs: msgpack cannot tell them apart."""

    @handler
    def read(self, msg: Read) -> PlainA | PlainB:
        return PlainA(a=1)
