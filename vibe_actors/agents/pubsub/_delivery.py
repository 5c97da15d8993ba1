"""How the pubsub agent hands one event to its recipients.

An agent subscriber gets the event on behalf of the publisher's caller (so
the policy decides it as the publisher's own send to that agent: a denied
event is a ``forbidden`` dead letter for that subscriber only), as an ask
(``ask_future``) so that pubsub
learns when its handler finished (:class:`Delivered`, told back to the
agent); at most ``buffer`` events may be outstanding per subscriber, beyond
that the event is dropped for it (dead letter ``buffer_full``). A listener
is called directly, in the agent's thread. Outstanding counts belong to one
incarnation of the agent (a new one starts with empty buffers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from vibe_actors import (
    Agent,
    AgentCrashed,
    Caller,
    DeadLetterReason,
    DeadlineExceeded,
    Forbidden,
    MailboxFull,
    Unavailable,
    UnknownMessage,
    _tracing,
)
from vibe_actors._envelope import Envelope
from vibe_actors.agents.pubsub._listeners import callback
from vibe_actors.agents.pubsub._metrics import Metrics

if TYPE_CHECKING:
    from vibe_actors.agents.pubsub.protocol import Event

__all__ = ["Delivered", "Fanout"]

#: Replies that mean the subscriber's handler did not run to the end.
_UNDELIVERED = (AgentCrashed, DeadlineExceeded, Forbidden, MailboxFull, Unavailable, UnknownMessage)


class Delivered(msgspec.Struct, frozen=True):
    """A subscriber's handler finished (internal: not forgeable over HTTP)."""

    incarnation: int
    subscriber: str
    ok: bool


class Fanout:
    """Delivery for one incarnation of the pubsub agent (used in its thread only)."""

    def __init__(self, agent: Agent, metrics: Metrics, buffer: int, timeout: float) -> None:
        self._agent = agent
        self._metrics = metrics
        self._buffer = buffer
        self._timeout = timeout
        self._me = agent.ref(agent.name)
        self._outstanding: dict[str, int] = {}

    def send(self, subscriber: str, event: Event, caller: Caller | None) -> bool:
        """Ask ``subscriber`` to handle ``event`` for ``caller`` (the publisher's caller);
        False if its buffer is full (dropped)."""
        agent = self._agent
        outstanding = self._outstanding.get(subscriber, 0)
        if outstanding >= self._buffer:
            self._metrics.dropped.labels(agent.name).inc()
            agent.system.dead_letters.publish(
                subscriber, Envelope(event, sender=agent.name), DeadLetterReason.BUFFER_FULL
            )
            return False
        self._outstanding[subscriber] = outstanding + 1
        me, incarnation = self._me, agent.incarnation

        def finished(reply: Any) -> None:
            # In the subscriber's thread (or wherever the reply resolves): only a tell.
            me.tell(Delivered(incarnation, subscriber, not isinstance(reply, _UNDELIVERED)))

        # Delivered on the subscriber timeout, not bound by the publisher's deadline.
        agent.ref(subscriber).without_deadline().ask_future(
            event, timeout=self._timeout, callback=finished, caller=caller
        )
        return True

    def call(self, listener: str, event: Event) -> int:
        """Call ``listener`` with ``event``; 1 if it took it, 0 if closed or it raised."""
        agent = self._agent
        entry = callback(agent.system, listener)
        if entry is None:
            return 0  # closed; its Unlisten is on the way
        try:
            if _tracing.ON:  # a listener (an SSE stream) takes the event in the trace
                attributes = {"vibe.listener": listener, "vibe.topic": event.topic}
                with _tracing.span("pubsub listener", attributes):
                    entry.callback(event)
            else:
                entry.callback(event)
        except Exception:  # a listener's bug must not fail the publish: logged, kept
            agent.log.exception("pubsub_listener_failed", listener=listener, topic=event.topic)
            return 0
        self._metrics.delivered.labels(agent.name).inc()
        return 1

    def finished(self, msg: Delivered) -> None:
        """A subscriber's handler finished: free its buffer slot."""
        if msg.incarnation != self._agent.incarnation:
            return  # counted by an earlier incarnation's buffers, which are gone
        left = self._outstanding.get(msg.subscriber, 0) - 1
        if left > 0:
            self._outstanding[msg.subscriber] = left
        else:
            self._outstanding.pop(msg.subscriber, None)
        if msg.ok:
            self._metrics.delivered.labels(self._agent.name).inc()
