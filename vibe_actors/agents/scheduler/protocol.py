"""The scheduler agent's protocol: its settings, messages and error replies.

Defined apart from the agent (:mod:`vibe_actors.agents.scheduler`, which
re-exports every name) to keep each module small; other agents import them
from here. ``Cancel``, ``List`` and ``NotFound`` have namesakes in other agents:
the OpenAPI document names those schemas by the module they are imported from,
:mod:`vibe_actors.agents.scheduler`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Union

import msgspec

from vibe_actors import ErrorReply, Message
from vibe_actors._messages import namespaced

if TYPE_CHECKING:
    from vibe_actors.agents.scheduler._store import Entry

__all__ = [
    "Cancel",
    "Cancelled",
    "List",
    "NotFound",
    "InvalidSchedule",
    "InvalidScheduledMessage",
    "Name",
    "Schedule",
    "ScheduleInfo",
    "Scheduled",
    "SchedulerConfig",
    "Schedules",
    "TooManySchedules",
    "UnknownTarget",
    "decode_for",
    "invalid_field",
    "schedule_info",
    "stored_form",
]


_tag = namespaced("scheduler")


class _Message(Message, tag=_tag):
    """Base of the scheduler agent's messages: tagged ``scheduler.<ClassName>`` on the wire,
    named by the class name over HTTP."""


class _ErrorReply(ErrorReply, tag=_tag):
    """Base of the scheduler agent's error replies, tagged like its messages."""


#: A schedule's name, and a target's: 1..256 characters.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class SchedulerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of :class:`Scheduler`."""

    #: Schedules (timers and reminders together) held at most.
    max_schedules: Annotated[int, msgspec.Meta(gt=0)] = 10_000
    #: Shortest ``every`` accepted, seconds.
    min_interval: Annotated[float, msgspec.Meta(gt=0)] = 0.01
    #: Shortest ``every`` accepted from a caller (a request, not trusted code): a
    #: schedule multiplies its caller's requests, so it is bounded in rate...
    caller_min_interval: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    #: ...and in number: schedules held per caller principal (the anonymous one included).
    max_schedules_per_caller: Annotated[int, msgspec.Meta(gt=0)] = 100
    #: On a shared store: seconds between reads of the reminders other replicas wrote.
    sync_interval: Annotated[float, msgspec.Meta(gt=0)] = 1.0

    def __post_init__(self) -> None:
        if self.max_schedules <= 0 or self.max_schedules_per_caller <= 0:
            raise ValueError("max_schedules and max_schedules_per_caller must be > 0")
        for name in ("min_interval", "caller_min_interval", "sync_interval"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value}")


class Schedule(_Message):
    """Tell ``message`` to ``target`` at ``at`` and/or every ``every`` seconds."""

    name: Name
    target: Name
    message: dict[str, Any]
    at: float | None = None
    every: Annotated[float, msgspec.Meta(gt=0)] | None = None
    durable: bool = True


class Scheduled(_Message):
    name: str
    #: Wall-clock seconds of the first delivery.
    next_at: float
    durable: bool


class ScheduleInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    target: str
    message_type: str
    next_at: float
    every: float | None
    durable: bool
    #: Deliveries so far (a reminder's count survives restarts).
    fired: int


class Schedules(_Message):
    items: list[ScheduleInfo]


class UnknownTarget(_ErrorReply):
    """No agent is called ``target``."""

    target: str
    http_status: ClassVar[int] = 404


class InvalidScheduledMessage(_ErrorReply):
    """``target`` does not accept the message; ``detail`` is the decode error."""

    target: str
    http_status: ClassVar[int] = 422


class InvalidSchedule(_ErrorReply):
    """A field of the request breaks its constraint; ``field`` names it."""

    field: str
    http_status: ClassVar[int] = 422


class TooManySchedules(_ErrorReply):
    limit: int
    http_status: ClassVar[int] = 429


# -- validation and views ---------------------------------------------------------


class Cancel(_Message):
    name: Name


class Cancelled(_Message):
    name: str


class List(_Message):
    """Every schedule, soonest first."""


class NotFound(_ErrorReply):
    """No schedule has this name."""

    name: str
    http_status: ClassVar[int] = 404


def schedule_info(entry: Entry) -> ScheduleInfo:
    """What ``List`` shows of a schedule."""
    return ScheduleInfo(
        name=entry.name,
        target=entry.target,
        message_type=str(entry.message.get("type", "")),
        next_at=entry.next_at,
        every=entry.every,
        durable=entry.durable,
        fired=entry.fired,
    )


def decode_for(system: Any, target: str, message: dict[str, Any]) -> Message:
    """``message`` as one of ``target``'s message types.

    Its ``type`` is the type's HTTP name (its class name: what the gateway's route
    and a stored reminder say) or its wire tag (``pubsub.Publish``). Raises
    :class:`UnknownAgent` or ``msgspec.ValidationError``.
    """
    types = tuple(system.message_types(target))
    named = message.get("type")
    if isinstance(named, str):
        by_name = {t.__name__: t for t in types}
        found = by_name.get(named)
        if found is not None and (tag := found.__struct_config__.tag) != named:
            message = {**message, "type": tag}
    decoded: Message = msgspec.convert(message, Union[types])  # noqa: UP007 - a runtime union
    return decoded


def stored_form(message: Message) -> dict[str, Any]:
    """What a schedule keeps of ``message``: its fields, defaults filled in, and its type's
    HTTP name (its class name) as ``type``: the name the API speaks, whatever the wire tag,
    and the form reminders were stored in before tags were namespaced (nothing to migrate)."""
    stored: dict[str, Any] = msgspec.to_builtins(message)
    stored["type"] = type(message).__name__
    return stored


def invalid_field(msg: msgspec.Struct) -> InvalidSchedule | None:
    """The first field breaking its constraint (a message built in process skipped decoding)."""
    try:
        msgspec.convert(msgspec.structs.asdict(msg), type(msg))
    except msgspec.ValidationError as exc:
        text = str(exc)
        path = text.rpartition(" - at `$.")[2].rstrip("`")
        return InvalidSchedule(field=path.split(".")[0].split("[")[0] or "$", detail=text)
    return None
