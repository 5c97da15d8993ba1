"""Agent: the base class of every actor, over ``pykka.ThreadingActor``.

Pykka supplies the thread and the actor's identity; the receive loop is ours,
because Pykka's differs from OTP's where it matters: a failing ask keeps a
Pykka actor alive while a failing tell kills it, ``on_start`` raising calls no
hook, and its teardown drains the inbox. Here every handler exception is a
crash that goes to the supervisor, a start failure reaches the supervisor
through the start handshake, and the mailbox outlives the incarnation so that
a restarted agent finds the messages that were queued for it.
"""

from __future__ import annotations

import threading
import time
import types
import typing
from bisect import bisect_left as _bisect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, overload

import pykka
import structlog

from vibe_actors._envelope import Control, Envelope, ReplySlot
from vibe_actors._errors import InjectedCrash
from vibe_actors._handlers import collect_handlers, handler, return_types
from vibe_actors._messages import (
    IS_ERROR_REPLY,
    AgentCrashed,
    Message,
    Ping,
    Pong,
    Unavailable,
)
from vibe_actors._signals import InjectedFault
from vibe_actors._stats import DURATION_BUCKETS, Outcome

if TYPE_CHECKING:
    from typing_extensions import TypeVar

    from vibe_actors._authz import Caller
    from vibe_actors._cell import Cell
    from vibe_actors._ref import Ref
    from vibe_actors._system import ActorSystem
    from vibe_actors._timers import TimerHandle

    # The messages an agent accepts (``class Store(Agent[Put | Get])``). Defaults to Any
    # (PEP 696), so a plain ``class Store(Agent)`` is ``Agent[Any]`` and accepts anything.
    M = TypeVar("M", default=Any)
    #: Another agent's messages (Agent.ref's ``agent=``).
    N = TypeVar("N")
else:
    from typing import TypeVar

    # TypeVar(default=...) is Python 3.13; only type checkers need the default.
    M = TypeVar("M")

__all__ = ["Agent", "Deferred"]

_perf = time.perf_counter
_monotonic = time.monotonic


class Deferred:
    """A reply the handler will give later (see :meth:`Agent.defer`).

    :meth:`resolve` may be called from any thread, once; later calls do nothing.
    """

    __slots__ = ("_future",)

    def __init__(self, future: ReplySlot | None) -> None:
        self._future = future

    def resolve(self, reply: Any) -> None:
        """Send ``reply`` to the asker (nothing happens for a tell)."""
        if self._future is not None:
            self._future.resolve(reply)


_DEFERRED = object()


if TYPE_CHECKING:

    class _ThreadingActor:
        """What Agent takes from ``pykka.ThreadingActor``, as type checkers see it.

        Pykka's hooks and entry points (``on_failure(exc_type, exc, tb)``, ``on_receive``,
        ``start``, ``actor_ref``) belong to Pykka's receive loop, which Agent replaces;
        declaring them here would make every agent's ``on_failure(error)`` an incompatible
        override in the user's own code. At runtime the base is Pykka's class.
        """

        use_daemon_thread: ClassVar[bool]
        actor_stopped: threading.Event

        def __init__(self) -> None: ...

else:
    _ThreadingActor = pykka.ThreadingActor


