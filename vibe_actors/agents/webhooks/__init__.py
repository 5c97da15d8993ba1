"""Webhooks: deliver topic events to URLs, signed, retried, guarded.

Protocol:

* ``Subscribe{topic, url, secret}`` -> ``Subscribed{id}``; ``InvalidWebhook``
  (422: not http(s), no host, credentials in the URL, empty topic or
  secret); ``WebhookRefused`` (403: the SSRF guard refuses the host's
  addresses, or it does not resolve: the reply says why); ``WebhooksBusy``
  (503); ``WebhooksNotSaved`` (503); ``TooManySubscriptions`` (429: at most
  ``max_subscriptions`` in all, and ``max_subscriptions_per_caller`` per
  caller principal; ``Unsubscribe`` frees a slot). The host is resolved and
  checked on a delivery thread, so the reply comes later (the handler defers
  it); if the ask's deadline passes first, the subscription is still made
  once the check passes. The limits are checked when the request arrives and
  again when its check ends (other checks may have ended first).
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
signed per the `Standard Webhooks <https://www.standardwebhooks.com/>`_
specification, so receivers verify it (and reject replays) with its
libraries: ``webhook-id`` (the delivery id, the same on every retry, for
de-duplication), ``webhook-timestamp`` (Unix seconds of the attempt) and
``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, see
:func:`~vibe_actors.agents.webhooks._http_client.standard_signature` for the
key: a ``whsec_<base64>`` secret is used as the specification says, any other
secret's UTF-8 bytes are the key). Also sent: ``X-Vibe-Signature:
sha256=<hex HMAC-SHA256 of the body keyed by the secret>`` (the original
scheme, kept for existing receivers), ``X-Vibe-Delivery`` (the id) and
``X-Vibe-Attempt``. 2xx is delivered. A network error, a
timeout, 408, 425, 429 or 5xx is retried after ``backoff_initial *
backoff_multiplier ** (attempt - 1)`` seconds (at most ``backoff_max``),
stretched by up to ``backoff_jitter`` at random (:func:`vibe_actors.backoff_delay`), up
to ``max_attempts`` attempts; other statuses (redirects included: they are
not followed) fail at once. Each URL has a circuit breaker: after
``breaker_threshold`` consecutive retryable failures it opens, and an attempt
while it is open is not sent (it counts as a failed attempt, outcome
``circuit_open``); after ``breaker_cooldown`` seconds one trial goes through
(half-open): success closes it, failure opens it again. Before every request
the SSRF guard (:mod:`vibe_actors.agents.webhooks._http_client`) resolves the host
and the request goes to the checked address.

Threads: HTTP never runs in the agent's thread. ``workers`` daemon threads
(named ``webhooks:<agent>#<incarnation>:<n>``) owned by the incarnation do the resolving
and posting and report back with ``tell``; they are stopped in ``on_stop``
and ``on_failure`` (a request in flight finishes within its timeout and its
result is discarded). At most ``max_pending`` deliveries are unfinished at a
time; more are dropped (recorded, counted in ``Queued.dropped``).

Across a restart: subscriptions survive (with ``persist``, the default, each
is stored before the reply, secrets and callers included, by the store seam:
the SQLite file ``<data_dir>/<name>.db`` with mode 0600, or the agent's
namespace of the system's PostgreSQL database; without ``persist`` they are
kept in memory only and lost), and count against the limits again. A file
of subscriptions that an older version wrote (``<data_dir>/webhooks/<name>.json``)
is imported at start, in one transaction, and renamed
``<name>.json.migrated`` (see :func:`~vibe_actors.agents.webhooks._store.import_file`).
Delivery history, circuit states, scheduled retries and deliveries in flight
are per incarnation and lost (delivery is at most once past a crash). A
subscribe whose check was pending gets ``Unavailable``.

Storage: a store that cannot be opened (or an old file that cannot be
imported) degrades the agent (``Unavailable`` naming it; the next start tries
again). A subscription that cannot be stored or removed at run time (a full
disk, the database out of reach) is answered ``WebhooksNotSaved`` (503) and
nothing changes; the agent stays up, delivers to the subscriptions it holds,
is reported impaired and resumes by itself once a probe write succeeds
(:mod:`vibe_actors.store._health`).

Replicas (``store: postgresql://...``): every replica's agent of this name
holds the same subscriptions. Each reads the table again every
``sync_interval`` seconds and takes what the others added and removed, so a
subscription made on one replica is delivered to by every replica after
their next sync, and an ``Unsubscribe`` on one stops deliveries on all of
them after theirs (a retry already scheduled is cancelled when it is due). An
``Unsubscribe`` of an id this replica does not hold is tried on the table too,
so it removes a subscription whichever replica made it. Deliveries stay per replica: each
delivers the events published on it (at its own pubsub agent, and the
``Deliver`` asks it gets), with its own history, breakers and retries; an
event is delivered once, by the replica it was published on. The limits are
checked against the subscriptions this replica holds (its own writes and the
last sync), so replicas subscribing at once may together exceed them by what
was added between two syncs. The secrets are in the database: give its
access the care the secrets need.

Secrets are never logged or returned: only ids, topics and URL origins
(``scheme://host:port``) appear in logs, replies and errors.

Metrics: ``vibe_webhooks_subscriptions{agent}``,
``vibe_webhooks_refused_total{agent, limit}`` (``limit``: the setting that refused).
"""

