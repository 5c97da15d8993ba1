"""Embed a vibe_actors system in a plain script: one custom agent, supervised.

Run it from the repository's root with ``.venv/bin/python examples/embedded.py``
(``make run`` or ``make test`` creates ``.venv``; ``make run`` itself serves
wiring.yaml over HTTP and does not run this file).
"""

from __future__ import annotations

import structlog

import vibe_actors as va


class Deposit(va.Message):
    account: str
    amount: int


class Balance(va.Message):
    account: str


class Funds(va.Message):
    account: str
    amount: int


class Overdrawn(va.ErrorReply):
    account: str


class Bank(va.Agent):
    """Keeps balances in memory; a negative balance is refused with a typed error."""

    def on_start(self) -> None:
        self.balances: dict[str, int] = {}

    @va.handler
    def deposit(self, msg: Deposit) -> Funds | Overdrawn:
        new = self.balances.get(msg.account, 0) + msg.amount
        if new < 0:
            return Overdrawn(account=msg.account, detail=f"balance would be {new}")
        self.balances[msg.account] = new
        return Funds(account=msg.account, amount=new)

    @va.handler
    def balance(self, msg: Balance) -> Funds:
        if msg.account == "crash":
            raise RuntimeError("simulated bug")
        return Funds(account=msg.account, amount=self.balances.get(msg.account, 0))


def main() -> None:
    # A program is the edge: it configures logging once (the library only emits).
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback),
        ]
    )
    tree = va.SupervisorSpec(
        name="root",
        strategy=va.Strategy.ONE_FOR_ONE,
        intensity=3,
        period=5.0,
        children=(va.WorkerSpec(name="bank", agent=Bank),),
    )
    with va.ActorSystem(tree, va.SystemConfig(serialize_messages=True)) as system:
        bank = system.ref("bank")
        print(bank.ask(Deposit(account="alice", amount=100)))
        try:
            bank.ask(Deposit(account="alice", amount=-500))
        except va.AskError as exc:
            print("refused:", exc.reply)
        try:
            bank.ask(Balance(account="crash"))
        except va.AgentCrashedError as exc:
            print("crashed:", exc.reply.error)
        print("after restart:", bank.ask(va.Ping()), bank.ask(Balance(account="alice")))
        for node in system.walk():
            print(f"{node.name:6} {node.kind:10} {node.status:8} restarts={node.restarts}")


if __name__ == "__main__":
    main()
