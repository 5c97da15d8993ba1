"""PubSub: named topics with fan-out to agents and in-process listeners.

Protocol:

* ``Subscribe{topic, subscriber}`` -> ``Subscribed{topic, subscriber}`` (idempotent);
  ``NoSuchAgent`` (404: no running agent has that name); ``InvalidTopic``
  (422: empty topic or subscriber); ``PubSubNotSaved`` (503).
* ``Unsubscribe{topic, subscriber}`` -> ``Unsubscribed``; ``NotSubscribed`` (404).
* ``Publish{topic, data}`` -> ``Published{topic, subscribers, seq, dropped}``:
  every subscriber of ``topic`` is sent ``Event{topic, data, seq,
  published_at}``; ``subscribers`` counts those it was handed to (agents and
  listeners), ``dropped`` those whose buffer was full. ``seq`` numbers the
  events of one topic: 1, 2, 3, ... and keeps increasing across restarts
  (it may skip numbers after one: see below). ``data`` is any JSON-like value.
* ``Topics{}`` -> ``TopicList{topics: [TopicInfo{topic, subscribers, listeners, seq}]}``.

Delivery: an agent subscriber gets each ``Event`` as an ask
(``ask_future``), so pubsub learns when its handler finished; the reply is
ignored. A slow subscriber never slows the publisher: each subscriber may
have at most ``buffer`` events outstanding (sent, handler not finished);
beyond that a new event is dropped for that subscriber only, published as a
dead letter (reason ``buffer_full``) and counted in
``vibe_pubsub_dropped_total``. An event not started by its subscriber
within ``deliver_timeout`` seconds expires (dead letter ``expired``).
Delivery is at most once and in publish order per subscriber.

In-process listeners (:func:`listen`) are callbacks for code that is not an
agent (the gateway's Server-Sent Events). They are held per system (in
:mod:`vibe_actors.agents.pubsub._listeners`), referenced by the agent by
id, called in the pubsub agent's thread, never buffered (the callback must
hand the event off at once), and not persisted: they belong to the process,
and survive a restart of the agent.

Death: subscribers are watched; one that stops for good loses its
subscriptions. A restart of a subscriber keeps them.

Across its own restart: with ``persist`` (the default) subscriptions and a
sequence reservation per topic are kept in SQLite (``<data_dir>/<name>.db``),
written before the reply. A new incarnation reloads and re-watches the
subscriptions (a subscriber that died meanwhile is removed; one that does
not exist yet while the system is still starting stays pending, re-checked
every ``recheck_interval`` seconds, and is dropped if still absent once the
system runs). ``seq`` is reserved ``seq_block`` numbers at a time, so after
a restart a topic resumes above its last reservation. Outstanding-event
counts are per incarnation (a new one starts with empty buffers). With
``persist=False`` subscriptions and sequences start empty after a restart.
A database that cannot be opened degrades the agent (``Unavailable``).

Metrics: ``vibe_pubsub_published_total``, ``vibe_pubsub_delivered_total``
(handlers finished), ``vibe_pubsub_dropped_total``, ``vibe_pubsub_subscribers``
(agent subscriptions and listeners), each labelled ``agent``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

import msgspec

from vibe_actors import Agent, Terminated, handler
from vibe_actors.agents.pubsub._delivery import Delivered, Fanout
from vibe_actors.agents.pubsub._listeners import (
    Listen,
    Listener,
    Unlisten,
    callback,
    callbacks,
    listen,
)
from vibe_actors.agents.pubsub._metrics import build_metrics
from vibe_actors.agents.pubsub._store import PubSubStore, Topic
from vibe_actors.agents.pubsub.protocol import (
    MAX_TOPIC_LENGTH,
    Event,
    InvalidTopic,
    NotSubscribed,
    Publish,
    Published,
    PubSubConfig,
    PubSubNotSaved,
    Subscribe,
    Subscribed,
    TooManyTopics,
    TopicInfo,
    TopicList,
    Topics,
    Unsubscribe,
    Unsubscribed,
)
from vibe_actors.agents.registry.protocol import NoSuchAgent, presence
from vibe_actors.store import ClosesStore, GuardedWrites, StoreError, degrade_for, open_store

__all__ = [
    "Event",
    "InvalidTopic",
    "Listener",
    "NoSuchAgent",
    "NotSubscribed",
    "PubSub",
    "PubSubConfig",
    "MAX_TOPIC_LENGTH",
    "PubSubNotSaved",
    "TooManyTopics",
    "Publish",
    "Published",
    "Subscribe",
    "Subscribed",
    "TopicInfo",
    "TopicList",
    "Topics",
    "Unsubscribe",
    "Unsubscribed",
    "listen",
]


# -- internal messages: plain Structs, outside the public protocol (not forgeable over HTTP)


class _Recheck(msgspec.Struct, frozen=True):
    pass


# -- the agent -------------------------------------------------------------------------


class PubSub(GuardedWrites, ClosesStore, Agent[Subscribe | Unsubscribe | Topics | Publish]):
    """Topic fan-out with bounded per-subscriber buffers (see the module docstring)."""

    Config: ClassVar = PubSubConfig

    def on_start(self) -> None:
        metrics = self._metrics = self.system.shared_metrics("pubsub", build_metrics)
        self._topics: dict[str, Topic] = {}
        self._fanout = Fanout(self, metrics, self.config.buffer, self.config.deliver_timeout)
        self._pending: set[tuple[str, str]] = set()
        self._store: PubSubStore | None = None
        if self.config.persist:
            try:
                self._store = open_store(PubSubStore, self)
            except StoreError as exc:
                degrade_for(self, exc)
                return
            for topic, reserved in self._store.sequences():
                self._topics[topic] = Topic(seq=reserved, reserved=reserved)
            self._pending.update(self._store.subscriptions())
        for listener, entry in list(callbacks(self.system).items()):
            if entry.pubsub == self.name:  # listeners outlive an incarnation of the agent
                self._topic(entry.topic).listeners.add(listener)
        self._settle()
        self.log.info("pubsub_started", topics=len(self._topics), pending=len(self._pending))

    def _topic(self, topic: str) -> Topic:
        state = self._topics.get(topic)
        if state is None:
            state = self._topics[topic] = Topic()
            self._metrics.topics.labels(self.name).set(len(self._topics))
        return state

    def _over_limit(self, topic: str, subscriber: str | None = None) -> TooManyTopics | None:
        """A request that would grow the topics (or a topic's subscribers) past its cap."""
        config, state = self.config, self._topics.get(topic)
        if state is None and len(self._topics) >= config.max_topics:
            self._metrics.refused.labels(self.name, "max_topics").inc()
            limit = config.max_topics
            return TooManyTopics(limit=limit, detail=f"{limit} topics are held already")
        if (
            subscriber is not None
            and state is not None
            and subscriber not in state.subscribers
            and len(state.subscribers) >= config.max_subscribers
        ):
            self._metrics.refused.labels(self.name, "max_subscribers").inc()
            limit = config.max_subscribers
            return TooManyTopics(limit=limit, detail=f"{topic!r} has {limit} subscribers already")
        return None

    def _gauge(self) -> None:
        count = sum(len(t.subscribers) + len(t.listeners) for t in self._topics.values())
        self._metrics.subscribers.labels(self.name).set(count)

    def _settle(self) -> None:
        """Admit subscriptions whose agent exists (a dead one's watch removes it at once);
        drop absent ones once the system runs; re-check later while any remain."""
        final = self.system.running
        for topic, subscriber in sorted(self._pending):
            if presence(self.system, subscriber) != "absent":
                self._pending.discard((topic, subscriber))
                self._topic(topic).subscribers.add(subscriber)
                self.watch(subscriber)
            elif final:
                self._pending.discard((topic, subscriber))
                self.log.warning("pubsub_subscriber_skipped", topic=topic, subscriber=subscriber)
                self._write(PubSubStore.unsubscribe, topic, subscriber)
        self._gauge()
        if self._pending:
            self.start_timer("recheck", _Recheck(), self.config.recheck_interval)

    @handler
    def _recheck(self, msg: _Recheck) -> None:
        self._settle()

    def _write(self, change: Callable[..., None], *args: Any) -> StoreError | None:
        """``change(store, *args)``; the error (logged) if it was not saved."""
        if self._store is None:
            return None
        try:
            change(self._store, *args)
        except StoreError as exc:
            self.write_failed(exc, change.__name__)  # impaired until a write succeeds
            return exc
        self.write_succeeded()
        return None

    def _probe_store_write(self) -> None:
        if self._store is not None:
            self._store.probe_write()

    # -- subscriptions ------------------------------------------------------------------

    @handler
    def subscribe(
        self, msg: Subscribe
    ) -> Subscribed | NoSuchAgent | InvalidTopic | PubSubNotSaved | TooManyTopics:
        if not msg.topic or not msg.subscriber:
            return InvalidTopic(detail="the topic and the subscriber must not be empty")
        if (over := self._over_limit(msg.topic, msg.subscriber)) is not None:
            return over
        if presence(self.system, msg.subscriber) != "alive":
            return NoSuchAgent(
                agent=msg.subscriber, detail=f"no running agent named {msg.subscriber!r}"
            )
        state = self._topic(msg.topic)
        if msg.subscriber not in state.subscribers:
            failed = self._write(PubSubStore.subscribe, msg.topic, msg.subscriber)
            if failed is not None:
                return PubSubNotSaved(detail=f"cannot save the subscription: {failed.reason}")
            state.subscribers.add(msg.subscriber)
            self.watch(msg.subscriber)
            self._gauge()
            self.log.info("pubsub_subscribed", topic=msg.topic, subscriber=msg.subscriber)
        return Subscribed(topic=msg.topic, subscriber=msg.subscriber)

    @handler
    def unsubscribe(self, msg: Unsubscribe) -> Unsubscribed | NotSubscribed | PubSubNotSaved:
        state = self._topics.get(msg.topic)
        if state is None or msg.subscriber not in state.subscribers:
            return NotSubscribed(
                topic=msg.topic,
                subscriber=msg.subscriber,
                detail=f"{msg.subscriber!r} is not subscribed to {msg.topic!r}",
            )
        if (failed := self._write(PubSubStore.unsubscribe, msg.topic, msg.subscriber)) is not None:
            return PubSubNotSaved(detail=f"cannot save the change: {failed.reason}")
        state.subscribers.discard(msg.subscriber)
        if not any(msg.subscriber in t.subscribers for t in self._topics.values()):
            self.unwatch(msg.subscriber)
        self._gauge()
        self.log.info("pubsub_unsubscribed", topic=msg.topic, subscriber=msg.subscriber)
        return Unsubscribed(topic=msg.topic, subscriber=msg.subscriber)

    @handler
    def _listen(self, msg: Listen) -> bool:
        entry = callback(self.system, msg.listener)
        if entry is None:
            return False  # closed before it arrived
        self._topic(entry.topic).listeners.add(msg.listener)
        self._gauge()
        return True

    @handler
    def _unlisten(self, msg: Unlisten) -> None:
        for state in self._topics.values():
            state.listeners.discard(msg.listener)
        self._gauge()

    @handler
    def topics(self, msg: Topics) -> TopicList:
        if self._pending:  # the system may have finished starting since the last check
            self._settle()
        return TopicList(
            topics=[
                TopicInfo(
                    topic=name,
                    subscribers=len(t.subscribers),
                    listeners=len(t.listeners),
                    seq=t.seq,
                )  # fmt: skip
                for name, t in sorted(self._topics.items())
            ]
        )

    # -- publishing -----------------------------------------------------------------------

    @handler
    def publish(self, msg: Publish) -> Published | InvalidTopic | PubSubNotSaved | TooManyTopics:
        if self._pending:  # the system may have finished starting since the last check
            self._settle()
        if not msg.topic:
            return InvalidTopic(detail="the topic must not be empty")
        if (over := self._over_limit(msg.topic)) is not None:
            return over
        state = self._topic(msg.topic)
        if state.seq >= state.reserved and self._store is not None:
            reserved = state.seq + self.config.seq_block
            if (failed := self._write(PubSubStore.reserve, msg.topic, reserved)) is not None:
                return PubSubNotSaved(detail=f"cannot reserve sequence numbers: {failed.reason}")
            state.reserved = reserved
        state.seq += 1
        event = Event(topic=msg.topic, data=msg.data, seq=state.seq, published_at=time.time())
        handed, dropped, caller = 0, 0, self.caller
        for subscriber in sorted(state.subscribers):
            if self._fanout.send(subscriber, event, caller):
                handed += 1
            else:
                dropped += 1
        for listener in sorted(state.listeners):
            handed += self._fanout.call(listener, event)
        self._metrics.published.labels(self.name).inc()
        return Published(topic=msg.topic, subscribers=handed, seq=state.seq, dropped=dropped)

    @handler
    def _delivered(self, msg: Delivered) -> None:
        self._fanout.finished(msg)

    # -- death-watch ------------------------------------------------------------------

    @handler
    def _terminated(self, msg: Terminated) -> None:
        name = msg.agent
        if presence(self.system, name) == "alive":
            self.watch(name)  # a new agent under the same name (live reload)
            return
        topics = [t for t, state in self._topics.items() if name in state.subscribers]
        for topic in topics:
            self._topics[topic].subscribers.discard(name)
        self._write(PubSubStore.forget, name)
        self._gauge()
        if topics:
            self.log.info("pubsub_subscriber_gone", subscriber=name, topics=topics,
                          reason=msg.reason)  # fmt: skip
