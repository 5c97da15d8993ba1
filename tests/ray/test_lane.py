"""The proxy's reply lane: one call at a time in a thread blocked in ray.get; none is lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from vibe_actors.ray import RaySettings
from vibe_actors.ray._lane import ReplyLane


class _Slow:
    def nap(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    def fail(self) -> None:
        raise ValueError("no")


class _Outcomes:
    """What settle received, and when."""

    def __init__(self) -> None:
        self.items: list[tuple[Any, Any, str]] = []
        self.done = threading.Event()

    def settle(self, result: Any, error: Any) -> None:
        self.items.append((result, error, threading.current_thread().name))
        self.done.set()


@pytest.fixture
def slow(ray_settings: RaySettings) -> Iterator[Any]:
    import ray

    actor = ray.remote(_Slow).options(max_restarts=0, max_concurrency=4).remote()
    yield actor
    ray.kill(actor)


def test_lane_takes_one_call_at_a_time_and_frees_itself(slow: Any) -> None:
    lane = ReplyLane("lane-one")
    try:
        first, second = _Outcomes(), _Outcomes()
        assert lane.offer(slow.nap.remote(0.3), first.settle)
        assert not lane.offer(slow.nap.remote(0.0), second.settle)  # busy: caller waits itself
        assert first.done.wait(10)
        assert first.items == [(0.3, None, "vibe:lane-one:ray-replies")]
        deadline = time.monotonic() + 10
        while not lane.offer(slow.nap.remote(0.0), second.settle):  # idle again
            assert time.monotonic() < deadline, "the lane never became idle"
            time.sleep(0.01)
        assert second.done.wait(10) and second.items[0][:2] == (0.0, None)
    finally:
        lane.close()


def test_lane_reports_a_failed_call_as_its_ray_error(slow: Any) -> None:
    import ray.exceptions

    lane = ReplyLane("lane-error")
    try:
        outcome = _Outcomes()
        assert lane.offer(slow.fail.remote(), outcome.settle)
        assert outcome.done.wait(10)
        result, error, _ = outcome.items[0]
        assert result is None and isinstance(error, ray.exceptions.RayTaskError)
    finally:
        lane.close()


def test_closing_hands_an_unanswered_call_to_rays_callback(slow: Any) -> None:
    lane = ReplyLane("lane-close")
    outcome = _Outcomes()
    assert lane.offer(slow.nap.remote(3.0), outcome.settle)
    lane.close(timeout=5)
    assert not any(t.name == "vibe:lane-close:ray-replies" for t in threading.enumerate())
    assert outcome.done.wait(10)  # answered by Ray's callback, not lost
    result, error, thread = outcome.items[0]
    assert (result, error) == (3.0, None) and thread != "vibe:lane-close:ray-replies"
    assert not lane.offer(slow.nap.remote(0.0), outcome.settle)  # closed: never takes more
