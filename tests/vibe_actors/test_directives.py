"""Per-exception supervision directives (issue 20): resume, restart, stop, escalate."""

from __future__ import annotations

from typing import ClassVar

import pytest

from vibe_actors import (
    Agent,
    AgentCrashedError,
    AgentStatus,
    AskError,
    ChildEscalated,
    Directive,
    HandlerFailed,
    Message,
    Ping,
    SupervisorSpec,
    WorkerSpec,
    handler,
)

from tests.conftest import wait_until


class Fail(Message):
    kind: str


class Count(Message):
    pass


class Counted(Message):
    n: int


class Flaky(Exception):
    pass


class VeryFlaky(Flaky):
    pass


class Picky(Agent):
    directives: ClassVar = {
        Flaky: Directive.RESUME,
        PermissionError: Directive.STOP,
        MemoryError: Directive.ESCALATE,
    }

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    @handler
    def fail(self, msg: Fail) -> None:
        self.n += 1
        raise {
            "flaky": Flaky("try again"),
            "very": VeryFlaky("subclass"),
            "perm": PermissionError("no"),
            "memory": MemoryError("gone"),
            "value": ValueError("bad"),
        }[msg.kind]

    @handler
    def count(self, msg: Count) -> Counted:
        return Counted(n=self.n)


def tree(**worker) -> SupervisorSpec:
    inner = SupervisorSpec(
        name="inner", intensity=5, children=(WorkerSpec(name="p", agent=Picky, **worker),)
    )
    return SupervisorSpec(name="root", intensity=5, children=(inner,))


def test_resume_keeps_the_state_and_answers_the_asker(make_system):
    system = make_system(tree())
    p = system.ref("p")
    with pytest.raises(AskError) as failed:
        p.ask(Fail(kind="flaky"))
    assert isinstance(failed.value.reply, HandlerFailed)
    assert "Flaky: try again" in failed.value.reply.error
    p.tell(Fail(kind="very"))  # a subclass: the most specific named class decides
    assert p.ask(Count()).n == 2  # the same incarnation, its state kept
    cell = system.cell("p")
    assert cell.incarnation == 1 and cell.restarts == 0
    assert cell.stats.total("failed") == 2


def test_an_unnamed_exception_restarts_as_before(make_system):
    system = make_system(tree())
    with pytest.raises(AgentCrashedError):
        system.ask("p", Fail(kind="value"))
    wait_until(lambda: system.cell("p").incarnation == 2, what="the restart")
    assert system.ask("p", Count()).n == 0


def test_stop_stops_it_for_good_whatever_its_restart_type(make_system):
    system = make_system(tree())
    with pytest.raises(AgentCrashedError):
        system.ask("p", Fail(kind="perm"))
    wait_until(lambda: system.cell("p").status is AgentStatus.STOPPED, what="stopped")
    assert system.cell("p").restarts == 0
    assert system.status("inner") is AgentStatus.RUNNING


def test_escalate_fails_the_supervisor_and_its_parent_restarts_it(make_system):
    system = make_system(tree())
    with pytest.raises(AgentCrashedError):
        system.ask("p", Fail(kind="memory"))
    wait_until(lambda: system.cell("inner").incarnation == 2, what="inner restarted")
    assert "ChildEscalated" in (system.cell("inner").last_failure or "")
    wait_until(lambda: system.cell("p").status is AgentStatus.RUNNING, what="p back")
    assert system.ask("p", Ping()).agent == "p"


def test_the_spec_overrides_the_class(make_system):
    system = make_system(tree(directives={Flaky: Directive.RESTART, ValueError: Directive.RESUME}))
    with pytest.raises(AgentCrashedError):
        system.ask("p", Fail(kind="flaky"))
    wait_until(lambda: system.cell("p").incarnation == 2, what="restarted by the spec's rule")
    with pytest.raises(AskError):
        system.ask("p", Fail(kind="value"))
    assert system.cell("p").incarnation == 2


def test_child_escalated_names_supervisor_and_child() -> None:
    error = ChildEscalated("inner", "p", MemoryError("gone"))
    assert "inner" in str(error) and "p raised MemoryError" in str(error)
