"""Webhooks: deliver topic events to URLs, signed, retried, guarded.

Protocol:

* ``Subscribe{topic, url, secret}`` -> ``Subscribed{id}``; ``InvalidWebhook``
  (422: not http(s), no host, credentials in the URL, empty topic or
  secret); ``WebhookRefused`` (403: the SSRF guard refuses the host's
  addresses, or it does not resolve: the reply says why); ``WebhooksBusy``
  (503); ``WebhooksNotSaved`` (503). The host is resolved and checked on a
  delivery thread, so the reply comes later (the handler defers it); if the
  ask's deadline passes first, the subscription is still made once the check
  passes.
* ``Unsubscribe{id}`` -> ``Unsubscribed{id}`` or ``UnknownSubscription`` (404).
  Retries already scheduled for it are cancelled; a request in flight ends.
* ``Deliver{topic, data, seq}`` -> ``Queued{deliveries, dropped}``: one delivery
  per subscription of ``topic``.
* pubsub's ``Event{topic, data, seq, published_at}`` is handled like ``Deliver``:
  at start, and whenever a subscription adds a topic, the agent subscribes
  itself to that topic at the pubsub agent ``config.pubsub`` (so publishers
  just ``Publish`` there). If that agent is absent the subscribe fails with a
  warning (``webhooks_pubsub_unavailable``) and ``Deliver`` keeps working; the
  next start (or new topic) tries again. When a topic's last subscription
  goes, the agent unsubscribes from it. Because this agent subscribes for
  the caller of ``Subscribe``, that caller must be allowed to send
  ``Subscribe`` to the pubsub agent itself: otherwise the reply is
  ``Forbidden`` (403) and nothing is subscribed (no confused deputy; see
  :mod:`vibe_actors._authz`).
* ``Deliveries{id, limit}`` -> ``DeliveriesReply``: the last ``limit``
  attempts (all subscriptions, or subscription ``id``) and each
  subscription's circuit state.

Each delivery is an HTTP POST of ``{"id", "topic", "seq", "data"}`` as JSON,
with ``X-Vibe-Signature: sha256=<hex HMAC-SHA256 of the body keyed by the
secret>``, ``X-Vibe-Delivery`` (the id, the same on every retry, for
de-duplication) and ``X-Vibe-Attempt``. 2xx is delivered. A network error, a
timeout, 408, 425, 429 or 5xx is retried after ``backoff_initial *
backoff_multiplier ** (attempt - 1)`` seconds (at most ``backoff_max``), up
to ``max_attempts`` attempts; other statuses (redirects included: they are
not followed) fail at once. Each URL has a circuit breaker: after
``breaker_threshold`` consecutive retryable failures it opens, and an attempt
while it is open is not sent (it counts as a failed attempt, outcome
``circuit_open``); after ``breaker_cooldown`` seconds one trial goes through
(half-open): success closes it, failure opens it again. Before every request
the SSRF guard (:mod:`vibe_actors.agents._http_client`) resolves the host
and the request goes to the checked address.

Threads: HTTP never runs in the agent's thread. ``workers`` daemon threads
(named ``webhooks:<agent>#<incarnation>:<n>``) owned by the incarnation do the resolving
and posting and report back with ``tell``; they are stopped in ``on_stop``
and ``on_failure`` (a request in flight finishes within its timeout and its
result is discarded). At most ``max_pending`` deliveries are unfinished at a
time; more are dropped (recorded, counted in ``Queued.dropped``).

Across a restart: subscriptions survive (with ``persist``, the default, they
are written atomically to ``<data_dir>/webhooks/<name>.json`` with mode
0600, secrets included, before the reply; otherwise they are lost).
Delivery history, circuit states, scheduled retries and deliveries in flight
are per incarnation and lost (delivery is at most once past a crash). A
subscribe whose check was pending gets ``Unavailable``.

Secrets are never logged or returned: only ids, topics and URL origins
(``scheme://host:port``) appear in logs, replies and errors.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import msgspec

from vibe_actors import Agent, ErrorReply, Forbidden, Message, Unavailable, handler
from vibe_actors.agents import pubsub
from vibe_actors.agents._http_client import PinnedClient, parse_allow, url_problem
from vibe_actors.agents._webhooks_delivery import (
    Attempted,
    Breaker,
    Check,
    Checked,
    Outcome,
    origin,
)
from vibe_actors.agents._webhooks_engine import Engine, _Retry

__all__ = [
    "Breaker",
    "Deliver",
    "Deliveries",
    "DeliveriesReply",
    "DeliveryRecord",
    "InvalidWebhook",
    "Queued",
    "Subscribe",
    "Subscribed",
    "UnknownSubscription",
    "Unsubscribe",
    "Unsubscribed",
    "WebhookRefused",
    "Webhooks",
    "WebhooksBusy",
    "WebhooksConfig",
    "WebhooksNotSaved",
]


class WebhooksConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of :class:`Webhooks` (times in seconds)."""

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
    breaker_threshold: int = 5
    breaker_cooldown: float = 30.0
    max_pending: int = 10_000
    history: int = 1_000
    persist: bool = True
    user_agent: str = "vibe-actors-webhooks/1"

    def __post_init__(self) -> None:
        parse_allow(self.allow)
        if min(self.workers, self.max_attempts, self.breaker_threshold, self.history) < 1:
            raise ValueError("workers, max_attempts, breaker_threshold and history must be >= 1")
        if min(self.timeout, self.connect_timeout) <= 0 or self.max_pending < 1:
            raise ValueError("timeouts must be > 0 and max_pending >= 1")
        if self.backoff_initial < 0 or self.backoff_multiplier < 1 or self.breaker_cooldown < 0:
            raise ValueError("backoff_initial, breaker_cooldown >= 0 and backoff_multiplier >= 1")