# Past ~400 lines only by the docstring above: it is the agent's whole contract (its
# reference page), and the code it describes is about 340 lines.

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

import msgspec

from vibe_actors import Agent, Caller, Forbidden, Unavailable, handler
from vibe_actors.agents.pubsub import protocol as pubsub
from vibe_actors.agents.webhooks._delivery import Attempted, Breaker, Check, Checked, origin
from vibe_actors.agents.webhooks._dispatcher import PendingCheck, WebhookDispatcher
from vibe_actors.agents.webhooks._http_client import (
    PinnedClient,
    parse_allow,
    secret_problem,
    url_problem,
)
from vibe_actors.agents.webhooks._metrics import build_metrics
from vibe_actors.agents.webhooks._store import (
    Subscription,
    SubscriptionStore,
    import_file,
    legacy_file,
)
from vibe_actors.agents.webhooks.protocol import (
    Deliver,
    Deliveries,
    DeliveriesReply,
    DeliveryRecord,
    InvalidWebhook,
    Queued,
    Subscribe,
    Subscribed,
    TooManySubscriptions,
    UnknownSubscription,
    Unsubscribe,
    Unsubscribed,
    WebhookRefused,
    WebhooksBusy,
    WebhooksConfig,
    WebhooksNotSaved,
)
from vibe_actors.store import (
    ClosesStore,
    GuardedWrites,
    StoreError,
    degrade_for,
    open_store,
)

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
    "TooManySubscriptions",
    "UnknownSubscription",
    "Unsubscribe",
    "Unsubscribed",
    "WebhookRefused",
    "Webhooks",
    "WebhooksBusy",
    "WebhooksConfig",
    "WebhooksNotSaved",
]


# -- internal messages: plain Structs, outside the public protocol (not forgeable over HTTP)


class _Retry(msgspec.Struct, frozen=True):
    """Timer: attempt ``delivery`` again (internal: a plain Struct, not forgeable over HTTP).

    Its class name is a label value of the runtime's message metrics: keep it.
    """

    delivery: str


class _Sync(msgspec.Struct, frozen=True):
    """Timer: read the subscriptions other replicas wrote (a shared store only)."""


# -- the agent ----------------------------------------------------------------------------


