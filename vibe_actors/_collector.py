"""Prometheus exposition of the runtime's own counters, computed at scrape time.

Stable metric names (documented in README.md):

=====================================================  =========  ==========================
name                                                   type       labels
=====================================================  =========  ==========================
``vibe_messages_total``                                counter    agent, type, outcome
``vibe_message_duration_seconds``                      histogram  agent
``vibe_mailbox_depth``                                 gauge      agent
``vibe_restarts_total``                                counter    agent
``vibe_dead_letters_total``                            counter    reason
``vibe_agents``                                        gauge      state
``vibe_escalations_total``                             counter    supervisor
``vibe_abandoned_total``                               counter    agent
``vibe_entities_active``                               gauge      kind
``vibe_entity_activations_total``                      counter    kind
``vibe_entity_activation_seconds``                     histogram  kind
``vibe_entity_passivations_total``                     counter    kind, reason
``vibe_entity_crashes_total``                          counter    kind
``vibe_entity_commits_total``                          counter    kind
``vibe_entity_state_writes_total``                     counter    kind
``vibe_entity_conflicts_total``                        counter    kind
``vibe_dynamic_children``                              gauge      supervisor
``vibe_dynamic_child_starts_total``                    counter    supervisor, outcome
=====================================================  =========  ==========================
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from vibe_actors._entity_kind import PassivationReason
from vibe_actors._signals import AgentStatus
from vibe_actors._spec import SupervisorSpec
from vibe_actors._stats import DURATION_BUCKETS, ChildStarts, FailureCounts
from vibe_actors._tree import is_dynamic

if TYPE_CHECKING:
    from vibe_actors._cell import Cell
    from vibe_actors._deadletters import DeadLetters
    from vibe_actors._entity_kind import EntityRouter
    from vibe_actors._route_table import RouteTable

__all__ = ["Observed", "SystemCollector"]


class Observed(Protocol):
    """The system, as a scrape reads it (:class:`~vibe_actors.ActorSystem` is one)."""

    @property
    def dead_letters(self) -> DeadLetters: ...

    @property
    def failures(self) -> FailureCounts: ...

    @property
    def dynamic_starts(self) -> ChildStarts: ...

    @property
    def routes(self) -> RouteTable: ...

    def cells(self) -> list[Cell]: ...


class SystemCollector(Collector):
    """Reads one system's cells, dead letters and supervisor counters on each scrape."""

    def __init__(self, system: Observed) -> None:
        self._system = system

    def collect(self) -> Iterator[Metric]:
        system = self._system
        cells = system.cells()
        yield from _per_agent(cells)
        yield _agents_by_state(cells)
        dead = CounterMetricFamily(
            "vibe_dead_letters", "Undeliverable messages, by reason.", labels=["reason"]
        )
        for reason, count in system.dead_letters.counts().items():
            dead.add_metric([reason], count)
        yield dead
        yield from _failures(system, cells)
        yield from _entities(system.routes.entity_kinds())
        yield from _dynamic(system, cells)


def _per_agent(cells: list[Cell]) -> Iterator[Metric]:
    """Messages by outcome, handler durations, mailbox depth and restarts, per agent."""
    messages = CounterMetricFamily(
        "vibe_messages",
        "Messages handled, by agent, message type and outcome.",
        labels=["agent", "type", "outcome"],
    )
    durations = HistogramMetricFamily(
        "vibe_message_duration_seconds", "Handler run time per message.", labels=["agent"]
    )
    depth = GaugeMetricFamily("vibe_mailbox_depth", "Queued messages.", labels=["agent"])
    restarts = CounterMetricFamily("vibe_restarts", "Agent restarts.", labels=["agent"])
    for cell in cells:
        stats = cell.stats
        for message_type, outcome, count in stats.items():
            messages.add_metric([cell.name, message_type.__name__, outcome], count)
        cumulative, running = [], 0
        for bound, count in zip(
            (*DURATION_BUCKETS, float("inf")), list(stats.buckets), strict=True
        ):
            running += count
            cumulative.append((_bound(bound), running))
        durations.add_metric([cell.name], cumulative, stats.duration_sum[0])
        depth.add_metric([cell.name], cell.mailbox.qsize())
        restarts.add_metric([cell.name], stats.restarts)
    yield from (messages, durations, depth, restarts)


def _agents_by_state(cells: list[Cell]) -> Metric:
    states: collections.Counter[str] = collections.Counter()
    for cell in cells:
        state = cell.status.value
        if cell.degraded:
            state = "degraded"
        elif cell.impaired:
            state = "impaired"
        states[state] += 1
    agents = GaugeMetricFamily(
        "vibe_agents",
        "Agents by state (degraded: running but refusing work;"
        " impaired: running, but some of its work fails, e.g. durable writes).",
        labels=["state"],
    )
    for state in (*(s.value for s in AgentStatus), "degraded", "impaired"):
        agents.add_metric([state], states.get(state, 0))
    return agents


