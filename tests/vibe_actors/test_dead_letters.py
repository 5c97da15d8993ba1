"""Dead letters: one test per cause, counted and inspectable (SEMANTICS.md section 6)."""

from __future__ import annotations

from vibe_actors import DeadLetterReason, Ping, RestartType, SupervisorSpec, UnavailableError
from vibe_actors._deadletters import DeadLetters
from vibe_actors._envelope import Envelope

from tests.conftest import worker
from tests.vibe_actors.agents import Add, Block, Boom, Unknown


def test_unknown_agent(make_system):
    system = make_system([worker("w")])
    system.tell("ghost", Add(n=1), request_id="r-1")
    (letter,) = system.dead_letters.recent()
    assert (letter.recipient, letter.reason, letter.message_type, letter.request_id) == (
        "ghost", DeadLetterReason.UNKNOWN_AGENT, "Add", "r-1",
    )  # fmt: skip


def test_stopped_agent_and_messages_left_in_its_mailbox(make_system, journal):
    spec = SupervisorSpec(
        name="sup", children=(worker("t", journal, restart=RestartType.TEMPORARY),)
    )
    system = make_system(spec)
    system.tell("t", Block())
    assert journal.entered.wait(5)
    system.tell("t", Boom())  # queued behind Block: crashes t once Block is done
    system.tell("t", Add(n=1))  # queued behind the crash: left in the mailbox
    journal.gate.set()
    journal.wait_for(lambda j: "failure" in [k for k, _, _ in j.events])
    system.ask("sup", Ping())
    counts = system.dead_letters.counts()
    assert counts["left_in_mailbox"] == 1
    ref = system.ref("t")
    ref.tell(Add(n=2))
    assert system.dead_letters.counts()["unknown_agent"] == 1  # a temporary child is removed


def test_stopped_for_good_is_unavailable(make_system, journal):
    system = make_system([worker("w", journal)])
    cell = system.cell("w")
    cell.stop()
    cell.terminate("test")
    try:
        system.ask("w", Ping())
    except UnavailableError as exc:
        assert exc.reply.reason == "stopped"
    else:
        raise AssertionError("expected UnavailableError")
    assert system.dead_letters.counts()["stopped"] == 1


def test_unhandled(make_system):
    system = make_system([worker("w")])
    system.tell("w", Unknown())
    system.ask("w", Ping())
    assert system.dead_letters.counts()["unhandled"] == 1


def test_subscribers_see_every_letter_and_a_failing_one_is_kept():
    letters = DeadLetters(keep=2, log_per_second=1)
    seen: list[str] = []

    def failing(letter):
        raise ValueError("subscriber bug")

    letters.subscribe(failing)
    unsubscribe = letters.subscribe(lambda letter: seen.append(letter.message_type))
    for n in range(3):
        letters.publish("x", Envelope(Add(n=n)), DeadLetterReason.STOPPED)
    unsubscribe()
    letters.publish("x", Envelope(Ping()), DeadLetterReason.STOPPED)
    assert seen == ["Add", "Add", "Add"]
    assert letters.total() == 4
    assert [letter.message for letter in letters.recent()] == [Add(n=2), Ping()]


def test_sensitive_fields_are_masked_in_dead_letters(make_system):
    from typing import ClassVar

    from vibe_actors import Message

    class Login(Message):
        user: str
        password: str
        sensitive_fields: ClassVar[frozenset[str]] = frozenset({"password"})

    system = make_system([worker("w")], serialize_messages=False)
    system.tell("ghost", Login(user="ann", password="hunter2"))
    (letter,) = system.dead_letters.recent()
    assert letter.message == Login(user="ann", password="***")
