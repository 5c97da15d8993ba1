"""Sends on behalf of a caller are authorised at delivery (no confused deputy)."""

from __future__ import annotations

import pytest

from vibe_actors import (
    ANONYMOUS,
    Caller,
    DeadLetterReason,
    Forbidden,
    ForbiddenError,
    SupervisorSpec,
    WorkerSpec,
)
from vibe_actors.agents.policy import (
    Policy,
    PolicyChanged,
    PolicyConfig,
    PolicyDenied,
    Reload,
    Rule,
)

from tests.conftest import wait_until, worker
from tests.vibe_actors.agents import Add, Echo, GetTotal

ALICE = Caller("alice")


class Recorder:
    def __init__(self) -> None:
        self.events: list[object] = []

    def __call__(self, event: object) -> None:
        self.events.append(event)


def tree(rules: list[Rule], enabled: bool = True) -> SupervisorSpec:
    policy = PolicyConfig(enabled=enabled, rules=rules, persist=False)
    return SupervisorSpec(
        name="root",
        children=(WorkerSpec(name="policy", agent=Policy, config=policy), worker("w")),
    )


def test_without_an_authorizer_every_caller_is_allowed(make_system):
    system = make_system([worker("w")])
    assert system.ask("w", Add(n=2), caller=ALICE).total == 2
    system.tell("w", Add(n=1), caller=ANONYMOUS)
    assert system.ask("w", GetTotal()).total == 3


def test_a_denied_ask_is_forbidden_and_never_reaches_the_agent(make_system):
    system = make_system(tree([Rule(principal="alice", agent="w", message="Echo")]))
    denials = Recorder()
    system.events.subscribe(denials)
    with pytest.raises(ForbiddenError) as raised:
        system.ask("w", Add(n=5), caller=ALICE)
    reply = raised.value.reply
    assert isinstance(reply, Forbidden)
    assert (reply.agent, reply.message_type) == ("w", "Add")
    assert "'alice' may not send Add to w" in reply.detail
    # Allowed for alice, and trusted code (no caller) is never checked.
    assert system.ask("w", Echo(text="x"), caller=ALICE).text == "x"
    assert system.ask("w", GetTotal()).total == 0
    denied = [e for e in denials.events if isinstance(e, PolicyDenied)]
    assert [(d.principal, d.agent, d.message) for d in denied] == [("alice", "w", "Add")]


def test_a_denied_tell_is_a_forbidden_dead_letter(make_system):
    system = make_system(tree([]))
    system.ref("w", sender="scheduler").tell(Add(n=5), caller=ALICE)
    letters = system.dead_letters.recent()
    assert [(x.recipient, x.reason, x.sender) for x in letters] == [
        ("w", DeadLetterReason.FORBIDDEN, "scheduler")
    ]
    assert system.ask("w", GetTotal()).total == 0


def test_a_reload_takes_effect_for_deliveries_and_names_its_caller(make_system):
    system = make_system(tree([Rule(principal="alice", agent="*", message="*")]))
    changes = Recorder()
    system.events.subscribe(changes)
    assert system.ask("w", Add(n=1), caller=ALICE).total == 1
    system.ask("policy", Reload(rules=[], enabled=True), caller=ALICE)
    wait_until(lambda: any(isinstance(e, PolicyChanged) for e in changes.events))
    change = next(e for e in changes.events if isinstance(e, PolicyChanged))
    assert change.caller == ALICE and change.cause == "reload"
    with pytest.raises(ForbiddenError):
        system.ask("w", Add(n=1), caller=ALICE)
    # Nobody can reload it back on alice's behalf now: the reload itself is refused.
    with pytest.raises(ForbiddenError):
        system.ask("policy", Reload(rules=[], enabled=False), caller=ALICE)


def test_a_disabled_policy_allows_every_caller(make_system):
    system = make_system(tree([], enabled=False))
    assert system.ask("w", Add(n=1), caller=ALICE).total == 1
