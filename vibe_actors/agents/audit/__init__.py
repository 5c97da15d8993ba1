"""Audit: the system's audit trail, kept in a ledger stream.

The agent subscribes to ``system.events`` and records, as records of the
ledger stream ``stream`` (default ``audit`` in agent ``ledger``):

* supervision: :class:`AgentCrashedEvent`, :class:`AgentRestarted`,
  :class:`SupervisorGaveUp` (an escalation), :class:`AgentAbandoned`;
* :class:`TreeReloaded`, :class:`ReloadRejected` and the policy agent's :class:`PolicyChanged`;
* :class:`CircuitOpened`: a gateway refuses a message type that kept crashing
  its agent's handler;
* policy denials (:class:`PolicyDenied`, from the policy agent or a gateway's
  snapshot), aggregated: counts per principal, agent, message type and
  deciding rule and the agent that sent on the principal's behalf (``sender``:
  a reminder's scheduler, a job's worker; null for a direct request), one
  ``PolicyDenials`` record per ``dead_letter_flush``
  seconds that saw any, with the first denial's reason per key (a flood of
  refused requests costs a counter increment each, not a ledger record each);
* dead letters, aggregated the same way: counts per recipient and reason, one
  ``DeadLetters`` record per ``dead_letter_flush`` seconds that saw any;
* ``AuditStarted`` each time an incarnation of this agent starts, so a gap in
  the trail (the agent was restarting) shows in it.

Each record's data is the event as JSON (its ``type`` tag included). Event
callbacks run in the publisher's thread: they only ``tell`` the event into
this agent's mailbox (dead letters: a counter under a lock), never block.
Appends go to the ledger with ``ask_future``: the agent never waits for the
ledger; a failed append is logged and counted in
``vibe_audit_ledger_failures_total{op="append"}`` (the event is lost).
Dead letters to or from this agent or the ledger are not counted, so a
ledger outage cannot feed on itself.

Every ``verify_interval`` seconds (and at start, and on ``VerifyNow``) the
agent asks the ledger to verify the stream's chain. When it is broken it
publishes :class:`AuditChainBroken` on ``system.events``, logs an error and
sets ``vibe_audit_chain_ok`` to 0 (1 while the chain holds).

Across a restart nothing is lost that was recorded: the trail lives in the
ledger. Events published after an incarnation ended and before the next one
subscribed are missed (the ``AuditStarted`` record marks the gap); the event
of this agent's own crash is queued before it stops and recorded by the next
incarnation. Dead-letter and denial counts not yet flushed when the agent
crashes are lost (a graceful stop flushes them). Give the audit spec
``depends_on=("ledger",)`` so it starts after, and stops before, its ledger.

Protocol: ``Recent{limit}`` -> ``AuditRecords`` (the newest records, oldest
first) or ``AuditUnavailable``; ``VerifyNow{}`` -> ``AuditVerified``.
"""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

import msgspec

from vibe_actors import (
    Agent,
    AgentAbandoned,
    AgentCrashedEvent,
    AgentRestarted,
    CircuitOpened,
    DeadLetter,
    Deferred,
    ErrorReply,
    Ref,
    ReloadRejected,
    RuntimeEvent,
    SupervisorGaveUp,
    TreeReloaded,
    handler,
)
from vibe_actors.agents.audit._metrics import build_metrics
from vibe_actors.agents.audit.protocol import (
    AuditChainBroken,
    AuditConfig,
    AuditRecords,
    AuditUnavailable,
    AuditVerified,
    Recent,
    VerifyNow,
)
from vibe_actors.agents.ledger.protocol import (
    Append,
    Read,
    Records,
    Streams,
    Tail,
    Verified,
    Verify,
)
from vibe_actors.agents.policy.protocol import PolicyChanged, PolicyDenied

__all__ = [
    "AUDITED_EVENTS",
    "Audit",
    "AuditChainBroken",
    "AuditConfig",
    "AuditRecords",
    "AuditUnavailable",
    "AuditVerified",
    "Recent",
    "VerifyNow",
]

