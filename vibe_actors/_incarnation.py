"""Incarnation: the Pykka actor that hosts one incarnation of an agent.

An agent is two objects. The user's :class:`~vibe_actors.Agent` subclass is
behaviour only: handlers, hooks and the handler API. The
:class:`Incarnation` is the engine that runs it: a ``pykka.ThreadingActor``
(Pykka supplies the actor's identity, the inbox hook and the stopped event;
its inbox is the cell's mailbox, which outlives the incarnation), with the
runtime's own thread and receive loop, because Pykka's differ from OTP's
where it matters: a failing ask keeps a Pykka actor alive while a failing tell
kills it, ``on_start`` raising calls no hook, and its teardown drains the
inbox. Here every handler exception is a crash that goes to the supervisor, a
start failure reaches the supervisor through the start handshake, and the
queued messages stay for the next incarnation.

The stop protocol is this class's alone; the cell drives it through
:meth:`request_stop` and :meth:`retire`, and learns the outcome from
:meth:`Cell.incarnation_crashed` / :meth:`Cell.incarnation_stopped`, called
from the incarnation's thread.

What an incarnation owes when it ends: the replies it deferred
(:meth:`Agent.defer`) and did not give. It holds those handles in
:attr:`Incarnation.deferred` (a handle leaves the set when resolved, so the
set costs nothing to an agent that never defers) and answers the rest when
it ends (:meth:`Incarnation.fail_deferred`).

Its thread knows its incarnation (:data:`~vibe_actors._serving.serving`, a
thread-local set once per thread), so that a blocking ask made in it can be refused when it could
never be answered (:meth:`Incarnation.blocking_ask`, :class:`SelfAsk`).
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from bisect import bisect_left as _bisect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import pykka

from vibe_actors import _tracing
from vibe_actors._cell_directives import EscalationRequested, directive_for
from vibe_actors._envelope import Control, Envelope
from vibe_actors._errors import SelfAsk, StoppedByDirective
from vibe_actors._handler_api import HandlerApi
from vibe_actors._host import Deferred
from vibe_actors._messages import (
    IS_ERROR_REPLY,
    AgentCrashed,
    HandlerFailed,
    Unavailable,
)
from vibe_actors._serving import serving
from vibe_actors._spec import Directive
from vibe_actors._stats import DURATION_BUCKETS, Outcome

if TYPE_CHECKING:
    from vibe_actors._agent import Agent
    from vibe_actors._future import ReplyFuture
    from vibe_actors._hosting_cell import HostingCell
    from vibe_actors._timers import TimerHandle

__all__ = ["Incarnation", "run_hook", "serving_incarnation", "thread_stack"]

_perf = time.perf_counter
_monotonic = time.monotonic


def serving_incarnation() -> Incarnation | None:
    """The incarnation running in the current thread, else None."""
    host = serving.host
    return host if isinstance(host, Incarnation) else None


class Incarnation(HandlerApi, pykka.ThreadingActor):
    """One incarnation of the agent of ``cell``: its thread, its loop, its stop protocol.

    Constructing one builds the behaviour (the agent class's ``__init__`` runs
    here, in the caller's thread); an exception from it propagates (the cell
    makes it a start failure). :meth:`run` starts the thread; ``started`` is
    set once ``on_start`` returned (or raised: ``start_error``).
    """

    use_daemon_thread: ClassVar[bool] = True

    def __init__(self, cell: HostingCell[Incarnation], incarnation: int) -> None:
        self.cell: HostingCell[Incarnation] = cell
        self.incarnation = incarnation
        super().__init__()  # Pykka: the urn, the inbox (the cell's mailbox), actor_stopped
        #: Set to make the loop return after the current message (stop or retire).
        self.halted = False
        #: Replaced (abandoned or hung): handle nothing more, skip on_stop.
        self.retired = False
        #: Stopped by the agent itself (Agent.stop): a transient child stays stopped.
        self.stopped_normally = False
        #: The envelope being handled, else None (the watchdog and replace_hung read it).
        self.current: Envelope | None = None
        #: The span (and its context token) of a message whose handler raised, until the
        #: loop has logged the failure and ends it (vibe_actors._tracing.close_failed).
        self.span: Any = None
        #: The context of the span of the message whose handler crashed (traced, sampled):
        #: the supervisor's handling of the exit continues that trace.
        self.crash_trace: Any = None
        self.timers: dict[Any, TimerHandle] = {}
        self.started = threading.Event()
        self.start_error: BaseException | None = None
        self.thread: threading.Thread | None = None
        #: What the crash that ended this incarnation asks of its supervisor (its directive).
        self.directive = Directive.RESTART
        #: The handles of replies deferred and not given yet (see Deferred).
        self.deferred: set[Deferred] = set()
        #: The target and reply of the blocking ask this thread made last (blocking_ask);
        #: it is waiting on it while the reply is not done.
        self.waiting: tuple[Any, ReplyFuture] | None = None
        agent_class = cell.agent_class
        #: Per incarnation, so that degrade() can swap handlers in place (the loop holds it).
        self.handlers: dict[type, Callable[..., Any]] = agent_class.handler_table()
        self.fallback: Callable[..., Any] | None = agent_class.unhandled_hook()
        self.behaviour: Agent = agent_class.hosted_by(self)

    # -- what this incarnation owes ------------------------------------------------

    def fail_deferred(self, reply: Any) -> None:
        """Answer ``reply`` to every deferred ask not answered yet (this incarnation ends).

        Any thread; a handle resolved meanwhile by another thread keeps its own
        reply (the first reply wins), and one resolved later is discarded.
        """
        owed = self.deferred
        while owed:
            try:
                deferred = owed.pop()
            except KeyError:  # emptied meanwhile by a resolve in another thread
                return
            deferred.resolve(reply)

    def blocking_ask(self, target: Any, future: ReplyFuture) -> None:
        """Called in this incarnation's thread before it blocks in an ask of ``target``.

        Raises :class:`SelfAsk` when only this thread could answer: ``target`` is
        this incarnation's own cell, or an agent blocked in an ask of this one
        whose reply is not held by a :class:`Deferred` of ours (another thread
        may resolve that). Else records the ask, for that check made by others.
        """
        peer = getattr(target, "host", None)  # a pool's router has none: not checked
        if peer is not None:
            if peer is self:
                raise SelfAsk(self.cell.name)
            waiting = peer.waiting
            if (
                waiting is not None
                and waiting[0] is self.cell
                and not waiting[1].done()
                and not any(d.answers(waiting[1]) for d in list(self.deferred))
            ):
                raise SelfAsk(self.cell.name, peer.cell.name)
        self.waiting = (target, future)

    # -- the stop protocol ---------------------------------------------------------

    def request_stop(self, *, normal: bool = False) -> None:
        """Stop after the current message (``normal``: the agent stopped itself)."""
        if normal:
            self.stopped_normally = True
        self.halted = True
        self.cell.mailbox.put_system(Control(self.incarnation))

    def retire(self) -> None:
        """Replaced (abandoned or hung): handle nothing more, skip ``on_stop``.

        A message this incarnation takes from the mailbox from now on is handed
        back for the next one; its timers run on until it ends (a hung one's
        are cancelled by the cell).
        """
        self.retired = self.halted = True

    def in_own_thread(self) -> bool:
        return self.thread is not None and self.thread.ident == threading.get_ident()

    def cancel_timers(self) -> None:
        for handle in list(self.timers.values()):
            handle.cancel()
        self.timers.clear()

    # -- Pykka's hooks -------------------------------------------------------------

    def _create_actor_inbox(self) -> Any:  # type: ignore[override] # Pykka calls it on self
        # The mailbox belongs to the cell and outlives this incarnation.
        return self.cell.mailbox

    def _start_actor_loop(self) -> None:
        self.thread = threading.Thread(
            target=self._actor_loop,
            name=f"vibe:{self.cell.name}#{self.incarnation}",
            daemon=self.use_daemon_thread,
        )
        self.thread.start()

    def run(self) -> None:
        """Start the thread (once); ``started`` tells when ``on_start`` has run."""
        self._start_actor_loop()

    def _actor_loop(self) -> None:
        cell, agent = self.cell, self.behaviour
        serving.host = self
        try:
            agent.on_start()
        except Exception as exc:  # noqa: BLE001 - a start failure goes to the supervisor
            self.start_error = exc
            self._finish()
            self.started.set()
            return
        if not self.retired:
            cell.mark_running()  # before serving, so no reply can precede "running"
        self.started.set()
        crash = self._serve(cell, agent)
        if crash is not None:
            run_hook(agent, "on_failure", agent.on_failure, crash)
            if self.deferred:
                error = f"crashed before its deferred reply: {_short(crash)}"
                self.fail_deferred(AgentCrashed(agent=cell.name, error=error))
            self._finish()
            cell.incarnation_crashed(self, _directed(cell.name, crash, self.directive))
        else:
            if not self.retired:
                run_hook(agent, "on_stop", agent.on_stop)
            if self.deferred:  # retired: those deferred since it was replaced (abandoned)
                self.fail_deferred(Unavailable(agent=cell.name, reason="stopped"))
            self._finish()
            cell.incarnation_stopped(self)

    def _serve(self, cell: HostingCell[Incarnation], agent: Agent) -> BaseException | None:
        # One function, longer than most here, on purpose: the receive loop is the
        # hot path, and a call per message to a helper would cost more than it reads
        # better. The hot path: everything is a local, statistics are updated inline
        # (see AgentStats.record), and one flag load per message decides
        # whether to stop.
        get = cell.mailbox.get
        pending = cell.unstashed  # unstashed messages go before the mailbox's
        handlers = self.handlers
        stats = cell.stats
        ok, ok_get = stats.ok, stats.ok.get
        error_reply, buckets, sums = stats.error_reply, stats.buckets, stats.duration_sum
        bounds = DURATION_BUCKETS
        is_error = IS_ERROR_REPLY
        name = cell.name
        directives = cell.directives
        while True:
            env = pending.popleft() if pending else get()
            if isinstance(env, Control):
                if self.halted:
                    return None
                continue
            if self.retired:
                # Replaced while waiting: hand the message to the current incarnation.
                cell.mailbox.put_system(env)
                return None
            msg = env.message
            cls = msg.__class__
            deadline = env.deadline
            if deadline is not None and _monotonic() > deadline:
                stats.count(cls, Outcome.EXPIRED)
                cell.expired(env)
                continue
            fn = handlers.get(cls) or self.fallback
            if fn is None:
                stats.count(cls, Outcome.UNHANDLED)
                cell.unhandled(env)
                continue
            self.current = env
            started = _perf()
            try:
                if env.trace is None:  # tracing off (or an untraced message): no span
                    result = fn(agent, msg)
                else:
                    result = _tracing.handle(self, fn, agent, msg, env)
            except Exception as exc:  # noqa: BLE001 - a crash: reported, then supervised
                directive = directive_for(directives, exc) if directives else _RESTART
                if directive is Directive.RESUME:  # the state stays; only this message failed
                    stats.record(cls, Outcome.FAILED, _perf() - started)
                    self.current = None
                    if env.reply is not None:
                        env.reply.resolve(HandlerFailed(agent=name, error=_short(exc)))
                    cell.log_resumed(self, env, exc)
                    if self.span is not None:
                        _tracing.close_failed(self, "failed", directive.value)
                    if self.halted:
                        return None
                    continue
                stats.record(cls, Outcome.CRASHED, _perf() - started)
                self.current = None
                if env.reply is not None:
                    env.reply.resolve(AgentCrashed(agent=name, error=_short(exc)))
                cell.log_crash(self, env, exc)
                if self.span is not None:  # the supervisor's handling joins the trace
                    self.crash_trace = _tracing.close_failed(self, "crashed", directive.value)
                self.directive = directive
                return exc
            elapsed = _perf() - started
            buckets[_bisect(bounds, elapsed)] += 1
            sums[0] += elapsed
            if is_error[result.__class__]:
                error_reply[cls] = error_reply.get(cls, 0) + 1
            else:
                ok[cls] = ok_get(cls, 0) + 1
            self.current = None
            reply = env.reply  # None for a tell, or after defer()
            if reply is not None:
                reply.resolve(result)
            if self.halted:
                return None

    def _finish(self) -> None:
        self.cancel_timers()
        self.unstash_all()  # what is still stashed goes first to the next incarnation
        self.actor_stopped.set()


def run_hook(agent: Agent, hook: str, fn: Callable[..., None], *args: Any) -> None:
    """Run a lifecycle hook; its error is logged (with the agent's context) and not raised:
    the stop or crash it belongs to completes."""
    try:
        fn(*args)
    except Exception:
        agent.log.exception("hook_failed", hook=hook)


_RESTART = Directive.RESTART


def _directed(name: str, crash: BaseException, directive: Directive) -> BaseException:
    """The failure to report: the crash itself, or wrapped for a stop or an escalation."""
    if directive is Directive.STOP:
        stopped = StoppedByDirective(name, crash)
        stopped.__cause__ = crash
        return stopped
    if directive is Directive.ESCALATE:
        escalation = EscalationRequested(name, crash)
        escalation.__cause__ = crash
        return escalation
    return crash


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 500 else text[:497] + "..."


def thread_stack(thread: threading.Thread | None) -> str | None:
    """The current stack of ``thread`` as text (None if it is not running)."""
    if thread is None or thread.ident is None:
        return None
    frame = sys._current_frames().get(thread.ident)  # noqa: SLF001 - CPython's documented API
    return "".join(traceback.format_stack(frame)) if frame is not None else None
