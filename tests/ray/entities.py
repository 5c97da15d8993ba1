"""Entities the Ray placement tests host: memory state, crashes, hooks written to a journal.

The hooks run in Ray's worker processes; they append to a file (``Config.journal``)
so that the tests can read what ran where.
"""

from __future__ import annotations

import os
from typing import ClassVar

import msgspec

from vibe_actors import Entity, ErrorReply, Message, handler


class WalletConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    #: A file the hooks append ``<hook> <id> <pid>`` lines to ("" for none).
    journal: str = ""
    limit: int = 1_000_000


class WalletState(msgspec.Struct):
    balance: int = 0


class Deposit(Message):
    amount: int


class Balance(Message):
    id: str
    balance: int
    pid: int


class Overdrawn(ErrorReply):
    limit: int
    http_status: ClassVar[int] = 409


class Peek(Message):
    """Ask for the balance."""


class Explode(Message):
    """The handler raises: this entity crashes."""


class Vanish(Message):
    """The handler ends its process at once: the shard's Ray actor dies."""


class Rest(Message):
    """The entity passivates itself after this message."""


class Remote(Message):
    """The handler uses what an entity on Ray does not have (``what``)."""

    what: str


class Wallet(Entity[WalletState]):
    """A balance in memory: lost (back to 0) when the entity passivates."""

    Config = WalletConfig

    def on_activate(self) -> None:
        self._journal("activate")
        if self.id == "cursed":
            raise RuntimeError("cursed wallets never open")

    def on_passivate(self) -> None:
        self._journal("passivate")
        if self.id == "grumpy":
            raise RuntimeError("grumpy wallets complain on the way out")

    def _journal(self, hook: str) -> None:
        path = self.config.journal
        if path:
            with open(path, "a", encoding="utf-8") as journal:
                journal.write(f"{hook} {self.id} {os.getpid()}\n")

    def _balance(self) -> Balance:
        return Balance(id=self.id, balance=self.state.balance, pid=os.getpid())

    @handler
    def deposit(self, msg: Deposit) -> Balance | Overdrawn:
        if self.state.balance + msg.amount > self.config.limit:
            return Overdrawn(limit=self.config.limit)
        self.state.balance += msg.amount
        return self._balance()

    @handler
    def peek(self, msg: Peek) -> Balance:
        return self._balance()

    @handler
    def explode(self, msg: Explode) -> Balance:
        raise RuntimeError(f"wallet {self.id} exploded")

    @handler
    def vanish(self, msg: Vanish) -> Balance:
        os._exit(1)

    @handler
    def rest(self, msg: Rest) -> Balance:
        self.passivate()
        return self._balance()

    @handler
    def remote(self, msg: Remote) -> Balance:
        if msg.what == "timer":
            self.start_timer("t", Peek(), 1.0)
        elif msg.what == "ref":
            self.ref("somebody")
        elif msg.what == "caller":
            return Balance(id=str(self.caller), balance=0, pid=0)
        return self._balance()
