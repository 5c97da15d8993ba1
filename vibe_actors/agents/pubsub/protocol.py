"""The pubsub agent's settings, messages and replies (re-exported by
:mod:`vibe_actors.agents.pubsub`, which is where to import them from).

Other agents import these names from here, never the agent's package. Some of
them have namesakes in other agents (``Subscribe``...): the OpenAPI document
names those schemas by the module they are imported from, :mod:`vibe_actors.agents.pubsub`
(see :func:`vibe_actors.agents.schema.openapi`)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec

from vibe_actors import ErrorReply, Message
from vibe_actors._messages import namespaced

__all__ = [
    "MAX_TOPIC_LENGTH",
    "AgentName",
    "Event",
    "InvalidTopic",
    "PubSubConfig",
    "PubSubNotSaved",
    "Publish",
    "Published",
    "TooManyTopics",
    "TopicInfo",
    "TopicList",
    "TopicName",
    "Topics",
    "Subscribe",
    "Subscribed",
    "Unsubscribe",
    "Unsubscribed",
    "NotSubscribed",
]


_tag = namespaced("pubsub")


class _Message(Message, tag=_tag):
    """Base of the pubsub agent's messages: tagged ``pubsub.<ClassName>`` on the wire,
    named by the class name over HTTP."""


class _ErrorReply(ErrorReply, tag=_tag):
    """Base of the pubsub agent's error replies, tagged like its messages."""


class PubSubConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of :class:`PubSub` (times in seconds)."""

    #: Events a subscriber may have outstanding before new ones are dropped for it.
    buffer: int = 1000
    #: An event its subscriber has not started within this time expires.
    deliver_timeout: float = 300.0
    persist: bool = True
    #: Sequence numbers reserved per database write (the gap a restart may leave).
    seq_block: int = 1000
    recheck_interval: float = 0.05
    #: Topics held at most (each is kept, and persisted once published to).
    max_topics: int = 10_000
    #: Agent subscribers of one topic at most.
    max_subscribers: int = 1_000

    def __post_init__(self) -> None:
        if min(self.buffer, self.seq_block, self.max_topics, self.max_subscribers) < 1:
            raise ValueError("buffer, seq_block, max_topics and max_subscribers must be >= 1")
        if self.deliver_timeout <= 0 or self.recheck_interval <= 0:
            raise ValueError("deliver_timeout and recheck_interval must be > 0")


# -- messages ---------------------------------------------------------------------


#: The longest topic name accepted.
MAX_TOPIC_LENGTH = 256
TopicName = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TOPIC_LENGTH)]
AgentName = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class Publish(_Message):
    topic: TopicName
    data: Any = None


class Published(_Message):
    topic: str
    subscribers: int  #: recipients the event was handed to (agents and listeners)
    seq: int
    dropped: int = 0  #: subscribers whose buffer was full


class Event(_Message):
    """One published event, as each subscriber receives it."""

    topic: str
    data: Any
    seq: int
    published_at: float  #: wall-clock time (time.time())


class Topics(_Message):
    pass


class TopicInfo(msgspec.Struct, frozen=True, kw_only=True):
    topic: str
    subscribers: int
    listeners: int
    seq: int  #: the last sequence number published (0: none since the start)


class TopicList(_Message):
    topics: list[TopicInfo]


class InvalidTopic(_ErrorReply):
    http_status: ClassVar[int] = 422


class PubSubNotSaved(_ErrorReply):
    http_status: ClassVar[int] = 503


class TooManyTopics(_ErrorReply):
    """A new topic, or a new subscriber of a topic, past the configured maximum."""

    limit: int
    http_status: ClassVar[int] = 429


# -- messages of the same names as other agents' (see the module docstring)


class Subscribe(_Message):
    topic: TopicName
    subscriber: AgentName


class Subscribed(_Message):
    topic: str
    subscriber: str


class Unsubscribe(_Message):
    topic: TopicName
    subscriber: AgentName


class Unsubscribed(_Message):
    topic: str
    subscriber: str


class NotSubscribed(_ErrorReply):
    topic: str
    subscriber: str
    http_status: ClassVar[int] = 404
