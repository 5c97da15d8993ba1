"""Property: whatever the tree and whatever crashed, after shutdown no actor thread is alive."""

from __future__ import annotations

import threading

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vibe_actors import ActorSystem, BackoffSpec, Ping, RestartType, Strategy, SupervisorSpec

from tests.conftest import worker
from tests.vibe_actors.agents import Boom

NO_BACKOFF = BackoffSpec(min=0.0, max=0.0, random_factor=0.0)


@st.composite
def trees(draw: st.DrawFn) -> SupervisorSpec:
    counter = iter(range(1000))

    def node(depth: int) -> SupervisorSpec:
        children = []
        for _ in range(draw(st.integers(min_value=1, max_value=3))):
            if depth < 2 and draw(st.booleans()):
                children.append(node(depth + 1))
            else:
                restart = draw(st.sampled_from(list(RestartType)))
                children.append(worker(f"w{next(counter)}", restart=restart))
        return SupervisorSpec(
            name=f"s{next(counter)}",
            strategy=draw(st.sampled_from(list(Strategy))),
            intensity=draw(st.integers(min_value=0, max_value=3)),
            period=60,
            backoff=NO_BACKOFF,
            children=tuple(children),
        )

    return node(0)


def vibe_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("vibe:") and t.is_alive()}


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees(), crashes=st.lists(st.integers(min_value=0, max_value=50), max_size=6))
def test_no_actor_thread_survives_shutdown(tree, crashes):
    before = vibe_threads()
    system = ActorSystem(tree).start()
    workers = [n.name for n in system.walk() if n.kind == "worker"]
    for pick in crashes:
        if workers:
            system.tell(workers[pick % len(workers)], Boom())
    for name in workers:  # let the crashes play out (or the system fail)
        system.ref(name).ask_future(Ping(), timeout=2).wait()
    system.shutdown(timeout=5)
    assert system._done.wait(5)  # stopped, or failed and finished stopping
    leftover = vibe_threads() - before
    for thread in leftover:
        thread.join(2)
    assert not (vibe_threads() - before)