class Webhooks(
    GuardedWrites,
    ClosesStore,
    Agent[Subscribe | Unsubscribe | Deliver | pubsub.Event | Deliveries],
):
    """Outbound webhook delivery (see the module docstring for the whole contract).

    It answers the public protocol; the subscriptions, deliveries, breakers
    and history belong to its engine (``_dispatcher.WebhookDispatcher``, one per
    incarnation).
    """

    Config: ClassVar = WebhooksConfig
    #: How host names are resolved (``socket.getaddrinfo``); tests substitute their own.
    resolver: ClassVar[Callable[..., Any]] = staticmethod(socket.getaddrinfo)

    def on_start(self) -> None:
        settings = self._settings = self.config
        self._allow = parse_allow(settings.allow)
        self._engine: WebhookDispatcher | None = None
        self._store: SubscriptionStore | None = None
        subs: dict[str, Subscription] = {}
        if settings.persist:
            try:
                self._store = open_store(SubscriptionStore, self)
                legacy = legacy_file(self.system.config.data_dir, self.name)
                if imported := import_file(self._store, legacy):
                    self.log.info(
                        "webhooks_file_imported", path=str(legacy), subscriptions=imported
                    )
                subs = self._store.load()
            except StoreError as exc:
                self._close()
                degrade_for(self, exc)
                return
        metrics = self.system.shared_metrics("webhooks", build_metrics)
        self._engine = WebhookDispatcher(
            self, settings, self._store, subs, self._make_client, self._retry_later, metrics
        )
        if self._store is not None and self._store.shared:
            self.start_timer("sync", _Sync(), settings.sync_interval, repeat=True)
        self.log.info("webhooks_started", subscriptions=len(subs),
                      store=None if self._store is None else self._store.path)  # fmt: skip

    @property
    def _dispatcher(self) -> WebhookDispatcher:
        assert self._engine is not None  # a degraded agent never reaches a handler
        return self._engine

    def _probe_store_write(self) -> None:
        assert self._store is not None  # only a store's writes fail
        self._store.probe_write()

    def _retry_later(self, delivery: str, delay: float) -> None:
        self.start_timer(("retry", delivery), _Retry(delivery), delay)

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
        self._close()

    def on_failure(self, error: BaseException) -> None:
        self._release("crashed")
        self._close()

    def _release(self, why: str) -> None:
        engine = self._engine
        if engine is None:  # degraded: no threads, nothing pending
            return
        engine.workers.stop()
        for check in engine.checks.values():
            check.deferred.resolve(
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
        | TooManySubscriptions
        | Forbidden
        | None
    ):
        problem = url_problem(msg.url) or _empty(topic=msg.topic) or secret_problem(msg.secret)
        if problem is not None:
            return InvalidWebhook(detail=problem)
        where, caller = self._settings.pubsub, self.caller
        denied = self.system.authorize(caller, where, "Subscribe", self.name)
        if denied is not None:
            return Forbidden(agent=where, message_type="Subscribe", detail=denied)
        env = self.envelope
        request_id = env.request_id if env is not None else None
        # Checked now too, so that a full agent resolves no host for a request it refuses.
        if (full := self._full(msg, caller, request_id)) is not None:
            return full
        engine = self._dispatcher
        if len(engine.checks) + len(engine.pending) >= self._settings.max_pending:
            return WebhooksBusy(detail="too many deliveries and checks pending; retry later")
        token = uuid.uuid4().hex
        engine.checks[token] = PendingCheck(self.defer(), msg, caller, request_id)
        engine.workers.submit(Check(token, msg.url))
        return None  # the reply follows the check (see _checked)

    @handler
    def _checked(self, msg: Checked) -> None:
        entry = self._dispatcher.checks.pop(msg.token, None)
        if msg.incarnation != self.incarnation or entry is None:
            return
        deferred, request = entry.deferred, entry.request
        if msg.refusal is not None:
            self.log.info("webhook_refused", topic=request.topic, origin=origin(request.url),
                          reason=msg.refusal)  # fmt: skip
            deferred.resolve(WebhookRefused(detail=msg.refusal))
            return
        # Other checks may have ended since this request was let through: count again.
        if (full := self._full(request, entry.caller, entry.request_id)) is not None:
            deferred.resolve(full)
            return
        try:
            sub = self._dispatcher.add(request, entry.caller)
        except StoreError as exc:
            deferred.resolve(self._not_saved(exc, "Subscribe"))
            return
        self.write_succeeded()
        deferred.resolve(Subscribed(id=sub.id))

    def _full(
        self, request: Subscribe, caller: Caller | None, request_id: str | None
    ) -> TooManySubscriptions | None:
        """The refusal of one more subscription for ``caller`` (None: trusted code, which
        has only the total limit), or None if it fits."""
        settings, subs = self._settings, self._dispatcher.subs
        limit, setting, who = settings.max_subscriptions, "max_subscriptions", "the agent"
        held = len(subs)
        if held < limit and caller is not None:
            limit, setting = settings.max_subscriptions_per_caller, "max_subscriptions_per_caller"
            held = sum(1 for sub in subs.values() if sub.caller == caller)
            who = "anonymous" if caller.principal is None else repr(caller.principal)
        if held < limit:
            return None
        self._dispatcher.refused(setting)
        self.log.warning(
            "webhooks_limit_reached", limit=setting, held=held, topic=request.topic,
            origin=origin(request.url), request_id=request_id,
            principal=None if caller is None else caller.principal,
        )  # fmt: skip
        return TooManySubscriptions(
            limit=limit, detail=f"{who} holds {limit} subscriptions already (the most allowed)"
        )

    @handler
    def unsubscribe(
        self, msg: Unsubscribe
    ) -> Unsubscribed | UnknownSubscription | WebhooksNotSaved:
        sub = self._dispatcher.subs.get(msg.id)
        try:
            if sub is not None:
                self._dispatcher.remove(sub)
            elif not self._remove_unread(msg.id):
                return UnknownSubscription(id=msg.id, detail=f"no subscription {msg.id!r}")
        except StoreError as exc:
            return self._not_saved(exc, "Unsubscribe")
        self.write_succeeded()
        return Unsubscribed(id=msg.id)

    def _remove_unread(self, id: str) -> bool:
        """Remove subscription ``id`` that another replica made since this one's last sync
        (a shared store); False if there is none. Raises StoreError."""
        if self._store is None or not self._store.shared or not self._store.remove(id):
            return False
        self.log.info("webhook_unsubscribed", subscription=id, held=False)
        return True

    def _not_saved(self, error: StoreError, what: str) -> WebhooksNotSaved:
        """The reply to a change that could not be stored (logged, counted, the agent
        impaired and probing: see ``GuardedWrites``)."""
        self.write_failed(error, what)
        return WebhooksNotSaved(
            detail=f"cannot save to {error.path}: {error.reason}; nothing of this {what} was kept"
        )

    @handler
    def _sync(self, msg: _Sync) -> None:
        if self.impaired is not None:
            # The store failed: a sync would block this thread until the pool gives up;
            # the probe clears the impairment once the store answers, and syncs resume.
            return
        try:
            changed = self._dispatcher.sync()
        except StoreError as exc:
            self.read_failed(exc, "sync of subscriptions")  # the ones held keep being served
            return
        if changed:
            self.log.debug(
                "webhooks_synced", changed=changed, subscriptions=len(self._dispatcher.subs)
            )

    # -- deliveries ----------------------------------------------------------------------

    @handler
    def deliver(self, msg: Deliver) -> Queued:
        started, dropped = self._dispatcher.deliver(msg)
        return Queued(deliveries=started, dropped=dropped)

    @handler
    def event(self, msg: pubsub.Event) -> Queued:
        """An event of a topic this agent follows at pubsub: delivered like ``Deliver``."""
        return self.deliver(Deliver(topic=msg.topic, data=msg.data, seq=msg.seq))

    @handler
    def _attempted(self, msg: Attempted) -> None:
        self._dispatcher.attempted(msg)

    @handler
    def _retry(self, msg: _Retry) -> None:
        self._dispatcher.retry(msg.delivery)

    @handler
    def deliveries(self, msg: Deliveries) -> DeliveriesReply:
        engine = self._dispatcher
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