# -- messages ---------------------------------------------------------------------


class Subscribe(Message):
    """POST every event of ``topic`` to ``url``, signed with ``secret``."""

    topic: str
    url: str
    secret: str
    sensitive_fields: ClassVar[frozenset[str]] = frozenset({"secret"})

    def __repr__(self) -> str:
        return f"Subscribe(topic={self.topic!r}, url={origin(self.url)!r}, secret=<redacted>)"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [("topic", self.topic), ("url", origin(self.url))]


class Subscribed(Message):
    id: str


class Unsubscribe(Message):
    id: str


class Unsubscribed(Message):
    id: str


class Deliver(Message):
    """An event of ``topic`` to deliver to its subscriptions (pubsub's ``Event`` shape)."""

    topic: str
    data: Any = None
    seq: int | None = None


class Queued(Message):
    """Delivery ids started for the event; ``dropped``: refused because ``max_pending``."""

    deliveries: list[str]
    dropped: int = 0


class Deliveries(Message):
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


class DeliveriesReply(Message):
    deliveries: list[DeliveryRecord]
    #: subscription id -> closed | open | half_open (of its URL's breaker).
    circuits: dict[str, str]


class InvalidWebhook(ErrorReply):
    http_status: ClassVar[int] = 422


class WebhookRefused(ErrorReply):
    """The SSRF guard refuses the URL's host (``detail`` says which address and why)."""

    http_status: ClassVar[int] = 403


class UnknownSubscription(ErrorReply):
    id: str
    http_status: ClassVar[int] = 404


class WebhooksBusy(ErrorReply):
    http_status: ClassVar[int] = 503


class WebhooksNotSaved(ErrorReply):
    http_status: ClassVar[int] = 503


# -- the agent ----------------------------------------------------------------------------


