"""Cell: one named agent across its incarnations.

The cell owns what must survive a restart: the name, the mailbox, the
statistics and the watchers. An incarnation (an
:class:`~vibe_actors._incarnation.Incarnation` hosting one instance of the
agent class, with its thread) comes and goes; refs point at the cell, so they
stay valid. The cell drives an incarnation only through its public stop
protocol (``request_stop``, ``retire``).
"""

from __future__ import annotations

import collections
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from vibe_actors._cell_directives import directives_of
from vibe_actors._deadletters import DeadLetterReason
from vibe_actors._envelope import Envelope
from vibe_actors._errors import AgentHung, StartFailed
from vibe_actors._events import AgentAbandoned, AgentCrashedEvent
from vibe_actors._handlers import coerce_config
from vibe_actors._incarnation import Incarnation, thread_stack
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
    from vibe_actors._runtime import Runtime

__all__ = ["Cell"]

_log = structlog.get_logger("vibe_actors.cell")


_TIMER_STATES = (AgentStatus.RUNNING, AgentStatus.STARTING)
#: A crash's stack kept for the views: its innermost frames, and the characters shown.
_TRACEBACK_FRAMES = 50
_TRACEBACK = 8000


class Cell:
    """The stable identity of one agent; see the module docstring."""

    def __init__(
        self,
        system: Runtime,
        spec: WorkerSpec | SupervisorSpec,
        agent_class: type[Agent],
        config: Any,
        parent: Cell | None,
        on_root_exit: Callable[[ChildExited], None] | None = None,
    ) -> None:
        self.system = system
        #: Told when this cell, the root (no parent), exits: the system has failed or ended.
        self._on_root_exit = on_root_exit
        self.spec = spec
        self.name = spec.name
        self.agent_class = agent_class
        self.config = coerce_config(agent_class, config)
        self.parent = parent
        self.path: str = f"{parent.path}/{spec.name}" if parent is not None else spec.name
        mailbox_spec = spec.mailbox if isinstance(spec, WorkerSpec) else MailboxSpec()
        self.mailbox = Mailbox(
            spec.name, mailbox_spec, self._refused, claimable=agent_class.answers_inline()
        )
        self.stats = AgentStats()
        self.status = AgentStatus.STARTING
        self.incarnation = 0
        #: Messages set aside by Agent.stash (the name's: they outlive an incarnation).
        self.stash: list[Envelope] = []
        #: Unstashed messages, handled before the mailbox's (by this or the next incarnation).
        self.unstashed: collections.deque[Envelope] = collections.deque()
        #: The current incarnation, None while there is none (stopped, restarting).
        self.host: Incarnation | None = None
        self.restarts = 0
        self.last_failure: str | None = None
        self.last_failure_at: float | None = None
        #: (file, line, function) of the last handler crash's frames, innermost last (None
        #: when the last failure was no crash): formatted only when a view asks.
        self._crash_frames: list[tuple[str, int, str]] | None = None
        #: Why the current incarnation refuses work (Agent.degrade), else None.
        self.degraded: str | None = None
        #: Why the current incarnation cannot do all its work while it serves the rest
        #: (Agent.impair: durable writes failing), else None.
        self.impaired: str | None = None
        self.children: dict[str, Cell] = {}
        self.watchers: set[str] = set()
        self.directives = directives_of(agent_class, spec)
        self.deliver = self.mailbox.put
        #: Set by an incarnation that can answer a blocking ask in the asker's
        #: thread (see Agent._answers_inline): called with the ask's envelope, it
        #: returns True once the reply is resolved, False to have it delivered.
        self.ask_inline: Callable[[Envelope], bool] | None = None

    @property
    def agent(self) -> Agent | None:
        """The current incarnation's behaviour (the agent class's instance), if any."""
        host = self.host
        return None if host is None else host.behaviour

    def descendants(self) -> list[str]:
        """The names of every cell below this one (a supervisor's subtree), depth first."""
        names: list[str] = []
        for child in self.children.values():
            names.append(child.name)
            names.extend(child.descendants())
        return names

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
            host = Incarnation(self, self.incarnation)
        except Exception as exc:  # noqa: BLE001 - converted to StartFailed, cause chained
            self._start_failed(f"{type(exc).__name__}: {exc}", exc)
        self.host = host
        host.run()
        if not host.started.wait(timeout):
            host.retire()
            self._start_failed(f"did not confirm its start within {timeout:g}s", None)
        if host.start_error is not None:
            error = host.start_error
            self._start_failed(f"{type(error).__name__}: {error}", error)

    def reconfigure(self, spec: WorkerSpec) -> None:
        """Take a new worker spec (live reload); the incarnation must be stopped.

        Queued messages are kept; a new mailbox bound takes the old queue over.
        """
        self.spec = spec
        self.agent_class = spec.agent
        self.config = coerce_config(spec.agent, spec.config)
        self.directives = directives_of(spec.agent, spec)
        claimable = spec.agent.answers_inline()
        if spec.mailbox != self.mailbox.spec or self.mailbox.claimable != claimable:
            old = self.mailbox
            self.mailbox = Mailbox(spec.name, spec.mailbox, self._refused, claimable=claimable)
            self.deliver = self.mailbox.put
            for env in old.drain():
                self.mailbox.put_system(env)

    def mark_running(self) -> None:
        """Called by a new incarnation's thread once ``on_start`` returned."""
        self.status = AgentStatus.RUNNING
        self.deliver = self.mailbox.put

    def _start_failed(self, reason: str, cause: BaseException | None) -> None:
        self.host = None
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
        returns; its in-flight ask and unanswered deferred asks get
        :class:`AgentCrashed` at once). Queued messages stay in the mailbox.
        """
        host = self.host
        self.host = None
        if host is None or host.actor_stopped.is_set():
            return True
        self.status = AgentStatus.STOPPING
        shutdown = self.spec.shutdown if timeout is None else timeout
        if shutdown == BRUTAL_KILL:
            host.retire()
            host.request_stop()
            return self._abandon(host, "brutal_kill")
        host.request_stop()
        if host.in_own_thread():
            return True
        if host.actor_stopped.wait(float(shutdown)):
            return True
        host.retire()
        return self._abandon(host, f"did not stop within {float(shutdown):g}s")

    def _abandon(self, host: Incarnation, why: str) -> bool:
        # Its asks are answered now: a reply its thread gives later is discarded.
        owed = AgentCrashed(agent=self.name, error=f"abandoned: {why}")
        in_flight = host.current
        if in_flight is not None and in_flight.reply is not None:
            in_flight.reply.resolve(owed)
        host.fail_deferred(owed)
        self.system.failures.abandoned(self.name)
        self.system.events.publish(AgentAbandoned(agent=self.name, reason=why))
        _log.warning(
            "agent_abandoned",
            agent=self.name,
            incarnation=host.incarnation,
            reason=why,
            stack=thread_stack(host.thread),
        )
        return False

    def replace_hung(self, reason: str) -> AgentHung | None:
        """Abandon the current incarnation as hung and let the supervisor replace it.

        Its in-flight ask (if any) and the asks it deferred and has not answered
        get :class:`AgentCrashed`; its thread is
        retired (it handles nothing more if it ever returns, and skips
        ``on_stop``); the supervisor receives the failure with the stuck
        thread's stack and restarts per its strategy, on the same mailbox.
        Returns the failure, or None if there was no running incarnation.
        """
        host = self.host
        if host is None or host.actor_stopped.is_set() or self.status is not AgentStatus.RUNNING:
            return None
        stack = thread_stack(host.thread)
        failure = AgentHung(self.name, reason, stack)
        host.retire()
        host.cancel_timers()
        owed = AgentCrashed(agent=self.name, error=str(failure))
        in_flight = host.current
        if in_flight is not None and in_flight.reply is not None:
            in_flight.reply.resolve(owed)
        host.fail_deferred(owed)
        self._record_failure(str(failure))
        self.system.failures.abandoned(self.name)
        self.system.events.publish(
            AgentCrashedEvent(agent=self.name, incarnation=host.incarnation, error=str(failure))
        )
        _log.error(
            "agent_hung", agent=self.name, incarnation=host.incarnation, reason=reason, stack=stack
        )
        self.host = None
        self.status = AgentStatus.RESTARTING
        self._notify_parent(ChildExited(self.name, host.incarnation, failure, self))
        return failure

    def incarnation_crashed(self, host: Incarnation, error: BaseException) -> None:
        """Called in the crashed incarnation's thread after ``on_failure``."""
        if host.retired or host.incarnation != self.incarnation:
            return
        self.host = None
        self.status = AgentStatus.RESTARTING
        trace = None if host.crash_trace is None else (host.crash_trace, time.perf_counter())
        self._notify_parent(ChildExited(self.name, host.incarnation, error, self), trace)

    def incarnation_stopped(self, host: Incarnation) -> None:
        """Called in the incarnation's thread after a graceful stop."""
        if host.stopped_normally and host.incarnation == self.incarnation and not host.retired:
            self.host = None
            self._notify_parent(ChildExited(self.name, host.incarnation, None, self))

    def _notify_parent(self, signal: ChildExited, trace: Any = None) -> None:
        # trace: the crashed message's span, so that the restart joins its trace.
        if self.parent is not None:
            self.parent.mailbox.put_system(Envelope(signal, trace=trace))
        elif self._on_root_exit is not None:
            self._on_root_exit(signal)

    def log_crash(self, host: Incarnation, env: Envelope, error: BaseException) -> None:
        """Record and log a handler crash, with the message's context."""
        self._record_failure(f"{type(error).__name__}: {error}")
        self._crash_frames = _frames(error)
        self.system.events.publish(
            AgentCrashedEvent(
                agent=self.name,
                incarnation=host.incarnation,
                error=self.last_failure or "",
                message_type=type(env.message).__name__,
            )
        )
        _log.error(
            "agent_crashed",
            agent=self.name,
            incarnation=host.incarnation,
            message_type=type(env.message).__name__,
            request_id=env.request_id,
            exc_info=error,
        )

    def log_resumed(self, host: Incarnation, env: Envelope, error: BaseException) -> None:
        """Log a handler failure the agent resumes from (Directive.RESUME)."""
        _log.warning(
            "agent_resumed",
            agent=self.name,
            incarnation=host.incarnation,
            message_type=type(env.message).__name__,
            request_id=env.request_id,
            exc_info=error,
        )

    def _record_failure(self, text: str) -> None:
        self.last_failure = text if len(text) <= 1000 else text[:997] + "..."
        self.last_failure_at = time.time()
        self._crash_frames = None

    @property
    def last_traceback(self) -> str | None:
        """The last handler crash's traceback (None when the last failure was no crash),
        its last 8000 characters."""
        frames = self._crash_frames
        if frames is None:
            return None
        summary = traceback.StackSummary.from_list([(f, n, name, None) for f, n, name in frames])
        text = "Traceback (most recent call last):\n" + "".join(summary.format())
        text += f"{self.last_failure}\n"
        return text if len(text) <= _TRACEBACK else "..." + text[-_TRACEBACK:]

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
        left = [*self.unstashed, *self.stash, *self.mailbox.drain()]
        self.unstashed.clear()
        self.stash.clear()
        for env in left:
            if env.reply is not None:
                env.reply.resolve(Unavailable(agent=self.name, reason=f"stopped: {reason}"))
            self.system.dead_letters.publish(self.name, env, DeadLetterReason.LEFT_IN_MAILBOX)
        watchers, self.watchers = self.watchers, set()
        for watcher in watchers:
            self.system.deathwatch.notify(watcher, Terminated(agent=self.name, reason=reason))


def _frames(error: BaseException) -> list[tuple[str, int, str]]:
    """Where ``error`` was raised: (file, line, function) per frame, innermost last (the
    frames themselves are not kept: they would keep their locals alive)."""
    frames: list[tuple[str, int, str]] = []
    tb = error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append((code.co_filename, tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    return frames[-_TRACEBACK_FRAMES:]
