"""The supervisor's pure decisions: plans, intensity, backoff (examples and properties)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibe_actors import BackoffSpec, RestartType, Strategy
from vibe_actors._restart_policy import (
    BackoffState,
    ChildState,
    IntensityWindow,
    RestartPlan,
    next_backoff,
    restart_plan,
)

P, T, TMP = RestartType.PERMANENT, RestartType.TRANSIENT, RestartType.TEMPORARY


def kids(*specs: tuple[str, RestartType]) -> list[ChildState]:
    return [ChildState(name, restart) for name, restart in specs]


ABCD = kids(("a", P), ("b", P), ("c", P), ("d", P))


@pytest.mark.parametrize(
    ("strategy", "plan"),
    [
        (Strategy.ONE_FOR_ONE, RestartPlan(start=("b",))),
        (Strategy.ONE_FOR_ALL, RestartPlan(stop=("d", "c", "a"), start=("a", "b", "c", "d"))),
        (Strategy.REST_FOR_ONE, RestartPlan(stop=("d", "c"), start=("b", "c", "d"))),
    ],
)
def test_plans_per_strategy(strategy, plan):
    assert restart_plan(strategy, ABCD, "b") == plan


def test_temporary_child_is_removed_and_touches_no_sibling():
    children = kids(("a", P), ("t", TMP), ("c", P))
    for strategy in Strategy:
        assert restart_plan(strategy, children, "t") == RestartPlan(remove=("t",))
        assert restart_plan(strategy, children, "t", abnormal=False) == RestartPlan(remove=("t",))


def test_temporary_sibling_stopped_by_a_plan_is_removed_not_restarted():
    children = kids(("a", P), ("t", TMP), ("c", P))
    plan = restart_plan(Strategy.ONE_FOR_ALL, children, "c")
    assert plan == RestartPlan(stop=("t", "a"), start=("a", "c"), remove=("t",))


def test_transient_normal_exit_stays_stopped_crash_restarts():
    children = kids(("a", P), ("x", T))
    assert restart_plan(Strategy.ONE_FOR_ALL, children, "x", abnormal=False) == RestartPlan(
        keep_stopped=("x",)
    )
    assert restart_plan(Strategy.ONE_FOR_ALL, children, "x") == RestartPlan(
        stop=("a",), start=("a", "x")
    )


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
def test_group_restart_starts_a_stopped_transient_sibling(strategy):
    """OTP keeps a transient child's spec after a normal exit; a group restart starts it."""
    children = [
        ChildState("a", P),
        ChildState("x", T, stopped=True),
        ChildState("c", P),
        ChildState("d", TMP),
    ]
    assert restart_plan(strategy, children, "a") == RestartPlan(
        stop=("d", "c"), start=("a", "x", "c"), remove=("d",)
    )


def test_a_stopped_transient_child_outside_the_group_stays_stopped():
    children = [ChildState("x", T, stopped=True), ChildState("b", P), ChildState("c", P)]
    assert restart_plan(Strategy.REST_FOR_ONE, children, "b") == RestartPlan(
        stop=("c",), start=("b", "c")
    )
    assert restart_plan(Strategy.ONE_FOR_ONE, children, "b") == RestartPlan(start=("b",))


def test_permanent_normal_exit_restarts_like_a_crash():
    assert restart_plan(Strategy.REST_FOR_ONE, ABCD, "c", abnormal=False) == RestartPlan(
        stop=("d",), start=("c", "d")
    )


def test_unknown_child_is_an_error():
    with pytest.raises(ValueError, match="'z' is not a child"):
        restart_plan(Strategy.ONE_FOR_ONE, ABCD, "z")


def test_intensity_edges():
    window = IntensityWindow.empty()
    assert window.add_restart(0.0, 0, 5.0)[1] is True  # intensity 0: the first escalates
    for t in (0.0, 1.0, 2.0):
        window, exceeded = window.add_restart(t, 3, 5.0)
        assert not exceeded
    assert window.add_restart(3.0, 3, 5.0)[1] is True  # the 4th within 5 s
    assert window.add_restart(5.0, 3, 5.0)[1] is False  # t=0 left the window at 5.0
    with pytest.raises(ValueError, match="backwards"):
        window.add_restart(1.0, 3, 5.0)


def test_backoff_sequence_cap_and_reset():
    spec = BackoffSpec(min=0.1, max=0.5, random_factor=0.0, reset_after=10.0)
    state, delays = BackoffState(), []
    for t in range(5):
        delay, state = next_backoff(spec, state, float(t), 0.0)
        delays.append(delay)
    assert delays == [0.0, 0.1, 0.2, 0.4, 0.5]
    delay, state = next_backoff(spec, state, 100.0, 0.0)  # quiet for 96 s: reset
    assert delay == 0.0 and state.consecutive == 1
    jittered, _ = next_backoff(
        BackoffSpec(min=1.0, max=8.0, random_factor=0.5), BackoffState(3, 0.0), 1.0, 0.5
    )
    assert jittered == 4.0 * 1.25
    with pytest.raises(ValueError, match="rand must be in"):
        next_backoff(spec, state, 0.0, 1.0)


