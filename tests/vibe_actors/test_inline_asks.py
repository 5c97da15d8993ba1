"""Claimable mailboxes and asks answered in the asker's thread (SEMANTICS.md section 2).

Ray placement's proxies use this; here a local agent stands in for one, so the
ordering guarantee is checked without Ray: an ask answered inline must never
overtake an earlier message of its sender still on its way through the mailbox.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from vibe_actors import Agent, MailboxSpec, Message, Overflow, WorkerSpec, handler
from vibe_actors._envelope import Envelope
from vibe_actors._mailbox import Mailbox

from tests.conftest import wait_until
from tests.vibe_actors.agents import Add, GetTotal, Total

pytestmark = pytest.mark.timeout(30)


def _refused(envelope: Envelope, reason: Any) -> None:
    raise AssertionError(f"refused {envelope!r}: {reason}")


def _claimed(mailbox: Mailbox) -> bool:
    if mailbox.claim():
        mailbox.release()
        return True
    return False


@pytest.mark.parametrize("overflow", [None, Overflow.REJECT, Overflow.BLOCK])
def test_claim_only_while_the_consumer_waits_on_an_empty_queue(overflow: Any) -> None:
    spec = MailboxSpec() if overflow is None else MailboxSpec(capacity=4, overflow=overflow)
    mailbox = Mailbox("m", spec, _refused, claimable=True)
    assert not mailbox.claim()  # the consumer never waited yet

    mailbox.put(Envelope(Add(n=1)))
    assert not mailbox.claim()  # queued
    assert mailbox.get().message == Add(n=1)  # taken: the consumer is busy with it
    assert not mailbox.claim()

    taken: list[Any] = []
    consumer = threading.Thread(target=lambda: taken.append(mailbox.get()))
    consumer.start()
    wait_until(lambda: _claimed(mailbox), what="the consumer back, idle")

    mailbox.put(Envelope(Add(n=2)))
    consumer.join(5)
    assert taken[0].message == Add(n=2)
    assert not mailbox.claim()  # taken, not handled: no claim until it waits again


def test_a_system_put_also_ends_idleness() -> None:
    mailbox = Mailbox("m", MailboxSpec(), _refused, claimable=True)
    consumer = threading.Thread(target=mailbox.get)
    consumer.start()
    wait_until(lambda: _claimed(mailbox), what="the consumer idle")
    mailbox.put_system(Envelope(Add(n=1)))
    consumer.join(5)
    assert not mailbox.claim()


def test_puts_wait_for_the_claim_to_end() -> None:
    mailbox = Mailbox("m", MailboxSpec(), _refused, claimable=True)
    consumer = threading.Thread(target=mailbox.get)
    consumer.start()
    wait_until(mailbox.claim, what="a claim")  # held from here
    put_done = threading.Event()
    producer = threading.Thread(target=lambda: (mailbox.put(Envelope(Add(n=1))), put_done.set()))
    producer.start()
    consumer.join(5)  # the message itself is queued: the consumer may take it
    assert not put_done.is_set()  # but the put completes only after the claim
    mailbox.release()
    assert put_done.wait(5)
    producer.join(5)


def test_an_unclaimable_mailbox_has_no_claim() -> None:
    mailbox = Mailbox("m", MailboxSpec(), _refused)
    assert not mailbox.claimable
    with pytest.raises(AttributeError):
        mailbox.claim()


class KeyTotal(Message):
    """Ask for the total of ``key``."""

    key: str = ""


class InlineTally(Agent):
    """Counts Adds per key; answers GetTotal in the asker's thread when it may."""

    _answers_inline = True

    def on_start(self) -> None:
        self.totals: dict[str, int] = {}
        self.inline = 0
        self._cell.ask_inline = self._inline

    @handler
    def add(self, msg: Add) -> None:
        self.totals[msg.key] = self.totals.get(msg.key, 0) + msg.n

    @handler
    def get_total(self, msg: GetTotal) -> Total:
        return Total(total=sum(self.totals.values()))

    @handler
    def get_key(self, msg: KeyTotal) -> Total:
        return Total(total=self.totals.get(msg.key, 0))

    def _inline(self, env: Envelope) -> bool:
        if not isinstance(env.message, KeyTotal) or not self._cell.mailbox.claim():
            return False
        try:  # the consumer waits on an empty queue: its state is still
            self.inline += 1
            assert env.reply is not None
            env.reply.resolve(self.get_key(env.message))
        finally:
            self._cell.mailbox.release()
        return True


def test_ask_is_answered_inline_when_idle_and_through_the_mailbox_otherwise(
    make_system: Any,
) -> None:
    system = make_system([WorkerSpec(name="tally", agent=InlineTally)])
    ref = system.ref("tally")
    agent = system.cell("tally").agent
    wait_until(lambda: ref.ask(KeyTotal()) == Total(total=0) and agent.inline > 0,
               what="an ask answered inline")  # fmt: skip
    assert ref.ask_future(KeyTotal()).wait() == Total(total=0)  # never inline
    before = agent.inline
    for i in range(1, 301):
        ref.tell(Add(n=1))
        assert ref.ask(KeyTotal()) == Total(total=i)  # never ahead of the tell
    assert agent.inline >= before  # either path; what matters is the order


def test_no_sender_is_overtaken_by_its_own_inline_ask(make_system: Any) -> None:
    """Several senders, each telling then asking its own key: every answer is exact."""
    system = make_system([WorkerSpec(name="tally", agent=InlineTally)])
    wrong: list[tuple[str, int, int]] = []

    def sender(key: str) -> None:
        ref = system.ref("tally")
        for i in range(1, 401):
            ref.tell(Add(n=1, key=key))
            if i % 3 == 0:
                got = ref.ask(KeyTotal(key=key)).total
                if got != i:
                    wrong.append((key, i, got))

    threads = [threading.Thread(target=sender, args=(f"k{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not wrong
    assert system.ask("tally", GetTotal()) == Total(total=1600)
