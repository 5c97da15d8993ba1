"""The webhooks agent's settings, replies and delivery messages (re-exported by
:mod:`vibe_actors.agents.webhooks`, which is where to import them from).

Other agents import these names from here, never the agent's package. Some of
them have namesakes in other agents (``Subscribe``...): the OpenAPI document
names those schemas by the module they are imported from, :mod:`vibe_actors.agents.webhooks`
(see :func:`vibe_actors.agents.schema.openapi`)."""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar

import msgspec

from vibe_actors import ErrorReply, Message
from vibe_actors._messages import namespaced
from vibe_actors.agents.webhooks._delivery import Outcome, origin
from vibe_actors.agents.webhooks._http_client import parse_allow

__all__ = [
    "Deliver",
    "Deliveries",
    "DeliveriesReply",
    "DeliveryRecord",
    "InvalidWebhook",
    "Queued",
    "TooManySubscriptions",
    "UnknownSubscription",
    "WebhookRefused",
    "WebhooksBusy",
    "WebhooksConfig",
    "WebhooksNotSaved",
    "Subscribe",
    "Subscribed",
    "Unsubscribe",
    "Unsubscribed",
]


_tag = namespaced("webhooks")


class _Message(Message, tag=_tag):
    """Base of the webhooks agent's messages: tagged ``webhooks.<ClassName>`` on the wire,
    named by the class name over HTTP."""


class _ErrorReply(ErrorReply, tag=_tag):
    """Base of the webhooks agent's error replies, tagged like its messages."""


class WebhooksConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of :class:`~vibe_actors.agents.webhooks.Webhooks` (times in seconds)."""

    #: The pubsub agent whose topics this agent subscribes to (see ``Event``).
    pubsub: str = "pubsub"
    #: Addresses or CIDR networks the SSRF guard lets through anyway.
    allow: list[str] = []
    workers: int = 4
    timeout: float = 10.0
    connect_timeout: float = 3.0
    max_attempts: int = 5
    backoff_initial: float = 1.0
    backoff_multiplier: float = 2.0
    backoff_max: float = 300.0
    #: Each retry's delay is stretched by up to this fraction, at random (see
    #: :func:`vibe_actors.backoff_delay`): deliveries that failed together retry apart.
    backoff_jitter: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.2
    breaker_threshold: int = 5
    breaker_cooldown: float = 30.0
    max_pending: int = 10_000
    history: int = 1_000
    #: Keep subscriptions in the store (see the agent's docstring); False: in memory only.
    persist: bool = True
    #: On a shared store: seconds between reads of the subscriptions other replicas wrote.
    sync_interval: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    user_agent: str = "vibe-actors-webhooks/1"
    #: Subscriptions held at most (each is kept, secret included, in the store and in
    #: memory): a ``Subscribe`` past it is ``TooManySubscriptions`` (429).
    max_subscriptions: Annotated[int, msgspec.Meta(gt=0)] = 10_000
    #: ...and at most this many per caller principal (trusted code, with no caller, has
    #: only the total): one principal cannot take every slot.
    max_subscriptions_per_caller: Annotated[int, msgspec.Meta(gt=0)] = 100

    def __post_init__(self) -> None:
        parse_allow(self.allow)
        if min(self.workers, self.max_attempts, self.breaker_threshold, self.history) < 1:
            raise ValueError("workers, max_attempts, breaker_threshold and history must be >= 1")
        if not math.isfinite(self.sync_interval) or self.sync_interval <= 0:
            raise ValueError(f"sync_interval must be a finite number > 0, got {self.sync_interval}")
        if min(self.timeout, self.connect_timeout) <= 0 or self.max_pending < 1:
            raise ValueError("timeouts must be > 0 and max_pending >= 1")
        if self.backoff_initial < 0 or self.backoff_multiplier < 1 or self.breaker_cooldown < 0:
            raise ValueError("backoff_initial, breaker_cooldown >= 0 and backoff_multiplier >= 1")
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must be >= backoff_initial")
        if min(self.max_subscriptions, self.max_subscriptions_per_caller) < 1:
            raise ValueError("max_subscriptions and max_subscriptions_per_caller must be >= 1")


# -- messages ---------------------------------------------------------------------


class Deliver(_Message):
    """An event of ``topic`` to deliver to its subscriptions (pubsub's ``Event`` shape)."""

    topic: str
    data: Any = None
    seq: int | None = None


class Queued(_Message):
    """Delivery ids started for the event; ``dropped``: refused because ``max_pending``."""

    deliveries: list[str]
    dropped: int = 0


class Deliveries(_Message):
    """The last ``limit`` attempts, of subscription ``id`` or of all."""

    id: str | None = None
    limit: int = 50


class DeliveryRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt: ``final`` if no retry follows; ``retry_in`` seconds otherwise."""

    delivery: str
    subscription: str
    topic: str
    seq: int | None
    origin: str
    attempt: int
    outcome: Outcome
    final: bool
    status: int | None = None
    error: str | None = None
    retry_in: float | None = None
    at: float = 0.0


class DeliveriesReply(_Message):
    deliveries: list[DeliveryRecord]
    #: subscription id -> closed | open | half_open (of its URL's breaker).
    circuits: dict[str, str]


class InvalidWebhook(_ErrorReply):
    http_status: ClassVar[int] = 422


class WebhookRefused(_ErrorReply):
    """The SSRF guard refuses the URL's host (``detail`` says which address and why)."""

    http_status: ClassVar[int] = 403


class UnknownSubscription(_ErrorReply):
    id: str
    http_status: ClassVar[int] = 404


class WebhooksBusy(_ErrorReply):
    http_status: ClassVar[int] = 503


class WebhooksNotSaved(_ErrorReply):
    http_status: ClassVar[int] = 503


class TooManySubscriptions(_ErrorReply):
    """A ``Subscribe`` while ``limit`` subscriptions are held, in all or by its caller
    (``detail`` says which); ``Unsubscribe`` frees a slot."""

    limit: int
    http_status: ClassVar[int] = 429


# -- messages of the same names as other agents' (see the module docstring)


class Subscribe(_Message):
    """POST every event of ``topic`` to ``url``, signed with ``secret``."""

    topic: str
    url: str
    secret: str
    sensitive_fields: ClassVar[frozenset[str]] = frozenset({"secret"})

    def __repr__(self) -> str:
        return f"Subscribe(topic={self.topic!r}, url={origin(self.url)!r}, secret=<redacted>)"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [("topic", self.topic), ("url", origin(self.url))]


class Subscribed(_Message):
    id: str


class Unsubscribe(_Message):
    id: str


class Unsubscribed(_Message):
    id: str
