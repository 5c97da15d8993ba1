"""The webhooks agent's dispatcher: subscriptions, deliveries in flight, breakers, history.

The :class:`~vibe_actors.agents.webhooks.Webhooks` agent owns one
:class:`WebhookDispatcher` per incarnation and delegates to it everything past its
public protocol: following topics at pubsub, adding and removing
subscriptions (written to the store before the change counts), taking the
subscriptions other replicas wrote (:meth:`WebhookDispatcher.sync`), starting
deliveries, ending attempts (retry after a backoff, or final) and recording
them. Used from the agent's thread only; it acts through the agent (``ref``,
timers, ``log``, clock), and HTTP runs on its :class:`Workers`. The
subscriptions are read from the store at every start; everything else here
belongs to one incarnation and is lost with it.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

from opentelemetry.trace import SpanKind

from vibe_actors import Agent, Caller, Deferred, ErrorReply, _tracing, backoff_delay, encode_json
from vibe_actors.agents.pubsub import protocol as pubsub
from vibe_actors.agents.webhooks._delivery import (
    Attempted,
    Breaker,
    Outcome,
    Pending,
    Post,
    Workers,
    is_retryable,
    origin,
)
from vibe_actors.agents.webhooks._http_client import (
    SIGNATURE_HEADER,
    PinnedClient,
    sign,
    standard_signature,
)
from vibe_actors.agents.webhooks._metrics import Metrics
from vibe_actors.agents.webhooks._store import Subscription, SubscriptionStore
from vibe_actors.agents.webhooks.protocol import Deliver, DeliveryRecord, Subscribe, WebhooksConfig

CLIENT = SpanKind.CLIENT

__all__ = ["PendingCheck", "WebhookDispatcher"]


class PendingCheck(NamedTuple):
    """A ``Subscribe`` whose URL is being checked, with whom it was asked for."""

    deferred: Deferred
    request: Subscribe
    caller: Caller | None
    request_id: str | None


class WebhookDispatcher:
    """Subscriptions and deliveries of one incarnation of the webhooks agent."""

    def __init__(
        self,
        agent: Agent,
        settings: WebhooksConfig,
        store: SubscriptionStore | None,
        subs: dict[str, Subscription],
        make_client: Callable[[], PinnedClient],
        retry_later: Callable[[str, float], None],
        metrics: Metrics,
    ) -> None:
        self._agent = agent
        self._settings = settings
        #: Where subscriptions are kept (None: ``persist`` off, in memory only).
        self._store = store
        #: ``retry_later(delivery, delay)`` starts the agent's timer for a retry (its ``_Retry``).
        self._retry_later = retry_later
        self._metrics = metrics
        self.subs = subs
        self._count()
        self.pending: dict[str, Pending] = {}
        self.checks: dict[str, PendingCheck] = {}
        self._breakers: dict[str, Breaker] = {}
        self.history: deque[DeliveryRecord] = deque(maxlen=settings.history)
        self.workers = Workers(
            agent.name, settings.workers, make_client, agent.ref(agent.name), agent.incarnation
        )
        for topic in sorted({sub.topic for sub in self.subs.values()}):
            self._follow(topic)

    def _follow(self, topic: str, *, unfollow: bool = False) -> None:
        """(Un)subscribe the agent to ``topic`` at the pubsub agent, without waiting."""
        request = pubsub.Unsubscribe if unfollow else pubsub.Subscribe
        agent = self._agent
        log, where = agent.log, self._settings.pubsub

        def answered(reply: Any) -> None:
            # In pubsub's thread (or this one): only logs, never touches the agent's state.
            if isinstance(reply, ErrorReply) and not isinstance(reply, pubsub.NotSubscribed):
                log.warning("webhooks_pubsub_unavailable", pubsub=where, topic=topic,
                            error=type(reply).__name__, detail=reply.detail)  # fmt: skip

        agent.ref(where).ask_future(request(topic=topic, subscriber=agent.name), callback=answered)

    # -- subscriptions ---------------------------------------------------------------

    def add(self, request: Subscribe, caller: Caller | None) -> Subscription:
        """Subscribe for ``caller`` (the URL passed its check).

        Raises StoreError if it cannot be stored: nothing is kept then.
        """
        sub = Subscription(uuid.uuid4().hex, request.topic, request.url, request.secret, caller)
        if self._store is not None:
            self._store.add(sub)
        self._take({**self.subs, sub.id: sub})
        self._agent.log.info("webhook_subscribed", subscription=sub.id, topic=sub.topic,
                             origin=origin(sub.url))  # fmt: skip
        return sub

    def remove(self, sub: Subscription) -> None:
        """Unsubscribe ``sub`` (one of :attr:`subs`; another replica may have removed it from
        the store already). Raises StoreError if it cannot be removed: it is kept then."""
        if self._store is not None:
            self._store.remove(sub.id)
        self._take({id: s for id, s in self.subs.items() if id != sub.id})
        self._agent.log.info("webhook_unsubscribed", subscription=sub.id, topic=sub.topic)

    def sync(self) -> int:
        """Take the subscriptions as stored now (other replicas add and remove them); returns
        how many changed. Raises StoreError if they cannot be read (nothing changes then)."""
        assert self._store is not None  # only a shared store is synced
        stored = self._store.load()
        changed = len(stored.keys() ^ self.subs.keys())
        if changed:
            self._take(stored)
        return changed

    def _take(self, subs: dict[str, Subscription]) -> None:
        """Make ``subs`` the subscriptions held, following the topics that came and
        unfollowing those that went (retries of a subscription gone are cancelled when due)."""
        before = {s.topic for s in self.subs.values()}
        self.subs = subs
        after = {s.topic for s in subs.values()}
        for topic in sorted(after - before):
            self._follow(topic)
        for topic in sorted(before - after):
            self._follow(topic, unfollow=True)
        self._count()

    def _count(self) -> None:
        self._metrics.subscriptions.labels(self._agent.name).set(len(self.subs))

    def refused(self, limit: str) -> None:
        """Count a ``Subscribe`` refused by the setting ``limit``."""
        self._metrics.refused.labels(self._agent.name, limit).inc()

    # -- deliveries ----------------------------------------------------------------------

    def deliver(self, msg: Deliver) -> tuple[list[str], int]:
        """Start a delivery per subscription of the topic: (the ids started, how many dropped)."""
        started, dropped = [], 0
        for sub in [s for s in self.subs.values() if s.topic == msg.topic]:
            pending = self._new_delivery(sub, msg)
            if len(self.pending) + len(self.checks) >= self._settings.max_pending:
                self._record(pending, "dropped", final=True, error="max_pending reached")
                dropped += 1
                continue
            self.pending[pending.delivery] = pending
            started.append(pending.delivery)
            self._dispatch(pending)
        return started, dropped

    def _new_delivery(self, sub: Subscription, msg: Deliver) -> Pending:
        delivery = uuid.uuid4().hex
        body = encode_json({"id": delivery, "topic": msg.topic, "seq": msg.seq, "data": msg.data})
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(sub.secret, body),
            "X-Vibe-Delivery": delivery,
        }
        return Pending(
            delivery, sub.id, msg.topic, msg.seq, sub.url, body, headers, sub.secret,
            traceparent=_tracing.current_traceparent(),
        )  # fmt: skip

    def _breaker(self, url: str) -> Breaker:
        breaker = self._breakers.get(url)
        if breaker is None:
            s = self._settings
            breaker = self._breakers[url] = Breaker(s.breaker_threshold, s.breaker_cooldown)
        return breaker

    def _dispatch(self, pending: Pending) -> None:
        pending.attempt += 1
        breaker = self._breaker(pending.url)
        now = self._agent.system.clock()
        if not breaker.allow(now):
            self._failed(
                pending, "circuit_open", None, "circuit open", True, breaker.reopens_in(now)
            )
            return
        timestamp = int(time.time())  # the attempt's: receivers refuse stale ones (replays)
        headers = {
            **pending.headers,
            "X-Vibe-Attempt": str(pending.attempt),
            "webhook-id": pending.delivery,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": standard_signature(
                pending.secret, pending.delivery, timestamp, pending.body
            ),
        }
        attributes = {
            "http.request.method": "POST", "server.address": origin(pending.url),
            "vibe.webhook.delivery": pending.delivery, "vibe.webhook.attempt": pending.attempt,
        }  # fmt: skip
        pending.span = _tracing.start("webhook POST", pending.traceparent, attributes, CLIENT)
        if pending.span is not None:  # the receiver's spans join the trace (traceparent)
            headers.update(_tracing.headers_of(pending.span))
        self.workers.submit(
            Post(pending.delivery, pending.attempt, pending.url, pending.body, headers)
        )

    def attempted(self, msg: Attempted) -> None:
        """A worker reports an attempt: feed the URL's breaker, then finish or retry."""
        pending = self.pending.get(msg.delivery)
        if msg.incarnation != self._agent.incarnation or pending is None:
            return
        retryable = is_retryable(msg.outcome, msg.status)
        if pending.span is not None:
            if msg.status is not None:
                pending.span.set_attribute("http.response.status_code", msg.status)
            _tracing.finish(pending.span, msg.outcome, msg.error)
            pending.span = None
        breaker = self._breaker(pending.url)
        if msg.outcome in ("delivered", "http_error") and not retryable:
            breaker.success()  # the endpoint answered
        elif retryable:
            breaker.failure(self._agent.system.clock())
        else:
            breaker.release()
        if msg.outcome == "delivered":
            self._record(pending, "delivered", final=True, status=msg.status)
            del self.pending[pending.delivery]
            return
        self._failed(pending, msg.outcome, msg.status, msg.error, retryable, 0.0)

    def _failed(
        self,
        pending: Pending,
        outcome: Outcome,
        status: int | None,
        error: str | None,
        retryable: bool,
        at_least: float,
    ) -> None:
        s = self._settings
        if retryable and pending.attempt < s.max_attempts and pending.subscription in self.subs:
            delay = backoff_delay(
                pending.attempt,
                initial=s.backoff_initial,
                maximum=s.backoff_max,
                multiplier=s.backoff_multiplier,
                jitter=s.backoff_jitter,
            )
            delay = max(delay, at_least)
            self._record(pending, outcome, final=False, status=status, error=error, retry_in=delay)
            self._retry_later(pending.delivery, delay)
            return
        self._record(pending, outcome, final=True, status=status, error=error)
        del self.pending[pending.delivery]
        self._agent.log.warning("webhook_failed", delivery=pending.delivery, topic=pending.topic,
                                origin=origin(pending.url), attempts=pending.attempt,
                                outcome=outcome, status=status)  # fmt: skip

    def retry(self, delivery: str) -> None:
        """A retry's backoff is over: attempt again, unless the subscription is gone."""
        pending = self.pending.get(delivery)
        if pending is None:
            return
        if pending.subscription not in self.subs:
            self._record(pending, "cancelled", final=True, error="unsubscribed")
            del self.pending[pending.delivery]
            return
        self._dispatch(pending)

    def _record(self, pending: Pending, outcome: Outcome, *, final: bool, **fields: Any) -> None:
        self.history.append(
            DeliveryRecord(
                delivery=pending.delivery,
                subscription=pending.subscription,
                topic=pending.topic,
                seq=pending.seq,
                origin=origin(pending.url),
                attempt=pending.attempt,
                outcome=outcome,
                final=final,
                at=time.time(),
                **fields,
            )
        )

    def circuits(self) -> dict[str, str]:
        """Subscription id -> the state of its URL's breaker (closed if it has none yet)."""
        now = self._agent.system.clock()
        return {
            sub.id: self._breakers[sub.url].state(now) if sub.url in self._breakers else "closed"
            for sub in self.subs.values()
        }