class Webhooks(Agent[Subscribe | Unsubscribe | Deliver | pubsub.Event | Deliveries]):
    """Outbound webhook delivery (see the module docstring for the whole contract).

    It answers the public protocol; the subscriptions, deliveries, breakers
    and history belong to its engine (``_webhooks_engine.Engine``, one per
    incarnation).
    """

    Config: ClassVar = WebhooksConfig
    #: How host names are resolved (``socket.getaddrinfo``); tests substitute their own.
    resolver: ClassVar[Callable[..., Any]] = staticmethod(socket.getaddrinfo)

    def on_start(self) -> None:
        settings = self._settings = self.config
        self._allow = parse_allow(settings.allow)
        path = (
            Path(self.system.config.data_dir) / "webhooks" / f"{self.name}.json"
            if settings.persist
            else None
        )
        self._engine = Engine(self, settings, path, self._make_client, DeliveryRecord)
        self.log.info("webhooks_started", subscriptions=len(self._engine.subs))

    def _make_client(self) -> PinnedClient:
        s = self._settings
        return PinnedClient(
            allow=self._allow,
            timeout=s.timeout,
            connect_timeout=s.connect_timeout,
            user_agent=s.user_agent,
            resolver=self.resolver,
        )

    def on_stop(self) -> None:
        self._release("stopped")

    def on_failure(self, error: BaseException) -> None:
        self._release("crashed")

    def _release(self, why: str) -> None:
        engine = self._engine
        engine.workers.stop()
        for deferred, _ in engine.checks.values():
            deferred.resolve(
                Unavailable(agent=self.name, reason=f"webhooks {why} during the check")
            )
        engine.checks.clear()
        if engine.pending:
            self.log.warning("webhook_deliveries_abandoned", count=len(engine.pending), reason=why)

    # -- subscriptions ---------------------------------------------------------------

    @handler
    def subscribe(
        self, msg: Subscribe
    ) -> (
        Subscribed
        | InvalidWebhook
        | WebhookRefused
        | WebhooksBusy
        | WebhooksNotSaved
        | Forbidden
        | None
    ):
        problem = url_problem(msg.url) or _empty(topic=msg.topic, secret=msg.secret)
        if problem is not None:
            return InvalidWebhook(detail=problem)
        where = self._settings.pubsub
        denied = self.system.authorize(self.caller, where, "Subscribe", self.name)
        if denied is not None:
            return Forbidden(agent=where, message_type="Subscribe", detail=denied)
        engine = self._engine
        if len(engine.checks) + len(engine.pending) >= self._settings.max_pending:
            return WebhooksBusy(detail="too many deliveries and checks pending; retry later")
        token = uuid.uuid4().hex
        engine.checks[token] = (self.defer(), msg)
        engine.workers.submit(Check(token, msg.url))
        return None  # the reply follows the check (see _checked)

    @handler
    def _checked(self, msg: Checked) -> None:
        entry = self._engine.checks.pop(msg.token, None)
        if msg.incarnation != self.incarnation or entry is None:
            return
        deferred, request = entry
        if msg.refusal is not None:
            self.log.info("webhook_refused", topic=request.topic, origin=origin(request.url),
                          reason=msg.refusal)  # fmt: skip
            deferred.resolve(WebhookRefused(detail=msg.refusal))
            return
        sub = self._engine.add(request)
        if sub is None:
            deferred.resolve(WebhooksNotSaved(detail="cannot write the subscriptions file"))
            return
        deferred.resolve(Subscribed(id=sub.id))

    @handler
    def unsubscribe(
        self, msg: Unsubscribe
    ) -> Unsubscribed | UnknownSubscription | WebhooksNotSaved:
        sub = self._engine.subs.get(msg.id)
        if sub is None:
            return UnknownSubscription(id=msg.id, detail=f"no subscription {msg.id!r}")
        if not self._engine.remove(sub):
            return WebhooksNotSaved(detail="cannot write the subscriptions file")
        return Unsubscribed(id=sub.id)

    # -- deliveries ----------------------------------------------------------------------

    @handler
    def deliver(self, msg: Deliver) -> Queued:
        started, dropped = self._engine.deliver(msg)
        return Queued(deliveries=started, dropped=dropped)

    @handler
    def event(self, msg: pubsub.Event) -> Queued:
        """An event of a topic this agent follows at pubsub: delivered like ``Deliver``."""
        return self.deliver(Deliver(topic=msg.topic, data=msg.data, seq=msg.seq))

    @handler
    def _attempted(self, msg: Attempted) -> None:
        self._engine.attempted(msg)

    @handler
    def _retry(self, msg: _Retry) -> None:
        self._engine.retry(msg.delivery)

    @handler
    def deliveries(self, msg: Deliveries) -> DeliveriesReply:
        engine = self._engine
        records = [r for r in engine.history if msg.id is None or r.subscription == msg.id]
        limit = max(0, msg.limit)
        return DeliveriesReply(
            deliveries=records[-limit:] if limit else [], circuits=engine.circuits()
        )


def _empty(**fields: str) -> str | None:
    for name, value in fields.items():
        if not value:
            return f"the {name} must not be empty"
    return None