def _failures(system: Observed, cells: list[Cell]) -> Iterator[Metric]:
    """Escalations per supervisor and abandoned incarnations per agent (zeros included)."""
    escalations = CounterMetricFamily(
        "vibe_escalations",
        "Supervisors that gave up (restart intensity exceeded).",
        labels=["supervisor"],
    )
    escalated = system.failures.escalations()
    for cell in cells:  # every supervisor has a series from the start, zero included
        if isinstance(cell.spec, SupervisorSpec):
            escalated.setdefault(cell.name, 0)
    for name, count in escalated.items():
        escalations.add_metric([name], count)
    abandoned = CounterMetricFamily(
        "vibe_abandoned",
        "Incarnations abandoned after their shutdown timeout.",
        labels=["agent"],
    )
    dropped = system.failures.abandonments()
    for cell in cells:
        dropped.setdefault(cell.name, 0)
    for name, count in dropped.items():
        abandoned.add_metric([name], count)
    yield from (escalations, abandoned)


def _entities(kinds: list[EntityRouter]) -> Iterator[Metric]:
    """Per entity kind: active entities, activations (and their duration), passivations by
    reason, crashes, and a durable kind's commits and the states they wrote. Every reason
    has a series from the start, zero included."""
    active = GaugeMetricFamily("vibe_entities_active", "Entities active now.", labels=["kind"])
    activations = CounterMetricFamily(
        "vibe_entity_activations", "Entities activated.", labels=["kind"]
    )
    durations = HistogramMetricFamily(
        "vibe_entity_activation_seconds",
        "Activation time: state loaded, instance built, on_activate run.",
        labels=["kind"],
    )
    passivations = CounterMetricFamily(
        "vibe_entity_passivations", "Entities passivated, by reason.", labels=["kind", "reason"]
    )
    crashes = CounterMetricFamily(
        "vibe_entity_crashes", "Entity handlers that raised.", labels=["kind"]
    )
    commits = CounterMetricFamily(
        "vibe_entity_commits", "Transactions committed by a durable kind's writer.", labels=["kind"]
    )
    writes = CounterMetricFamily(
        "vibe_entity_state_writes",
        "Entity states written by a durable kind's commits (writes per commit: the grouping).",
        labels=["kind"],
    )
    conflicts = CounterMetricFamily(
        "vibe_entity_conflicts",
        "Entity writes refused because another replica saved a newer state first (409).",
        labels=["kind"],
    )
    for router in kinds:
        stats, kind = router.stats, router.name
        active.add_metric([kind], stats.total_active())
        activations.add_metric([kind], sum(stats.activations))
        buckets = [sum(column) for column in zip(*stats.activation_buckets, strict=True)]
        cumulative, running = [], 0
        for bound, count in zip((*DURATION_BUCKETS, float("inf")), buckets, strict=True):
            running += count
            cumulative.append((_bound(bound), running))
        durations.add_metric([kind], cumulative, sum(stats.activation_seconds))
        counts = stats.passivation_counts()
        for reason in PassivationReason.ALL:
            passivations.add_metric([kind, reason], counts.get(reason, 0))
        crashes.add_metric([kind], sum(stats.crashes))
        commits.add_metric([kind], stats.commits)
        writes.add_metric([kind], stats.committed_writes)
        conflicts.add_metric([kind], stats.conflicts)
    yield from (active, activations, durations, passivations, crashes, commits, writes, conflicts)


def _dynamic(system: Observed, cells: list[Cell]) -> Iterator[Metric]:
    """Children per dynamic supervisor, and start requests by outcome (zeros included)."""
    children = GaugeMetricFamily(
        "vibe_dynamic_children",
        "Children of each dynamic supervisor (restarting ones included).",
        labels=["supervisor"],
    )
    starts = CounterMetricFamily(
        "vibe_dynamic_child_starts",
        "Requests to start a dynamic child, by outcome (started, start_failed, full, name_taken).",
        labels=["supervisor", "outcome"],
    )
    counted = system.dynamic_starts.counts()
    for cell in cells:
        if is_dynamic(cell.spec):
            children.add_metric([cell.name], len(cell.children))
            for outcome in ChildStarts.OUTCOMES:
                counted.setdefault((cell.name, outcome), 0)
    for (supervisor, outcome), count in sorted(counted.items()):
        starts.add_metric([supervisor, outcome], count)
    yield from (children, starts)


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)
