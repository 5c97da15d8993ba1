"""Bounded mailboxes and their overflow policies (SEMANTICS.md section 5)."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibe_actors import MailboxFull, MailboxFullError, MailboxSpec, Overflow, Ping
from vibe_actors._deadletters import DeadLetterReason
from vibe_actors._envelope import Control, Envelope
from vibe_actors._future import ReplyFuture
from vibe_actors._mailbox import Mailbox

from tests.conftest import wait_until, worker
from tests.vibe_actors.agents import Add, Block, GetTotal, Total


def blocked_system(make_system, journal, overflow, capacity=3, **mailbox):
    spec = MailboxSpec(capacity=capacity, overflow=overflow, **mailbox)
    system = make_system([worker("w", journal, mailbox=spec)])
    system.tell("w", Block())
    assert journal.entered.wait(5)  # the handler holds; the mailbox fills behind it
    return system


def test_reject_fails_an_ask_fast_and_dead_letters_a_tell(make_system, journal):
    system = blocked_system(make_system, journal, Overflow.REJECT)
    system.tell("w", Add(n=1))
    system.tell("w", Add(n=2))
    last = system.ref("w").ask_future(Add(n=3))
    with pytest.raises(MailboxFullError) as info:
        system.ask("w", Ping(), timeout=30)
    assert info.value.reply == MailboxFull(agent="w", capacity=3, detail="mailbox_full")
    system.tell("w", Add(n=100))
    assert system.dead_letters.counts()["mailbox_full"] == 2
    journal.gate.set()
    assert last.result() == Total(total=6)


def test_drop_oldest_evicts_the_head(make_system, journal):
    system = blocked_system(make_system, journal, Overflow.DROP_OLDEST)
    for n in (1, 2, 3, 4):
        system.tell("w", Add(n=n))
    last = system.ref("w").ask_future(Add(n=5))
    assert system.dead_letters.counts()["dropped_oldest"] == 2
    assert [d.message for d in system.dead_letters.recent()] == [Add(n=1), Add(n=2)]
    journal.gate.set()
    assert last.result() == Total(total=3 + 4 + 5)


def test_drop_newest_keeps_the_queue(make_system, journal):
    system = blocked_system(make_system, journal, Overflow.DROP_NEWEST)
    system.tell("w", Add(n=1))
    system.tell("w", Add(n=2))
    last = system.ref("w").ask_future(Add(n=3))
    system.tell("w", Add(n=4))
    system.tell("w", Add(n=5))
    assert system.dead_letters.counts()["dropped_newest"] == 2
    journal.gate.set()
    assert last.result() == Total(total=1 + 2 + 3)


def test_block_waits_for_space_then_delivers(make_system, journal):
    system = blocked_system(make_system, journal, Overflow.BLOCK, block_timeout=10.0)
    for n in (1, 2, 3):
        system.tell("w", Add(n=n))
    sent = threading.Event()

    def sender() -> None:
        system.tell("w", Add(n=4))
        sent.set()

    thread = threading.Thread(target=sender)
    thread.start()
    assert not sent.wait(0.1)  # blocked on the full mailbox
    journal.gate.set()
    assert sent.wait(5)
    thread.join(5)
    # The ask blocks for room too, and is handled after all four Adds.
    assert system.ask("w", GetTotal()) == Total(total=10)


def test_block_times_out_as_reject(make_system, journal):
    system = blocked_system(make_system, journal, Overflow.BLOCK, capacity=1, block_timeout=0.05)
    system.tell("w", Add(n=1))
    with pytest.raises(MailboxFullError):
        system.ask("w", Ping(), timeout=30)


def test_system_messages_bypass_the_bound():
    refused: list[DeadLetterReason] = []
    box = Mailbox("m", MailboxSpec(capacity=1), lambda env, reason: refused.append(reason))
    box.put(Envelope(Add(n=1)))
    box.put_system(Control(1))
    box.put_system(Envelope(Ping()))
    assert box.qsize() == 3
    assert refused == []
    box.put(Envelope(Add(n=2)))
    assert refused == [DeadLetterReason.MAILBOX_FULL]


def test_drop_oldest_never_evicts_control_envelopes():
    dropped: list[object] = []
    box = Mailbox("m", MailboxSpec(capacity=2, overflow=Overflow.DROP_OLDEST),
                  lambda env, reason: dropped.append(env.message))  # fmt: skip
    box.put_system(Control(1))
    box.put(Envelope(Add(n=1)))
    box.put(Envelope(Add(n=2)))
    assert dropped == [Add(n=1)]
    items = [box.get() for _ in range(box.qsize())]
    assert sum(isinstance(i, Control) for i in items) == 1


ops = st.lists(st.sampled_from(["get", "put"]), max_size=60)


@settings(deadline=None, max_examples=200)
@given(
    capacity=st.integers(min_value=1, max_value=5),
    overflow=st.sampled_from([Overflow.REJECT, Overflow.DROP_OLDEST, Overflow.DROP_NEWEST]),
    script=ops,
)
def test_bounded_mailbox_model(capacity, overflow, script):
    """Against a list model: bound never exceeded, nothing lost, asks told when dropped."""
    refused: list[tuple[int, DeadLetterReason]] = []
    box = Mailbox("m", MailboxSpec(capacity=capacity, overflow=overflow),
                  lambda env, reason: refused.append((env.message.n, reason)))  # fmt: skip
    model: list[int] = []
    expected_refused: list[int] = []
    received: list[int] = []
    futures: list[ReplyFuture] = []
    for step in script:
        if step == "get":
            if model:
                received.append(box.get().message.n)
                assert received[-1] == model.pop(0)
            continue
        step = len(futures)  # a unique id per message
        futures.append(ReplyFuture("m", 1.0))
        box.put(Envelope(Add(n=step), futures[step]))
        if len(model) < capacity:
            model.append(step)
        elif overflow is Overflow.DROP_OLDEST:
            expected_refused.append(model.pop(0))
            model.append(step)
        else:
            expected_refused.append(step)
        assert box.qsize() == len(model) <= capacity
    assert [n for n, _ in refused] == expected_refused
    for n in expected_refused:
        assert isinstance(futures[n].wait(0), MailboxFull)
    assert [e.message.n for e in box.drain()] == model


@pytest.mark.parametrize("overflow", [Overflow.REJECT, Overflow.DROP_NEWEST, Overflow.BLOCK])
def test_an_agents_messages_to_itself_pass_its_own_bound(make_system, journal, overflow):
    system = blocked_system(make_system, journal, overflow, capacity=1, block_timeout=0.01)
    system.tell("w", Add(n=1))  # full now
    system.ref("w", sender="w").tell(Add(n=10))  # as its timers and callbacks send
    system.ref("w", sender="other").tell(Add(n=100))
    assert system.dead_letters.total() == 1
    journal.gate.set()
    wait_until(lambda: system.ref("w").ask_future(GetTotal()).wait() == Total(total=11))
