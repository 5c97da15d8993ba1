"""The shipped wiring bounds what grows: every system agent's mailbox."""

from __future__ import annotations

from pathlib import Path

import phoenix
from vibe_actors import Overflow, SupervisorSpec, WorkerSpec

ROOT = Path(__file__).resolve().parents[2]


def workers(spec: SupervisorSpec):
    for child in spec.children:
        if isinstance(child, SupervisorSpec):
            yield from workers(child)
        else:
            yield child


def test_every_system_agent_ships_with_a_bounded_rejecting_mailbox():
    root, _ = phoenix.build(phoenix.load(ROOT / "wiring.yaml"))
    agents = [w for w in workers(root) if isinstance(w, WorkerSpec) and w.pool is None]
    assert len(agents) == 13
    for agent in agents:
        assert agent.mailbox.capacity == 10_000, agent.name
        # reject, never block: a full target must not stall the scheduler or a fan-out.
        assert agent.mailbox.overflow is Overflow.REJECT, agent.name
