"""Dynamic supervisors across a live reload, and their state machine as a property."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vibe_actors import (
    ActorSystem,
    AgentStatus,
    NameTaken,
    Ping,
    RestartType,
    SupervisorFull,
    SupervisorSpec,
    SystemConfig,
)
from vibe_actors._reload import diff_children

from tests.conftest import wait_until, worker
from tests.vibe_actors.agents import Add, Boom, GetTotal, Journal, StopSelf, Total


def dynamic(name: str = "dyn", **kwargs) -> SupervisorSpec:
    kwargs.setdefault("intensity", 10)
    return SupervisorSpec(name=name, dynamic=True, **kwargs)


def tree(*children) -> SupervisorSpec:
    return SupervisorSpec(name="root", children=children)


def test_an_unchanged_dynamic_supervisor_keeps_its_children_and_their_state(make_system, journal):
    system = make_system(tree(dynamic(), worker("w", journal)))
    system.start_child("dyn", worker("c1", journal))
    system.ask("c1", Add(n=7))
    report = system.apply(tree(dynamic(), worker("w", journal), worker("new", journal)))
    assert report.added == ("new",)
    assert {"dyn", "c1"} <= set(report.unchanged)
    assert system.ask("c1", GetTotal()) == Total(total=7)
    assert system.ask("c1", Ping()).incarnation == 1


def test_changed_settings_keep_the_children_and_apply_to_later_starts(make_system, journal):
    system = make_system(tree(dynamic(max_children=5)))
    for name in ("c1", "c2", "c3"):
        system.start_child("dyn", worker(name, journal))
    system.ask("c2", Add(n=2))
    report = system.apply(tree(dynamic(max_children=2, intensity=3)))
    assert report.changed == ("dyn",)
    assert set(report.unchanged) == {"c1", "c2", "c3"}
    assert system.ask("c2", GetTotal()) == Total(total=2)  # not restarted
    assert journal.of("stop") == []
    assert system.cell("dyn").config.intensity == 3
    with pytest.raises(SupervisorFull, match="limit of 2"):
        system.start_child("dyn", worker("c4", journal))
    system.terminate_child("c1")
    system.terminate_child("c2")
    system.start_child("dyn", worker("c4", journal))


def test_a_supervisor_that_stops_being_dynamic_restarts_without_its_children(make_system, journal):
    system = make_system(tree(dynamic()))
    system.start_child("dyn", worker("c1", journal))
    report = system.apply(tree(SupervisorSpec(name="dyn", children=(worker("s1", journal),))))
    assert report.removed == ("dyn",) and report.added == ("dyn",)
    assert journal.of("stop") == ["c1"]
    assert "c1" not in system.names()
    assert system.ask("s1", Ping()).incarnation == 1


def test_a_removed_dynamic_supervisor_stops_its_children_and_frees_their_names(
    make_system, journal
):
    system = make_system(tree(dynamic(), dynamic("other")))
    system.start_child("dyn", worker("c1", journal))
    system.apply(tree(dynamic("other")))
    assert journal.of("stop") == ["c1"]
    system.start_child("other", worker("c1", journal))


def test_a_reload_declaring_a_dynamic_childs_name_is_refused_and_changes_nothing(
    make_system, journal
):
    system = make_system(tree(dynamic()))
    system.start_child("dyn", worker("c1", journal))
    with pytest.raises(ValueError, match="'c1' is the name of a dynamic child of 'dyn'"):
        system.apply(tree(dynamic(), worker("c1", journal)))
    assert [node.name for node in system.tree().children] == ["dyn"]
    assert system.ask("c1", Ping()).incarnation == 1


def test_the_root_cannot_change_whether_it_is_dynamic(make_system):
    system = make_system(dynamic("root"))
    with pytest.raises(ValueError, match="cannot change whether it is dynamic"):
        system.apply(SupervisorSpec(name="root"))


def test_the_reload_diff_counts_a_dynamic_flip_as_a_new_supervisor():
    old = (dynamic(), SupervisorSpec(name="same"))
    new = (SupervisorSpec(name="dyn"), SupervisorSpec(name="same", intensity=4))
    diff = diff_children(old, new)
    assert diff.removed == ("dyn",) and diff.added == ("dyn",)
    assert diff.nested == ("same",)


# -- the state machine, as a property --------------------------------------------------------

NAMES = ("a", "b", "c", "d")
LIMIT = 3
operations = st.lists(
    st.tuples(
        st.sampled_from(("start", "terminate", "crash", "stop")),
        st.sampled_from(NAMES),
        st.sampled_from(tuple(RestartType)),
    ),
    max_size=10,
)


def _expect_after_exit(restart: RestartType, crashed: bool) -> bool:
    """Whether a dynamic child stays (restarted) after it exits: OTP's restart types."""
    if restart is RestartType.PERMANENT:
        return True
    return restart is RestartType.TRANSIENT and crashed


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=operations)
def test_dynamic_children_follow_the_model_of_restart_types_and_limits(ops):
    """Whatever the sequence of starts, terminations, crashes and normal stops, the
    running children are exactly those the model keeps: a name once free can be
    taken again, at most max_children run, and a crash never leaves a child
    stopped unless its restart type says so."""
    journal = Journal()
    system = ActorSystem(
        tree(dynamic(max_children=LIMIT, intensity=1000)), SystemConfig(serialize_messages=True)
    ).start()
    model: dict[str, RestartType] = {}
    try:
        for op, name, restart in ops:
            if op == "start":
                if len(model) >= LIMIT:  # checked first, as Elixir's max_children
                    with pytest.raises(SupervisorFull):
                        system.start_child("dyn", worker(name, journal, restart=restart))
                elif name in model:
                    with pytest.raises(NameTaken):
                        system.start_child("dyn", worker(name, journal, restart=restart))
                else:
                    system.start_child("dyn", worker(name, journal, restart=restart))
                    model[name] = restart
            elif op == "terminate":
                if name in model:
                    system.terminate_child(name)
                    del model[name]
            elif name in model:
                before = system.cell(name).incarnation
                system.tell(name, Boom() if op == "crash" else StopSelf())
                if _expect_after_exit(model[name], op == "crash"):
                    wait_until(
                        lambda n=name, b=before: (
                            system.cell(n).incarnation > b
                            and system.status(n) is AgentStatus.RUNNING
                        ),
                        what=f"{name} restarted",
                    )
                else:
                    del model[name]
            wait_until(
                lambda: {node.name for node in system.tree().children[0].children} == set(model),
                what=f"children == {sorted(model)} after {op} {name}",
            )
    finally:
        system.shutdown()
        journal.gate.set()