class Agent(_ThreadingActor, Generic[M]):
    """Base class of every agent.

    Define one method per message type with :func:`handler`; the type comes
    from the annotation. A handler's return value is the reply to an ask
    (ignored for a tell). Every agent answers :class:`Ping` with :class:`Pong`.

    Typed refs: declare the messages others may send as the type parameter,
    ``class Store(Agent[Put | Get])``; then ``system.ref("store", agent=Store)``
    is a ``Ref[Put | Get]`` and sending it anything else is a type error. Each
    declared message class must have a handler (checked when the class is
    created); handled but undeclared types (timer ticks to self) stay private.

    Failure contract:

    * A handler that raises crashes this incarnation, for tell and ask alike:
      the asker of that message gets :class:`AgentCrashed` at once, the message
      is not retried, :meth:`on_failure` runs, and the supervisor decides.
      Messages still queued stay in the mailbox for the next incarnation.
    * The runtime constructs agents itself: do not call ``start()``. An
      ``__init__`` override takes no arguments and must call
      ``super().__init__()``; read settings from :attr:`config`.
    """

    use_daemon_thread: ClassVar[bool] = True
    #: The msgspec Struct that validates this agent's ``config`` (Phoenix uses it).
    Config: ClassVar[type | None] = None
    _handlers: ClassVar[dict[type, Callable[..., Any]]] = {}
    #: ``on_unhandled`` when a subclass overrides it, else None (see there).
    _unhandled_hook: ClassVar[Callable[..., Any] | None] = None
    #: The message classes of the type parameter (see declared_messages).
    _declared: ClassVar[tuple[type, ...]] = ()
    #: Whether this agent's mailbox is claimable (Mailbox.claim) so that an
    #: incarnation may answer blocking asks in the asker's thread through
    #: ``Cell.ask_inline``. Internal: Ray placement's proxies use it.
    _answers_inline: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handlers = collect_handlers(cls)
        fallback = cls.on_unhandled
        cls._unhandled_hook = None if fallback is Agent.on_unhandled else fallback
        declared = _declaration(cls)
        if declared is not None:
            cls._declared = declared
            if cls._unhandled_hook is None:
                _check_declared(cls, declared)

    # -- construction (by the runtime only) -------------------------------

    _cell: Cell
    incarnation: int

    @classmethod
    def _incarnate(cls, cell: Cell, incarnation: int) -> Agent:
        agent = cls.__new__(cls)
        agent._cell = cell
        agent.incarnation = incarnation
        agent.__init__()  # type: ignore[misc]
        return agent

    def __init__(self) -> None:
        super().__init__()
        #: Set to make the loop return after the current message (stop or retire).
        self._halt = False
        #: Replaced (abandoned or hung): handle nothing more, skip on_stop.
        self._retired = False
        self._normal_stop = False
        self._current: Envelope | None = None
        self._timers: dict[Any, TimerHandle] = {}
        self._watching: set[str] = set()
        # Per incarnation, so degrade() can swap handlers in place (the loop holds this dict).
        self._table: dict[type, Callable[..., Any]] = dict(type(self)._handlers)
        self._fallback: Callable[..., Any] | None = type(self)._unhandled_hook
        self.started = threading.Event()
        self.start_error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self.log = structlog.get_logger("vibe_actors.agent").bind(
            agent=self._cell.name, incarnation=self.incarnation
        )

    def _create_actor_inbox(self) -> Any:
        # The mailbox belongs to the cell and outlives this incarnation.
        return self._cell.mailbox

    def _start_actor_loop(self) -> None:
        self.thread = threading.Thread(
            target=self._actor_loop,
            name=f"vibe:{self._cell.name}#{self.incarnation}",
            daemon=True,
        )
        self.thread.start()

    # -- what a handler may use ------------------------------------------

    @property
    def name(self) -> str:
        """This agent's name (the same across restarts)."""
        return self._cell.name

    @property
    def config(self) -> Any:
        """This agent's settings: an instance of its ``Config`` struct (defaults when the
        spec gave none, a mapping converted), or the spec's ``config`` as is when the
        class declares no ``Config``."""
        return self._cell.config

    @property
    def system(self) -> ActorSystem:
        """The system this agent runs in."""
        return self._cell.system

    @property
    def envelope(self) -> Envelope | None:
        """The envelope being handled (request id, sender, deadline), else ``None``."""
        return self._current

    @property
    def caller(self) -> Caller | None:
        """On whose behalf the message being handled was sent (None: trusted code).

        Work accepted now and done later for that caller (a reminder, a job, a
        fan-out) must be sent with ``caller=self.caller``, so that it is
        authorised as the caller's own send would be (:mod:`vibe_actors._authz`).
        """
        env = self._current
        return env.caller if env is not None else None

    @property
    def stopping(self) -> bool:
        """Whether this incarnation was told to stop (or was retired as hung): a handler
        that waits on something long (a child process, a remote call) should check it
        and return, so that the stop is not held up. Safe from any thread."""
        return self._halt

    @property
    def mailbox_size(self) -> int:
        """Messages waiting behind the current one."""
        return self._cell.mailbox.qsize()

    @overload
    def ref(self, name: str) -> Ref[Any]: ...

    @overload
    def ref(self, name: str, *, agent: type[Agent[N]]) -> Ref[N]: ...

    def ref(self, name: str, *, agent: type[Agent[Any]] | None = None) -> Ref[Any]:
        """A ref to another agent; sends through it carry this agent as sender.

        ``agent`` (the class running under ``name``) only types the ref: with
        ``class Store(Agent[Put | Get])``, ``self.ref("store", agent=Store)`` is a
        ``Ref[Put | Get]``. It is not checked at runtime (the name may not exist yet).
        """
        return self._cell.system.ref(name, sender=self._cell.name)

    def defer(self) -> Deferred:
        """Reply later: the current ask stays open until the returned handle resolves.

        Used for batching (group commit): collect the handles, then resolve
        them when the batch is durable. Outside a handler it raises RuntimeError.
        """
        env = self._current
        if env is None:
            raise RuntimeError("defer() is only valid inside a handler")
        future, env.reply = env.reply, None  # the loop will not reply for this message
        return Deferred(future)

    def degrade(self, reason: str) -> None:
        """Keep running but refuse work: every message except :class:`Ping` gets
        :class:`Unavailable` with ``reason`` until this incarnation ends.

        For an agent whose resource is unusable (a corrupt database file):
        the rest of the system starts and serves, while readiness and
        ``tree()`` name this agent and the reason. A restart (a new
        incarnation) tries again. Takes effect from the next message; safe in
        ``on_start`` and in a handler.
        """
        name = self._cell.name

        def unavailable(agent: Agent, msg: Any) -> Unavailable:
            return Unavailable(agent=name, reason=reason)

        for message_type in list(self._table):
            if message_type is not Ping and issubclass(message_type, Message):
                self._table[message_type] = unavailable
        if self._fallback is not None:
            self._fallback = unavailable
        self._cell.degraded = reason
        self.log.error("agent_degraded", reason=reason)

    def impair(self, reason: str | None) -> None:
        """Report that this agent cannot do all its work (``reason``), or can again (None).

        Unlike :meth:`degrade` nothing is refused by the runtime: the agent keeps
        handling every message and answers what it cannot do with its own error
        replies (a durable agent whose disk is full still serves reads). Readiness
        and ``tree()`` name the agent and the reason until it reports None or
        the incarnation ends. Safe from any thread.
        """
        cell = self._cell
        if cell.impaired == reason:
            return
        cell.impaired = reason
        if reason is None:
            self.log.info("agent_recovered")
        else:
            self.log.error("agent_impaired", reason=reason)

    def stop(self) -> None:
        """Stop this agent normally after the current message.

        A transient or temporary agent that stops this way is not restarted; a
        permanent one is (OTP semantics).
        """
        self._normal_stop = True
        self._halt = True
        self._cell.mailbox.put_system(Control(self.incarnation))

    def watch(self, name: str) -> None:
        """Receive :class:`Terminated` when ``name`` stops for good (at once if it has)."""
        self._watching.add(name)
        self._cell.system._watch(self._cell.name, name)

    def unwatch(self, name: str) -> None:
        """Stop watching ``name``; a Terminated already queued may still arrive."""
        self._watching.discard(name)
        self._cell.system._unwatch(self._cell.name, name)

    def start_timer(self, key: Any, message: Any, delay: float, *, repeat: bool = False) -> None:
        """Send ``message`` to self after ``delay`` s (every ``delay`` s if ``repeat``).

        Replaces a timer with the same key. Every timer is cancelled when this
        incarnation stops or crashes, so a restarted agent starts with none.
        """
        self.cancel_timer(key)
        timers = self._cell.system._timers
        deliver = self._cell.deliver_timer
        if repeat:
            handle = timers.call_every(delay, deliver, self.incarnation, message)
        else:
            handle = timers.call_later(delay, deliver, self.incarnation, message)
        self._timers[key] = handle

    def cancel_timer(self, key: Any) -> bool:
        """Cancel the timer ``key``; returns whether one was active."""
        handle = self._timers.pop(key, None)
        if handle is None:
            return False
        handle.cancel()
        return True

    # -- lifecycle hooks ---------------------------------------------------

    def on_start(self) -> None:
        """Runs in the agent's thread before the first message.

        If it raises, the incarnation never serves: the supervisor that started
        it gets the exception as the start failure (initial start: the whole
        start fails with :class:`StartFailed`; restart: it counts as another
        failure toward the restart intensity). :meth:`on_stop` is not called.
        """

    def on_stop(self) -> None:
        """Runs in the agent's thread after its last message on a graceful stop.

        Called on shutdown and when a supervisor restarts this agent because
        of a sibling. Not called after a crash (see :meth:`on_failure`). If it
        raises, the error is logged and the stop completes.
        """

    def on_failure(self, error: BaseException) -> None:
        """Runs in the agent's thread right after a handler raised ``error``.

        For releasing resources before the supervisor acts. If it raises, that
        error is logged and the crash proceeds with the original error.
        """

    def on_unhandled(self, message: Any) -> Any:
        """The fallback handler: override it to handle messages no ``@handler`` takes.

        Not overridden (the default), such a message is refused: an asker gets
        :class:`UnknownMessage` and it becomes a dead letter (``unhandled``).
        Overridden, it runs like a handler for any message type without one
        (runtime signals included): its return value is the reply to an ask,
        and raising crashes the agent. :meth:`degrade` replaces it too.
        Proxies, recorders and test probes use it.
        """

    @handler
    def _ping(self, msg: Ping) -> Pong:
        return Pong(agent=self._cell.name, incarnation=self.incarnation)

    @handler
    def _injected_fault(self, fault: InjectedFault) -> None:
        if fault.action is not None:  # the test kit's faults (vibe_actors.testing)
            fault.action(self)
            return
        if fault.kind == "crash":
            raise InjectedCrash(f"injected crash in {self._cell.name}")
        threading.Event().wait(fault.seconds)  # a hang: the thread is busy, the mailbox waits

    @classmethod
    def reply_types(cls, message_type: type) -> tuple[type, ...]:
        """The reply types the handler of ``message_type`` declares (its return annotation)."""
        fn = cls._handlers.get(message_type)
        return () if fn is None else return_types(fn)

    @classmethod
    def declared_messages(cls) -> tuple[type, ...]:
        """The message classes others may send, as declared by ``class X(Agent[A | B])``
        (inherited by subclasses); ``()`` when the class declares none (``Agent[Any]``)."""
        return cls._declared

    @classmethod
    def message_types(cls) -> tuple[type[Message], ...]:
        """The public message types this agent handles (its protocol)."""
        return tuple(t for t in cls._handlers if issubclass(t, Message))

    # -- the receive loop ----------------------------------------------------

    def _actor_loop(self) -> None:
        cell = self._cell
        try:
            self.on_start()
        except Exception as exc:  # noqa: BLE001 - a start failure goes to the supervisor
            self.start_error = exc
            self._finish()
            self.started.set()
            return
        if not self._retired:
            cell.mark_running()  # before serving, so no reply can precede "running"
        self.started.set()
        crash = self._serve(cell)
        if crash is not None:
            self._run_hook("on_failure", self.on_failure, crash)
            self._finish()
            cell.incarnation_crashed(self, crash)
        else:
            if not self._retired:
                self._run_hook("on_stop", self.on_stop)
            self._finish()
            cell.incarnation_stopped(self)

    def _serve(self, cell: Cell) -> BaseException | None:
        # The hot path: everything is a local, statistics are updated inline
        # (see AgentStats.record), and one flag load per message decides
        # whether to stop.
        get = cell.mailbox.get
        handlers = self._table
        stats = cell.stats
        ok, ok_get = stats.ok, stats.ok.get
        error_reply, buckets, sums = stats.error_reply, stats.buckets, stats.duration_sum
        bounds = DURATION_BUCKETS
        is_error = IS_ERROR_REPLY
        name = cell.name
        while True:
            env = get()
            if isinstance(env, Control):
                if self._halt:
                    return None
                continue
            if self._retired:
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
            fn = handlers.get(cls) or self._fallback
            if fn is None:
                stats.count(cls, Outcome.UNHANDLED)
                cell.unhandled(env)
                continue
            self._current = env
            started = _perf()
            try:
                result = fn(self, msg)
            except Exception as exc:  # noqa: BLE001 - a crash: reported, then supervised
                stats.record(cls, Outcome.CRASHED, _perf() - started)
                self._current = None
                if env.reply is not None:
                    env.reply.resolve(AgentCrashed(agent=name, error=_short(exc)))
                cell.log_crash(self, env, exc)
                return exc
            elapsed = _perf() - started
            buckets[_bisect(bounds, elapsed)] += 1
            sums[0] += elapsed
            if is_error[result.__class__]:
                error_reply[cls] = error_reply.get(cls, 0) + 1
            else:
                ok[cls] = ok_get(cls, 0) + 1
            self._current = None
            reply = env.reply  # None for a tell, or after defer()
            if reply is not None:
                reply.resolve(result)
            if self._halt:
                return None

    def _finish(self) -> None:
        self._cancel_timers()
        self.actor_stopped.set()

    def _cancel_timers(self) -> None:
        for handle in list(self._timers.values()):
            handle.cancel()
        self._timers.clear()

    def _run_hook(self, hook: str, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # a hook's error is logged; the stop or crash completes
            self.log.exception("hook_failed", hook=hook)


def _declaration(cls: type[Agent[Any]]) -> tuple[type, ...] | None:
    """The classes in ``class X(Agent[A | B])`` (X's own bases only), else None."""
    for base in cls.__dict__.get("__orig_bases__", ()):
        origin = typing.get_origin(base)
        if not (isinstance(origin, type) and issubclass(origin, Agent)):
            continue
        members: list[type] = []
        for declared in typing.get_args(base):
            if isinstance(declared, types.UnionType) or typing.get_origin(declared) is typing.Union:
                candidates = typing.get_args(declared)
            else:
                candidates = (declared,)
            members.extend(m for m in candidates if isinstance(m, type) and m is not Message)
        return tuple(members)
    return None


def _check_declared(cls: type[Agent[Any]], declared: tuple[type, ...]) -> None:
    """Refuse ``class X(Agent[A | B])`` unless X has a handler for A and for B."""
    missing = [m.__name__ for m in declared if m not in cls._handlers]
    if missing:
        raise TypeError(
            f"{cls.__qualname__} declares {', '.join(missing)} in Agent[...] "
            "but has no handler for it"
        )


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 500 else text[:497] + "..."