#: The runtime events recorded one record each.
AUDITED_EVENTS = (
    AgentCrashedEvent,
    AgentRestarted,
    SupervisorGaveUp,
    AgentAbandoned,
    TreeReloaded,
    ReloadRejected,
    PolicyDenied,
    PolicyChanged,
    CircuitOpened,
)
_AuditedEvent = (
    AgentCrashedEvent
    | AgentRestarted
    | SupervisorGaveUp
    | AgentAbandoned
    | TreeReloaded
    | ReloadRejected
    | PolicyDenied
    | PolicyChanged
    | CircuitOpened
)


# -- private self-messages ----------------------------------------------------------------


class _Observed(msgspec.Struct, frozen=True):
    event: _AuditedEvent


class _FlushDeadLetters(msgspec.Struct, frozen=True):
    pass


class _VerifyTick(msgspec.Struct, frozen=True):
    pass


class _VerifyDone(msgspec.Struct, frozen=True):
    token: int
    ok: bool
    count: int
    broken_at: int | None
    #: The ledger's error reply, when it could not verify.
    error: str | None = None


# -- the agent ------------------------------------------------------------------------------------


class Audit(Agent[Recent | VerifyNow]):
    """The audit trail; see the module docstring."""

    Config: ClassVar = AuditConfig

    def on_start(self) -> None:
        self._metrics = self.system.shared_metrics("audit", build_metrics)
        self._ledger: Ref[Append | Read | Tail | Verify | Streams] = self.ref(self.config.ledger)
        self._self = self.ref(self.name)
        self._ignored = frozenset({self.name, self.config.ledger})
        self._lock = threading.Lock()
        self._dead: dict[tuple[str, str], int] = {}
        #: (principal, agent, message, rule, sender) -> [count, first reason]
        self._denied: dict[tuple[str | None, str, str, int | None, str | None], list[Any]] = {}
        self._dead_since = time.time()
        self._verifying: dict[int, Deferred] = {}
        self._tokens = 0
        self._unsubscribe = [
            self.system.events.subscribe(self._on_event),
            self.system.dead_letters.subscribe(self._on_dead_letter),
        ]
        self._append({"type": "AuditStarted", "agent": self.name,
                      "incarnation": self.incarnation, "at": time.time()})  # fmt: skip
        self.start_timer("verify", _VerifyTick(), self.config.verify_interval, repeat=True)
        self.start_timer("dead_letters", _FlushDeadLetters(), self.config.dead_letter_flush,
                         repeat=True)  # fmt: skip
        self._self.tell(_VerifyTick())  # know the chain's state from the start
        self.log.info("audit_started", ledger=self.config.ledger, stream=self.config.stream)

    def on_stop(self) -> None:
        self._unsubscribe_all()
        self._flush_dead_letters(_FlushDeadLetters())

    def on_failure(self, error: BaseException) -> None:
        self._unsubscribe_all()

    def _unsubscribe_all(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    # -- in the publisher's thread: forward and return -------------------------------------

    def _on_event(self, event: RuntimeEvent) -> None:
        if isinstance(event, PolicyDenied):
            key = (event.principal, event.agent, event.message, event.rule, event.sender)
            with self._lock:
                seen = self._denied.get(key)
                if seen is None:
                    self._denied[key] = [1, event.reason]
                else:
                    seen[0] += 1
        elif isinstance(event, AUDITED_EVENTS):
            self._self.tell(_Observed(event=event))

    def _on_dead_letter(self, letter: DeadLetter) -> None:
        if letter.recipient in self._ignored or letter.sender in self._ignored:
            return  # about the trail's own plumbing: recording it could loop
        key = (letter.recipient, letter.reason.value)
        with self._lock:
            self._dead[key] = self._dead.get(key, 0) + 1

    # -- recording ---------------------------------------------------------------------------

    @handler
    def _observed(self, msg: _Observed) -> None:
        self._append(msgspec.to_builtins(msg.event))

    @handler
    def _flush_dead_letters(self, msg: _FlushDeadLetters) -> None:
        now = time.time()
        with self._lock:
            counts, self._dead = self._dead, {}
            denied, self._denied = self._denied, {}
        since, self._dead_since = self._dead_since, now
        if counts:
            self._append({
                "type": "DeadLetters", "since": since, "until": now,
                "counts": [{"agent": agent, "reason": reason, "count": n}
                           for (agent, reason), n in sorted(counts.items())],
            })  # fmt: skip
        if denied:
            self._append({
                "type": "PolicyDenials", "since": since, "until": now,
                "counts": [{"principal": principal, "agent": agent, "message": message,
                            "rule": rule, "sender": sender, "count": n, "reason": reason}
                           for (principal, agent, message, rule, sender), (n, reason)
                           in sorted(denied.items(), key=lambda kv: repr(kv[0]))],
            })  # fmt: skip

    def _append(self, data: dict[str, Any]) -> None:
        self._ledger.ask_future(
            Append(stream=self.config.stream, data=data),
            timeout=self.config.append_timeout,
            callback=self._appended,
        )

    def _appended(self, reply: Any) -> None:
        # In the ledger's thread (or the timer's): count and log only.
        if isinstance(reply, ErrorReply):
            self._metrics.failures.labels(op="append").inc()
            self.log.error("audit_append_failed", reply=type(reply).__name__, detail=str(reply))
        else:
            self._metrics.records.inc()

    # -- reading -------------------------------------------------------------------------------

    @handler
    def recent(self, msg: Recent) -> AuditRecords | AuditUnavailable | None:
        deferred = self.defer()
        failures = self._metrics.failures

        def answer(reply: Any) -> None:  # in the ledger's thread: convert and hand over
            if isinstance(reply, Records):
                deferred.resolve(AuditRecords(records=reply.records))
            else:
                failures.labels(op="recent").inc()
                deferred.resolve(AuditUnavailable(detail=f"the ledger answered {reply!r}"))

        self._ledger.ask_future(Tail(stream=self.config.stream, limit=msg.limit), callback=answer)
        return None

    # -- verification ----------------------------------------------------------------------------

    @handler
    def verify_now(self, msg: VerifyNow) -> AuditVerified | AuditUnavailable | None:
        self._tokens += 1
        self._verifying[self._tokens] = self.defer()
        self._request_verification(self._tokens)
        return None

    @handler
    def _verify_tick(self, msg: _VerifyTick) -> None:
        self._request_verification(0)

    def _request_verification(self, token: int) -> None:
        tell = self._self.tell

        def verdict(reply: Any) -> None:  # in the ledger's thread: back to the mailbox
            if isinstance(reply, Verified):
                tell(_VerifyDone(token, reply.ok, reply.count, reply.broken_at))
            else:
                tell(_VerifyDone(token, False, 0, None, error=repr(reply)))

        self._ledger.ask_future(Verify(stream=self.config.stream), callback=verdict)

    @handler
    def _verify_done(self, msg: _VerifyDone) -> None:
        waiting = self._verifying.pop(msg.token, None)
        if msg.error is not None:
            self._metrics.failures.labels(op="verify").inc()
            self.log.error("audit_verify_failed", ledger=self.config.ledger, reply=msg.error)
            if waiting is not None:
                waiting.resolve(AuditUnavailable(detail=f"the ledger answered {msg.error}"))
            return
        self._metrics.chain_ok.set(1 if msg.ok else 0)
        if not msg.ok:
            self.log.error("audit_chain_broken", ledger=self.config.ledger,
                           stream=self.config.stream, broken_at=msg.broken_at)  # fmt: skip
            self.system.events.publish(
                AuditChainBroken(ledger=self.config.ledger, stream=self.config.stream,
                                 broken_at=msg.broken_at)
            )  # fmt: skip
        if waiting is not None:
            waiting.resolve(AuditVerified(ok=msg.ok, count=msg.count, broken_at=msg.broken_at))
