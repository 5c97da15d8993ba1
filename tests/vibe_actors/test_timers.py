"""Agent timers: one-shot, periodic, cancelled on stop and restart."""

from __future__ import annotations

import threading

from vibe_actors import Agent, Ping, SupervisorSpec, WorkerSpec, handler
from vibe_actors._timers import TimerService

from tests.vibe_actors.agents import Boom, Tick
from tests.vibe_actors.test_supervisor import NO_BACKOFF


class Ticker(Agent):
    """Starts a periodic timer; reports each tick with its incarnation."""

    def on_start(self) -> None:
        self.start_timer("tick", Tick(n=self.incarnation), 0.01, repeat=True)
        self.start_timer("once", Tick(n=-self.incarnation), 0.01)

    @handler
    def tick(self, msg: Tick) -> None:
        self.config(msg.n, self.incarnation)

    @handler
    def boom(self, msg: Boom) -> None:
        raise RuntimeError("boom")


def test_periodic_timer_repeats_and_is_cancelled_on_restart(make_system):
    seen: list[tuple[int, int]] = []
    cond = threading.Condition()

    def record(n: int, incarnation: int) -> None:
        with cond:
            seen.append((n, incarnation))
            cond.notify_all()

    spec = SupervisorSpec(
        name="sup",
        backoff=NO_BACKOFF,
        children=(WorkerSpec(name="t", agent=Ticker, config=record),),
    )
    system = make_system(spec, serialize_messages=False)
    with cond:
        assert cond.wait_for(lambda: sum(1 for n, _ in seen if n == 1) >= 3, 5)
        assert (-1, 1) in seen
    system.tell("t", Boom())
    assert system.ask("t", Ping()).incarnation == 2
    with cond:
        assert cond.wait_for(lambda: sum(1 for n, _ in seen if n == 2) >= 3, 5)
        cut = len(seen)
        assert cond.wait_for(lambda: sum(1 for n, _ in seen[cut:] if n == 2) >= 3, 5)
        # After the restart, no tick of the first incarnation's timers arrives.
        assert all(n in (2, -2) for n, _ in seen[cut:])
        assert all(n == incarnation or n == -incarnation for n, incarnation in seen)


def test_timer_service_runs_in_order_and_survives_a_failing_callback():
    now = [0.0]
    service = TimerService(lambda: now[0])
    order: list[str] = []
    done = threading.Event()

    def failing() -> None:
        raise ValueError("callback bug")

    service.call_later(2.0, order.append, "second")
    service.call_later(1.0, order.append, "first")
    service.call_later(1.5, failing)
    cancelled = service.call_later(1.2, order.append, "cancelled")
    cancelled.cancel()
    service.call_later(3.0, done.set)
    assert service.pending() == 4
    now[0] = 10.0
    service.wake()
    assert done.wait(5)
    service.stop()
    assert order == ["first", "second"]


class SlowStarter(Agent):
    """Starts a one-shot timer in on_start, then takes longer than its delay to finish."""

    def on_start(self) -> None:
        self.start_timer("once", Tick(n=self.incarnation), 0.001)
        threading.Event().wait(0.05)  # the timer fires while the agent is still starting

    @handler
    def tick(self, msg: Tick) -> None:
        self.config.set()


def test_a_timer_that_fires_during_on_start_is_handled_once_serving(make_system):
    fired = threading.Event()
    make_system([WorkerSpec(name="s", agent=SlowStarter, config=fired)], serialize_messages=False)
    assert fired.wait(5)
