"""A user's own agent, as the testing guide shows it: it averages sensor readings.

``Averager`` takes :class:`Reading` messages, and every ``flush_every``
seconds (a repeating timer) sends one :class:`Summary` per sensor to the
agent named ``sink``, then starts over. Its sums are in memory: a crash or
restart loses the readings not yet flushed (the asker of the message that
crashed gets ``AgentCrashed``).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from vibe_actors import Agent, Message, handler

__all__ = ["Averager", "AveragerConfig", "Flush", "Reading", "Recorded", "Summary"]


class AveragerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sink: str = "sink"
    #: Seconds between summaries. Declared a duration, so a wiring may write it with a
    #: unit (``flush_every: 10s``, ``500ms``); a plain number stays seconds.
    flush_every: Annotated[float, msgspec.Meta(gt=0, extra={"duration": "s"})] = 10.0


class Reading(Message):
    sensor: str
    value: float


class Recorded(Message):
    sensor: str
    count: int


class Summary(Message):
    sensor: str
    count: int
    mean: float


class Flush(Message):
    """The timer's self-message."""


class Averager(Agent):
    Config = AveragerConfig

    def on_start(self) -> None:
        self._sums: dict[str, tuple[int, float]] = {}
        self.start_timer("flush", Flush(), self.config.flush_every, repeat=True)

    @handler
    def reading(self, msg: Reading) -> Recorded:
        count, total = self._sums.get(msg.sensor, (0, 0.0))
        self._sums[msg.sensor] = (count + 1, total + msg.value)
        return Recorded(sensor=msg.sensor, count=count + 1)

    @handler
    def flush(self, msg: Flush) -> None:
        sink = self.ref(self.config.sink)
        for sensor, (count, total) in sorted(self._sums.items()):
            sink.tell(Summary(sensor=sensor, count=count, mean=total / count))
        self._sums.clear()
