"""Cell: one named agent across its incarnations.

The cell owns what must survive a restart: the name, the mailbox, the
statistics and the watchers. An incarnation (one :class:`Agent` instance
and its thread) comes and goes; refs point at the cell, so they stay valid.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from vibe_actors._deadletters import DeadLetterReason
from vibe_actors._envelope import Control, Envelope
from vibe_actors._errors import AgentHung, StartFailed
from vibe_actors._events import AgentAbandoned, AgentCrashedEvent
from vibe_actors._handlers import coerce_config
from vibe_actors._mailbox import Mailbox
from vibe_actors._messages import (
    AgentCrashed,
    DeadlineExceeded,
    Terminated,
    Unavailable,
    UnknownMessage,
)
from vibe_actors._signals import AgentStatus, ChildExited
from vibe_actors._spec import BRUTAL_KILL, MailboxSpec, SupervisorSpec, WorkerSpec
from vibe_actors._stats import AgentStats

if TYPE_CHECKING:
    from vibe_actors._agent import Agent
    from vibe_actors._system import ActorSystem

__all__ = ["Cell"]

_log = structlog.get_logger("vibe_actors.cell")


_TIMER_STATES = (AgentStatus.RUNNING, AgentStatus.STARTING)


class Cell:
    """The stable identity of one agent; see the module docstring."""

    def __init__(
        self,
        system: ActorSystem,
        spec: WorkerSpec | SupervisorSpec,
        agent_class: type[Agent],
        config: Any,
        parent: Cell | None,
    ) -> None:
        self.system = system
        self.spec = spec
        self.name = spec.name
        self.agent_class = agent_class
        self.config = coerce_config(agent_class, config)
        self.parent = parent
        self.path: str = f"{parent.path}/{spec.name}" if parent is not None else spec.name
        mailbox_spec = spec.mailbox if isinstance(spec, WorkerSpec) else MailboxSpec()
        self.mailbox = Mailbox(
            spec.name, mailbox_spec, self._refused, claimable=agent_class._answers_inline
        )
        self.stats = AgentStats()
        self.status = AgentStatus.STARTING
        self.incarnation = 0
        self.agent: Agent | None = None
        self.restarts = 0
        self.last_failure: str | None = None
        self.last_failure_at: float | None = None
        #: Why the current incarnation refuses work (Agent.degrade), else None.
        self.degraded: str | None = None
        #: Why the current incarnation cannot do all its work while it serves the rest
        #: (Agent.impair: durable writes failing), else None.
        self.impaired: str | None = None
        self.children: dict[str, Cell] = {}
        self.watchers: set[str] = set()
        self.deliver = self.mailbox.put
        #: Set by an incarnation that can answer a blocking ask in the asker's
        #: thread (see Agent._answers_inline): called with the ask's envelope, it
        #: returns True once the reply is resolved, False to have it delivered.
        self.ask_inline: Callable[[Envelope], bool] | None = None

    # -- sending -------------------------------------------------------------

    def _refused(self, envelope: Envelope, reason: DeadLetterReason) -> None:
        self.system.dead_letters.publish(self.name, envelope, reason)

    def _deliver_dead(self, envelope: Envelope) -> None:
        if envelope.reply is not None:
            envelope.reply.resolve(Unavailable(agent=self.name, reason="stopped"))
        self.system.dead_letters.publish(self.name, envelope, DeadLetterReason.STOPPED)

    def deliver_timer(self, incarnation: int, message: Any) -> None:
        """Timer callback: deliver ``message`` if its incarnation is still the current one.

        A timer started in ``on_start`` may fire before the handshake completes
        (status STARTING): the message is queued and handled once serving begins.
        """
        if incarnation == self.incarnation and self.status in _TIMER_STATES:
            self.deliver(Envelope(message, sender=self.name))

    def expired(self, env: Envelope) -> None:
        if env.reply is not None:
            env.reply.resolve(DeadlineExceeded(agent=self.name, timeout=env.reply.timeout))
        self.system.dead_letters.publish(self.name, env, DeadLetterReason.EXPIRED)

    def unhandled(self, env: Envelope) -> None:
        if env.reply is not None:
            env.reply.resolve(
                UnknownMessage(agent=self.name, message_type=type(env.message).__name__)
            )
        self.system.dead_letters.publish(self.name, env, DeadLetterReason.UNHANDLED)

    # -- incarnations ----------------------------------------------------------

    def start(self, timeout: float) -> None:
        """Start a new incarnation and wait for its handshake.

        Raises :class:`StartFailed` (cause chained) if construction or
        ``on_start`` raises, or if it does not confirm within ``timeout``; the
        cell is then left in status RESTARTING with no live incarnation.
        """
        self.incarnation += 1
        self.status = AgentStatus.STARTING
        self.degraded = None
        self.impaired = None
        try:
            agent = self.agent_class._incarnate(self, self.incarnation)
        except Exception as exc:  # noqa: BLE001 - converted to StartFailed, cause chained
            self._start_failed(f"{type(exc).__name__}: {exc}", exc)
        self.agent = agent
        agent._start_actor_loop()
        if not agent.started.wait(timeout):
            agent._retired = agent._halt = True
            self._start_failed(f"did not confirm its start within {timeout:g}s", None)
        if agent.start_error is not None:
            error = agent.start_error
            self._start_failed(f"{type(error).__name__}: {error}", error)

    def reconfigure(self, spec: WorkerSpec) -> None:
        """Take a new worker spec (live reload); the incarnation must be stopped.

        Queued messages are kept; a new mailbox bound takes the old queue over.
        """
        self.spec = spec
        self.agent_class = spec.agent
        self.config = coerce_config(spec.agent, spec.config)
        if (
            spec.mailbox != self.mailbox.spec
            or self.mailbox.claimable != spec.agent._answers_inline
        ):
            old = self.mailbox
            self.mailbox = Mailbox(
                spec.name, spec.mailbox, self._refused, claimable=spec.agent._answers_inline
            )
            self.deliver = self.mailbox.put
            for env in old.drain():
                self.mailbox.put_system(env)

    def mark_running(self) -> None:
        """Called by a new incarnation's thread once ``on_start`` returned."""
        self.status = AgentStatus.RUNNING
        self.deliver = self.mailbox.put

    def _start_failed(self, reason: str, cause: BaseException | None) -> None:
        self.agent = None
        self.status = AgentStatus.RESTARTING
        self._record_failure(reason)
        self.system.events.publish(
            AgentCrashedEvent(agent=self.name, incarnation=self.incarnation, error=reason)
        )
        _log.error("agent_start_failed", agent=self.name, path=self.path, reason=reason)
        if isinstance(cause, StartFailed):
            raise cause  # a nested supervisor's child: keep the innermost path and cause
        raise StartFailed(self.path, reason) from cause

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the current incarnation gracefully (its current message finishes).

        Waits up to ``timeout`` (default: the spec's ``shutdown``); returns False
        if the incarnation had to be abandoned (a thread cannot be killed: it is
        a daemon thread, retired so that it handles nothing more if it ever
        returns). Queued messages stay in the mailbox.
        """
        agent = self.agent
        self.agent = None
        if agent is None or agent.actor_stopped.is_set():
            return True
        self.status = AgentStatus.STOPPING
        shutdown = self.spec.shutdown if timeout is None else timeout
        if shutdown == BRUTAL_KILL:
            agent._retired = True
            agent._halt = True
            self.mailbox.put_system(Control(agent.incarnation))
            return self._abandon(agent, "brutal_kill")
        agent._halt = True
        self.mailbox.put_system(Control(agent.incarnation))
        if agent.thread is not None and agent.thread.ident == threading.get_ident():
            return True
        if agent.actor_stopped.wait(float(shutdown)):
            return True
        agent._retired = True
        return self._abandon(agent, f"did not stop within {float(shutdown):g}s")

    def _abandon(self, agent: Agent, why: str) -> bool:
        self.system._count_abandoned(self.name)
        self.system.events.publish(AgentAbandoned(agent=self.name, reason=why))
        _log.warning(
            "agent_abandoned",
            agent=self.name,
            incarnation=agent.incarnation,
            reason=why,
            stack=self.system._thread_stack(agent.thread),
        )
        return False

    def replace_hung(self, reason: str) -> AgentHung | None:
        """Abandon the current incarnation as hung and let the supervisor replace it.

        Its in-flight ask (if any) gets :class:`AgentCrashed`; its thread is
        retired (it handles nothing more if it ever returns, and skips
        ``on_stop``); the supervisor receives the failure with the stuck
        thread's stack and restarts per its strategy, on the same mailbox.
        Returns the failure, or None if there was no running incarnation.
        """
        agent = self.agent
        if agent is None or agent.actor_stopped.is_set() or self.status is not AgentStatus.RUNNING:
            return None
        stack = self.system._thread_stack(agent.thread)
        failure = AgentHung(self.name, reason, stack)
        agent._retired = agent._halt = True
        agent._cancel_timers()
        in_flight = agent._current
        if in_flight is not None and in_flight.reply is not None:
            in_flight.reply.resolve(AgentCrashed(agent=self.name, error=str(failure)))
        self._record_failure(str(failure))
        self.system._count_abandoned(self.name)
        self.system.events.publish(
            AgentCrashedEvent(agent=self.name, incarnation=agent.incarnation, error=str(failure))
        )
        _log.error("agent_hung", agent=self.name, incarnation=agent.incarnation, reason=reason,
                   stack=stack)  # fmt: skip
        self.agent = None
        self.status = AgentStatus.RESTARTING
        self._notify_parent(ChildExited(self.name, agent.incarnation, failure))
        return failure

    def incarnation_crashed(self, agent: Agent, error: BaseException) -> None:
        """Called in the crashed incarnation's thread after ``on_failure``."""
        if agent._retired or agent.incarnation != self.incarnation:
            return
        self.agent = None
        self.status = AgentStatus.RESTARTING
        self._notify_parent(ChildExited(self.name, agent.incarnation, error))

    def incarnation_stopped(self, agent: Agent) -> None:
        """Called in the incarnation's thread after a graceful stop."""
        if agent._normal_stop and agent.incarnation == self.incarnation and not agent._retired:
            self.agent = None
            self._notify_parent(ChildExited(self.name, agent.incarnation, None))

    def _notify_parent(self, signal: ChildExited) -> None:
        if self.parent is not None:
            self.parent.mailbox.put_system(Envelope(signal))
        else:
            self.system._root_exited(signal)

    def log_crash(self, agent: Agent, env: Envelope, error: BaseException) -> None:
        """Record and log a handler crash, with the message's context."""
        self._record_failure(f"{type(error).__name__}: {error}")
        self.system.events.publish(
            AgentCrashedEvent(agent=self.name, incarnation=agent.incarnation,
                              error=self.last_failure or "", message_type=type(env.message).__name__)
        )  # fmt: skip
        _log.error(
            "agent_crashed",
            agent=self.name,
            incarnation=agent.incarnation,
            message_type=type(env.message).__name__,
            request_id=env.request_id,
            exc_info=error,
        )

    def _record_failure(self, text: str) -> None:
        self.last_failure = text if len(text) <= 1000 else text[:997] + "..."
        self.last_failure_at = time.time()

    # -- the end -----------------------------------------------------------------

    def terminate(self, reason: str) -> None:
        """Stop for good: later sends are dead letters, queued ones too, watchers told.

        The incarnation must already be stopped (or abandoned). Child cells of a
        supervisor cell are terminated first, last-started first.
        """
        for child in reversed(list(self.children.values())):
            if child.status is not AgentStatus.STOPPED:
                child.stop()
                child.terminate(reason)
        self.status = AgentStatus.STOPPED
        self.deliver = self._deliver_dead
        self.ask_inline = None
        for env in self.mailbox.drain():
            if env.reply is not None:
                env.reply.resolve(Unavailable(agent=self.name, reason=f"stopped: {reason}"))
            self.system.dead_letters.publish(self.name, env, DeadLetterReason.LEFT_IN_MAILBOX)
        watchers, self.watchers = self.watchers, set()
        for watcher in watchers:
            self.system._send_system(watcher, Terminated(agent=self.name, reason=reason))