def test_backoff_survives_huge_counts():
    spec = BackoffSpec(min=0.01, max=5.0, random_factor=0.0)
    assert next_backoff(spec, BackoffState(10**9, 0.0), 1.0, 0.0)[0] == 5.0


restart_types = st.sampled_from(list(RestartType))


@st.composite
def children_and_failed(draw: st.DrawFn) -> tuple[list[ChildState], str]:
    count = draw(st.integers(min_value=1, max_value=8))
    children = [ChildState(f"c{i}", draw(restart_types)) for i in range(count)]
    failed = draw(st.sampled_from(children)).name
    # Only a transient child can be in the tree, stopped (it exited normally).
    children = [
        ChildState(c.name, c.restart, stopped=draw(st.booleans()))
        if c.restart is RestartType.TRANSIENT and c.name != failed
        else c
        for c in children
    ]
    return children, failed


@settings(deadline=None, max_examples=300)
@given(case=children_and_failed(), strategy=st.sampled_from(list(Strategy)), abnormal=st.booleans())
def test_plan_properties(case, strategy, abnormal):
    children, failed = case
    names = [c.name for c in children]
    kinds = {c.name: c.restart for c in children}
    plan = restart_plan(strategy, children, failed, abnormal)
    index = names.index(failed)
    touched = set(plan.stop) | set(plan.start) | set(plan.remove) | set(plan.keep_stopped)
    if strategy is Strategy.REST_FOR_ONE:
        assert not touched & set(names[:index])  # never an earlier sibling
    if strategy is Strategy.ONE_FOR_ONE:
        assert touched <= {failed}
    assert failed not in plan.stop
    assert set(plan.stop) <= set(names)
    order = [names.index(n) for n in plan.stop]
    assert order == sorted(order, reverse=True)  # reverse start order
    order = [names.index(n) for n in plan.start]
    assert order == sorted(order)  # start order
    assert not any(kinds[n] is RestartType.TEMPORARY for n in plan.start)
    assert all(kinds[n] is RestartType.TEMPORARY for n in plan.remove)
    stopped = {c.name for c in children if c.stopped}
    assert not stopped & set(plan.stop)  # nothing to stop
    if kinds[failed] is RestartType.TEMPORARY or (
        not abnormal and kinds[failed] is RestartType.TRANSIENT
    ):
        assert not plan.stop and not plan.start  # siblings untouched
    elif strategy is not Strategy.ONE_FOR_ONE:
        # A group restart starts the whole group, stopped transient children too (OTP).
        group = names if strategy is Strategy.ONE_FOR_ALL else names[index:]
        assert list(plan.start) == [n for n in group if kinds[n] is not RestartType.TEMPORARY]


@settings(deadline=None, max_examples=300)
@given(
    intensity=st.integers(min_value=0, max_value=6),
    period=st.floats(min_value=0.1, max_value=100),
    gaps=st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=20),
)
def test_more_than_intensity_within_period_always_escalates(intensity, period, gaps):
    """Restarts packed into less than one period: the (intensity+1)-th escalates."""
    scale = period / (sum(gaps) + 1.0)  # the whole run fits strictly inside the period
    window, now, results = IntensityWindow.empty(), 0.0, []
    for gap in gaps:
        now += gap * scale
        window, exceeded = window.add_restart(now, intensity, period)
        results.append(exceeded)
    for count, exceeded in enumerate(results, 1):
        assert exceeded == (count > intensity)


@settings(deadline=None, max_examples=200)
@given(
    intensity=st.integers(min_value=1, max_value=6),
    period=st.floats(min_value=0.1, max_value=100),
    extra=st.lists(st.floats(min_value=0, max_value=100), max_size=20),
)
def test_restarts_a_period_apart_never_escalate(intensity, period, extra):
    window, now = IntensityWindow.empty(), 0.0
    for gap in extra:
        now += period * 1.000001 + gap  # a period apart (plus float slack)
        window, exceeded = window.add_restart(now, intensity, period)
        assert not exceeded


@settings(deadline=None, max_examples=300)
@given(
    low=st.floats(min_value=0, max_value=10),
    spread=st.floats(min_value=0, max_value=100),
    factor=st.floats(min_value=0, max_value=2),
    rand=st.floats(min_value=0, max_value=0.999),
    counts=st.lists(st.integers(min_value=0, max_value=200), min_size=2, max_size=10),
)
def test_backoff_bounded_and_monotonic(low, spread, factor, rand, counts):
    spec = BackoffSpec(min=low, max=low + spread, random_factor=factor, reset_after=1e9)
    delays = [next_backoff(spec, BackoffState(n, 0.0), 1.0, rand)[0] for n in sorted(counts)]
    assert all(0.0 <= d <= spec.max * (1 + factor) + 1e-9 for d in delays)
    assert delays == sorted(delays)
