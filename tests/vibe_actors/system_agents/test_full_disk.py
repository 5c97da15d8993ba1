"""A full disk degrades a durable agent; it never crashes it, and writes resume by themselves.

SQLite's ``max_page_count`` makes the database refuse to grow with the very
error a full disk gives (SQLITE_FULL, "database or disk is full"); it is set
on the agent's own connection, in the agent's thread, through the test kit's
fault injection.
"""

from __future__ import annotations

from typing import Any

import pytest

from vibe_actors import ActorSystem, Agent, SupervisorSpec, WorkerSpec
from vibe_actors._signals import InjectedFault
from vibe_actors.agents.scheduler import Cancel, List, Schedule, Scheduled, Scheduler
from vibe_actors.agents.state import Get, NotFound, Put, State, Stored
from vibe_actors.store._health import StorageUnavailable

from tests.conftest import wait_until

BIG = "x" * 200_000  # needs new pages whatever the free list holds


def in_agent_thread(system: ActorSystem, name: str, action: Any) -> None:
    """Run ``action(agent)`` in ``name``'s thread, after what is queued; wait for it."""
    done: list[bool] = []

    def run(agent: Agent) -> None:
        action(agent)
        done.append(True)

    system._inject(name, InjectedFault("crash", action=run))
    wait_until(lambda: bool(done), what=f"the action in {name}'s thread")


def fill_disk(system: ActorSystem, name: str) -> None:
    """From now on ``name``'s database cannot grow (as if the disk were full)."""

    def cap(agent: Agent) -> None:
        db = agent._store._db  # type: ignore[attr-defined]
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")

    in_agent_thread(system, name, cap)


def free_disk(system: ActorSystem, name: str) -> None:
    def uncap(agent: Agent) -> None:
        agent._store._db.execute("PRAGMA max_page_count = 1073741823")  # type: ignore[attr-defined]

    in_agent_thread(system, name, uncap)


def impaired(system: ActorSystem) -> list[str]:
    """The agents that readiness names for failing durable writes."""
    return [node.name for node in system.walk() if node.impaired]


def ask(system: ActorSystem, name: str, message: Any) -> Any:
    """The reply as data (error replies included)."""
    return system.ref(name).ask_future(message).wait()


def tree(*children: WorkerSpec) -> SupervisorSpec:
    # Intensity 0: a single crash would make the root give up and the system fail.
    return SupervisorSpec(name="root", children=children, intensity=0, period=60.0)


def fast_probe(cls: type) -> type:
    return type(cls.__name__, (cls,), {"store_retry_interval": 0.05})


@pytest.fixture
def state(make_system, tmp_path) -> ActorSystem:
    return make_system(
        tree(WorkerSpec(name="state", agent=fast_probe(State))), data_dir=str(tmp_path)
    )


def test_puts_on_a_full_disk_are_503_and_the_agent_stays_up(state):
    system = state
    assert isinstance(system.ask("state", Put(key="kept", value=1)), Stored)
    fill_disk(system, "state")
    incarnation = system.cell("state").incarnation
    for n in range(50):  # far more than any supervisor's intensity
        reply = ask(system, "state", Put(key=f"k{n}", value=BIG))
        assert isinstance(reply, StorageUnavailable), reply
        assert reply.http_status == 503 and reply.path.endswith("state.db")
        assert "full" in reply.detail
    assert system.running and system.cell("state").incarnation == incarnation
    # Reads still work, the acknowledged write is there, nothing of the refused ones is.
    assert system.ask("state", Get(key="kept")).value == 1
    assert isinstance(ask(system, "state", Get(key="k0")), NotFound)
    # Readiness tells the truth, naming the agent.
    assert impaired(system) == ["state"]
    assert "durable writes fail" in system.cell("state").impaired
    samples = system.registry.get_sample_value
    assert samples("vibe_store_write_failures_total", {"agent": "state"}) == 50
    assert samples("vibe_agents", {"state": "impaired"}) == 1


def test_writes_resume_by_themselves_when_space_returns(state):
    system = state
    fill_disk(system, "state")
    assert isinstance(ask(system, "state", Put(key="k", value=BIG)), StorageUnavailable)
    free_disk(system, "state")
    # No request needed: the agent's probe finds the disk writable again.
    wait_until(lambda: not impaired(system), what="state ready again")
    assert system.cell("state").impaired is None
    assert isinstance(system.ask("state", Put(key="k", value=BIG)), Stored)


def test_scheduler_on_a_full_disk_refuses_schedules_and_keeps_firing(make_system, tmp_path):
    system = make_system(
        tree(
            WorkerSpec(name="state", agent=State),
            WorkerSpec(name="scheduler", agent=fast_probe(Scheduler)),
        ),
        data_dir=str(tmp_path),
    )
    put = {"type": "Put", "key": "tick", "value": 1}
    reply = system.ask("scheduler", Schedule(name="t", target="state", message=put, every=0.05))
    assert isinstance(reply, Scheduled)
    fill_disk(system, "scheduler")
    big = {"type": "Put", "key": "k", "value": BIG}
    for n in range(30):
        refused = ask(
            system, "scheduler", Schedule(name=f"s{n}", target="state", message=big, at=1e10)
        )
        assert isinstance(refused, StorageUnavailable), refused
    assert system.running and impaired(system) == ["scheduler"]
    assert [i.name for i in system.ask("scheduler", List()).items] == ["t"]
    free_disk(system, "scheduler")
    wait_until(lambda: not impaired(system), what="scheduler ready again")
    assert system.ask("scheduler", Cancel(name="t")).name == "t"
