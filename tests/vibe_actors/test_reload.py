"""Live reload (ActorSystem.apply): only what changed is touched."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vibe_actors import MailboxSpec, Ping, PoolSpec, SupervisorSpec, WorkerSpec
from vibe_actors._reload import diff_children

from tests.conftest import worker
from tests.vibe_actors.agents import Add, GetTotal, Total, Worker


def test_unchanged_agent_keeps_its_state_across_a_reload(make_system, journal):
    inner = SupervisorSpec(name="inner", children=(worker("x", journal), worker("y", journal)))
    old = SupervisorSpec(
        name="top", children=(worker("keep", journal), worker("gone", journal), inner)
    )
    system = make_system(old)
    system.ask("keep", Add(n=41))
    system.ask("x", Add(n=5))
    new_inner = SupervisorSpec(
        name="inner", intensity=7, children=(worker("x", journal), worker("z", journal))
    )
    new = SupervisorSpec(
        name="top",
        children=(
            worker("keep", journal),
            new_inner,
            worker("fresh", journal),
            WorkerSpec(name="pool", agent=Worker, pool=PoolSpec(size=2)),
        ),
    )
    journal.clear()
    report = system.apply(new)
    assert set(report.removed) == {"gone", "y"}
    assert set(report.added) == {"z", "fresh", "pool"}
    assert "keep" in report.unchanged and "x" in report.unchanged
    assert report.failed == ()
    assert system.ask("keep", GetTotal()) == Total(total=41)  # same incarnation, same state
    assert system.ask("keep", Ping()).incarnation == 1
    assert system.ask("x", GetTotal()) == Total(total=5)
    assert system.ask("pool", Ping()).agent in {"pool.1", "pool.2"}
    assert journal.of("stop") == ["gone", "y"]
    assert system.cell("inner").config.intensity == 7
    assert [c.name for c in system.tree().children] == ["keep", "inner", "fresh", "pool"]
    assert "gone" not in system.names()


def test_changed_worker_restarts_with_its_new_spec_and_keeps_its_name(make_system, journal):
    system = make_system([worker("w", journal), worker("other", journal)])
    report = system.apply(
        SupervisorSpec(
            name="root",
            children=(
                worker("w", journal, mailbox=MailboxSpec(capacity=10)),
                worker("other", journal),
            ),
        )
    )
    assert report.changed == ("w",)
    assert system.ask("w", Ping()).incarnation == 2
    assert system.ask("other", Ping()).incarnation == 1
    assert system.cell("w").mailbox.capacity == 10


def test_invalid_new_tree_changes_nothing(make_system):
    system = make_system([worker("a"), worker("b")])
    with pytest.raises(ValueError, match="duplicate agent name 'a'"):
        nested = SupervisorSpec(name="s", children=(worker("a"),))
        system.apply(SupervisorSpec(name="root", children=(worker("a"), worker("b"), nested)))
    with pytest.raises(TypeError):
        system.apply(SupervisorSpec(name="root", children=(WorkerSpec(name="c", agent=int),)))
    assert system.names() == ["root", "a", "b"]
    assert system.ask("a", Ping()).incarnation == 1


def test_root_cannot_be_renamed(make_system):
    system = make_system([worker("a")])
    with pytest.raises(ValueError, match="cannot rename"):
        system.apply(SupervisorSpec(name="other", children=(worker("a"),)))


def test_start_failure_during_reload_is_reported(make_system, journal):
    system = make_system(SupervisorSpec(name="root", intensity=5, children=(worker("a", journal),)))
    journal.fail_start.add("b")
    report = system.apply(
        SupervisorSpec(
            name="root", intensity=5, children=(worker("a", journal), worker("b", journal))
        )
    )
    assert report.failed and report.failed[0].startswith("b: RuntimeError: b refuses to start")


names = st.lists(st.sampled_from("abcdefgh"), unique=True, max_size=8)


@given(old=names, new=names, change=st.sets(st.sampled_from("abcdefgh")))
def test_diff_accounts_for_every_name_once(old, new, change):
    old_specs = tuple(WorkerSpec(name=n, agent=Worker) for n in old)
    new_specs = tuple(
        WorkerSpec(name=n, agent=Worker, config=1 if n in change else None) for n in new
    )
    diff = diff_children(old_specs, new_specs)
    assert list(diff.removed) == [n for n in reversed(old) if n not in new]
    assert sorted(diff.added + diff.changed + diff.unchanged) == sorted(new)
    assert set(diff.changed) == {n for n in new if n in old and n in change}
