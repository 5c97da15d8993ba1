"""PubSub fan-out for benchmarks/scale.py (imported only when vibe_actors.agents.pubsub exists).

One publisher asks ``Publish`` ``events`` times in a row; every subscriber
agent counts the events it handled. The figure is deliveries per second from
the first publish to the last handled event. The in-run baseline is the
same fan-out done by hand: the publisher sends the same ``Event`` to each
subscriber's ref itself with ``ask_future``, as pubsub does, without waiting
(no topic, no subscriber table, no outstanding-event accounting).
"""

from __future__ import annotations

import tempfile
import threading
import time
from typing import Any

import vibe_actors as va
from vibe_actors.agents.pubsub import Event, Publish, Published, PubSub, PubSubConfig, Subscribe

from benchmarks._common import percentiles

__all__ = ["fanout"]

perf = time.perf_counter


class Tally:
    """Deliveries counted across all subscriber threads; ``done`` once ``target`` is reached."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.target = -1
        self.done = threading.Event()

    def expect(self, target: int) -> None:
        with self.lock:
            self.count, self.target = 0, target
            self.done.clear()

    def add(self) -> None:
        with self.lock:
            self.count += 1
            if self.count == self.target:
                self.done.set()


TALLY = Tally()


class Sink(va.Agent):
    @va.handler
    def event(self, msg: Event) -> None:
        TALLY.add()


def _by_hand(refs: list[va.Ref], events: int) -> float:
    TALLY.expect(len(refs) * events)
    start = perf()
    for seq in range(events):
        event = Event(topic="bench", data={"seq": seq}, seq=seq + 1, published_at=time.time())
        for ref in refs:
            ref.ask_future(event)
    TALLY.done.wait(300)
    return len(refs) * events / (perf() - start)


def _published(pubsub: va.Ref, subscribers: int, events: int) -> dict[str, Any]:
    TALLY.expect(subscribers * events)
    calls = []
    start = perf()
    for seq in range(events):
        began = perf()
        reply = pubsub.ask(Publish(topic="bench", data={"seq": seq}))
        calls.append(perf() - began)
        assert isinstance(reply, Published) and reply.dropped == 0, reply
    TALLY.done.wait(300)
    return {
        "deliveries_per_s": subscribers * events / (perf() - start),
        "publish": percentiles(calls),
    }


def fanout(subscribers: int, events: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-pubsub-") as data_dir:
        specs = [
            va.WorkerSpec(name="pubsub", agent=PubSub, config=PubSubConfig(persist=False)),
            *(va.WorkerSpec(name=f"sink{i}", agent=Sink) for i in range(subscribers)),
        ]
        config = va.SystemConfig(data_dir=data_dir, ask_timeout=120.0, start_timeout=120.0)
        system = va.ActorSystem(specs, config).start()
        try:
            pubsub = system.ref("pubsub")
            refs = [system.ref(f"sink{i}") for i in range(subscribers)]
            for ref in refs:
                pubsub.ask(Subscribe(topic="bench", subscriber=ref.name))
            _published(pubsub, subscribers, min(events, 10))  # warm-up
            result = _published(pubsub, subscribers, events)
            result["by_hand_deliveries_per_s"] = _by_hand(refs, events)
        finally:
            system.shutdown()
    result["vs_by_hand"] = result["deliveries_per_s"] / result["by_hand_deliveries_per_s"]
    return result
