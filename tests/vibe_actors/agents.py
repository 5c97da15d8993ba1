"""Agents and messages shared by the runtime tests.

Message types live in an importable module (never a test function) so that
``serialize_messages`` can round-trip them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from vibe_actors import Agent, ErrorReply, Message, handler


class Echo(Message):
    text: str


class Echoed(Message):
    text: str
    by: str
    incarnation: int


class Boom(Message):
    why: str = "boom"


class Block(Message):
    """Blocks the handler until the test's gate opens (see Journal.gate)."""


class Add(Message):
    n: int
    key: str = ""


class Total(Message):
    total: int


class GetTotal(Message):
    pass


class Refused(ErrorReply):
    pass


class Nope(Message):
    pass


class StopSelf(Message):
    pass


class Tick(Message):
    n: int = 0


class Unknown(Message):
    pass


@dataclass
class Journal:
    """Thread-safe record of lifecycle events, shared by the agents of one test."""

    events: list[tuple[str, str, int]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    gate: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)
    fail_start: set[str] = field(default_factory=set)

    def add(self, kind: str, name: str, incarnation: int) -> None:
        with self.changed:
            self.events.append((kind, name, incarnation))
            self.changed.notify_all()

    def of(self, kind: str) -> list[str]:
        with self.changed:
            return [name for k, name, _ in self.events if k == kind]

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: predicate(self), timeout):
                raise AssertionError(f"timed out waiting; events so far: {self.events}")

    def clear(self) -> None:
        with self.changed:
            self.events.clear()


class Worker(Agent):
    """Echoes, counts, crashes and blocks on request; journals its lifecycle."""

    def on_start(self) -> None:
        journal: Journal | None = self.config
        self.total = 0
        if journal is not None:
            if self.name in journal.fail_start:
                raise RuntimeError(f"{self.name} refuses to start")
            journal.add("start", self.name, self.incarnation)

    def on_stop(self) -> None:
        if self.config is not None:
            self.config.add("stop", self.name, self.incarnation)

    def on_failure(self, error: BaseException) -> None:
        if self.config is not None:
            self.config.add("failure", self.name, self.incarnation)

    @handler
    def echo(self, msg: Echo) -> Echoed:
        return Echoed(text=msg.text, by=self.name, incarnation=self.incarnation)

    @handler
    def boom(self, msg: Boom) -> None:
        raise RuntimeError(msg.why)

    @handler
    def block(self, msg: Block) -> Total:
        self.config.entered.set()
        self.config.gate.wait(30)
        return Total(total=self.total)

    @handler
    def add(self, msg: Add) -> Total:
        self.total += msg.n
        return Total(total=self.total)

    @handler
    def get_total(self, msg: GetTotal) -> Total:
        return Total(total=self.total)

    @handler
    def nope(self, msg: Nope) -> Refused:
        return Refused(detail="no")

    @handler
    def stop_self(self, msg: StopSelf) -> None:
        self.stop()


class Nap(Message):
    """Sleeps ``ms`` in the handler; touches ``marker`` (a file path) first, if given."""

    ms: int
    marker: str = ""


class Napper(Worker):
    @handler
    def nap(self, msg: Nap) -> Total:
        if msg.marker:
            with open(msg.marker, "w", encoding="utf-8") as handle:
                handle.write("napping")
        threading.Event().wait(msg.ms / 1000)
        return Total(total=msg.ms)
