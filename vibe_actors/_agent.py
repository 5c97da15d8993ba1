"""Agent: the base class of every actor's behaviour.

An agent is two objects: the user's :class:`Agent` subclass is behaviour only
(handlers, lifecycle hooks, and the handler API below), and a host runs it:
locally an :class:`~vibe_actors._incarnation.Incarnation` (the Pykka actor
that owns the thread, the receive loop and the stop protocol, see there),
under Ray placement the remote host (:mod:`vibe_actors.ray`). The handler API
reaches the host only through the small :class:`Host` protocol.
"""

# Past ~400 lines by its docstrings: the handler API's reference (what users read in
# docs/reference); the code is about 240 lines, one class (see the note on Agent).

from __future__ import annotations

import threading
import types
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, cast, overload

import structlog

from vibe_actors._errors import InjectedCrash
from vibe_actors._handlers import collect_handlers, handler, handler_states, return_types
from vibe_actors._host import Deferred, Host
from vibe_actors._messages import Message, Ping, Pong, Unavailable
from vibe_actors._signals import InjectedFault
from vibe_actors._spec import Directive

if TYPE_CHECKING:
    from typing_extensions import TypeVar

    from vibe_actors._authz import Caller
    from vibe_actors._cell import Cell
    from vibe_actors._envelope import Envelope
    from vibe_actors._ref import Ref
    from vibe_actors._system import ActorSystem

    # The messages an agent accepts (``class Store(Agent[Put | Get])``). Defaults to Any
    # (PEP 696), so a plain ``class Store(Agent)`` is ``Agent[Any]`` and accepts anything.
    M = TypeVar("M", default=Any)
    #: Another agent's messages (Agent.ref's ``agent=``).
    N = TypeVar("N")
else:
    from typing import TypeVar

    # TypeVar(default=...) is Python 3.13; only type checkers need the default.
    M = TypeVar("M")

__all__ = ["Agent", "Deferred", "Host"]


# Agent has more methods than a class here should: it is the handler API, the one base
# class users write against (hooks, the handler API, class-level introspection), and
# each method is a few lines over the Host protocol that does the work.
class Agent(Generic[M]):
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
    * The runtime constructs agents itself. An ``__init__`` override takes no
      arguments and must call ``super().__init__()``; read settings from
      :attr:`config`.
    """

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
    #: The state an incarnation starts in (see :meth:`become`); None: only the
    #: handlers without ``when``.
    initial_state: ClassVar[str | None] = None
    #: How many messages :meth:`stash` may hold; one more raises StashOverflow.
    stash_capacity: ClassVar[int] = 1000
    #: Exception class -> :class:`Directive` (resume, restart, stop, escalate) for a
    #: handler's exception; the most specific class of its MRO decides; unnamed: restart.
    directives: ClassVar[Mapping[type[BaseException], Directive]] = {}
    #: State name -> its handler table (the handlers of every state included).
    _states: ClassVar[dict[str, dict[type, Callable[..., Any]]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handlers = collect_handlers(cls)
        cls._states = {state: collect_handlers(cls, state) for state in handler_states(cls)}
        if cls.initial_state is not None and cls.initial_state not in cls._states:
            cls._states[cls.initial_state] = cls._handlers
        fallback = cls.on_unhandled
        cls._unhandled_hook = None if fallback is Agent.on_unhandled else fallback
        declared = _declaration(cls)
        if declared is not None:
            cls._declared = declared
            if cls._unhandled_hook is None:
                _check_declared(cls, declared)

    # -- construction (by a host only) -------------------------------------

    _host: Host

    @classmethod
    def hosted_by(cls, host: Host) -> Agent:
        """A new instance of this behaviour for ``host`` (its ``__init__`` runs here).

        Called by the host of an incarnation; an exception from ``__init__``
        propagates (the runtime reports it as a start failure).
        """
        agent = cls.__new__(cls)
        agent._host = host  # noqa: SLF001 - the class builds its own instance
        agent.__init__()  # type: ignore[misc]
        return agent

    @classmethod
    def handler_table(cls) -> dict[type, Callable[..., Any]]:
        """A fresh copy of message type -> handler in the initial state (a host's
        per-incarnation table)."""
        state = cls.initial_state
        return dict(cls._handlers if state is None else cls._states[state])

    @classmethod
    def handler_for(cls, message_type: type) -> Callable[..., Any] | None:
        """The class's handler function of ``message_type`` (None if it has none; a
        state's, if only a state has one)."""
        found = cls._handlers.get(message_type)
        for table in cls._states.values():
            found = found or table.get(message_type)
        return found

    @classmethod
    def answers_inline(cls) -> bool:
        """Whether a blocking ask may be answered in the asker's thread (a placement's proxy:
        its mailbox is claimable, see ``Mailbox.claim`` and ``Cell.ask_inline``)."""
        return cls._answers_inline

    @classmethod
    def unhandled_hook(cls) -> Callable[..., Any] | None:
        """``on_unhandled`` if this class overrides it, else None (unhandled is refused)."""
        return cls._unhandled_hook

    def __init__(self) -> None:
        try:
            host = self._host
        except AttributeError:
            raise TypeError(
                f"{type(self).__qualname__}(): agents are created by the runtime: put a "
                f"WorkerSpec(name=..., agent={type(self).__qualname__}) in the tree given to "
                "ActorSystem, start it, and talk to the agent through system.ref(name)"
            ) from None
        self.log = structlog.get_logger("vibe_actors.agent").bind(
            agent=host.name, incarnation=host.incarnation
        )

    @property
    def incarnation(self) -> int:
        """This incarnation's number (1 for the first start, then one more per restart)."""
        return self._host.incarnation

    @property
    def _cell(self) -> Cell:
        """The cell of a locally hosted agent (the runtime's own agents use it)."""
        return self._host.cell  # type: ignore[attr-defined,no-any-return]

    # -- what a handler may use ------------------------------------------

    @property
    def name(self) -> str:
        """This agent's name (the same across restarts)."""
        return self._host.name

    @property
    def config(self) -> Any:
        """This agent's settings: an instance of its ``Config`` struct (defaults when the
        spec gave none, a mapping converted), or the spec's ``config`` as is when the
        class declares no ``Config``."""
        return self._host.config

    @property
    def system(self) -> ActorSystem:
        """The system this agent runs in."""
        # The host knows the system as the engine's Runtime; handlers get the embedding API
        # it is (under Ray placement, its stand-in with the same API). The one type-only
        # import of ActorSystem below it: a protocol would copy the whole embedding API.
        return cast("ActorSystem", self._host.system)

    @property
    def envelope(self) -> Envelope | None:
        """The envelope being handled (request id, sender, deadline), else ``None``."""
        return self._host.current

    @property
    def caller(self) -> Caller | None:
        """On whose behalf the message being handled was sent (None: trusted code).

        Work accepted now and done later for that caller (a reminder, a job, a
        fan-out) must be sent with ``caller=self.caller``, so that it is
        authorised as the caller's own send would be (:mod:`vibe_actors._authz`).
        """
        return self._host.current_caller()

    @property
    def stopping(self) -> bool:
        """Whether this incarnation was told to stop (or was retired as hung): a handler
        that waits on something long (a child process, a remote call) should check it
        and return, so that the stop is not held up. Safe from any thread."""
        return self._host.halted

    @property
    def mailbox_size(self) -> int:
        """Messages waiting behind the current one."""
        return self._host.mailbox_size()

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
        return self.system.ref(name, sender=self._host.name)

    def defer(self) -> Deferred:
        """Reply later: the current ask stays open until the returned handle resolves.

        Used for batching (group commit): collect the handles, then resolve
        them when the batch is durable. Outside a handler it raises RuntimeError.

        If this incarnation ends with the handle unresolved, the runtime answers
        the asker: :class:`AgentCrashed` after a crash (once :meth:`on_failure`
        returned), when it is replaced as hung or abandoned; :class:`Unavailable`
        with reason ``stopped`` after a graceful stop (once :meth:`on_stop`
        returned). Those hooks may resolve the handles with a reply of their own
        first. A resolve after that is discarded.
        """
        host = self._host
        env = host.current
        if env is None:
            raise RuntimeError("defer() is only valid inside a handler")
        future, env.reply = env.reply, None  # the loop will not reply for this message
        if future is None:  # a tell: nothing to answer
            return Deferred(None)
        return host.defer_reply(future)

    # -- states and the stash (an FSM without a hand-written dispatcher) --------

    @property
    def state_name(self) -> str | None:
        """The state this incarnation is in (:meth:`become`); starts at ``initial_state``."""
        return self.__dict__.get("_state_name", type(self).initial_state)

    def become(self, state: str | None) -> None:
        """Switch to ``state``: from the next message, the handlers without ``when`` and
        those with ``@handler(when=state)`` (which win) are the active ones.

        ``None`` leaves only the handlers without ``when``. A new incarnation
        starts in ``initial_state`` again. A degraded agent stays degraded.
        Raises ValueError for a state no handler names (nor ``initial_state``).
        """
        cls = type(self)
        if state is not None and state not in cls._states:
            known = ", ".join(sorted(cls._states)) or "none"
            raise ValueError(f"{cls.__qualname__} has no state {state!r} (states: {known})")
        table = self._host.handlers
        table.clear()  # in place: the receive loop holds this dict
        table.update(cls._handlers if state is None else cls._states[state])
        self.__dict__["_state_name"] = state
        reason = self.__dict__.get("_degraded")
        if reason is not None:
            self._refuse_all(reason)

    def stash(self) -> None:
        """Set the message being handled aside, to handle it again after :meth:`unstash_all`.

        Its asker keeps waiting (its deadline still holds: an expired one is
        not run again). The stash belongs to the agent's name: messages still
        stashed when an incarnation ends are handled first by the next one.
        Raises :class:`StashOverflow` (a crash) beyond ``stash_capacity``, and
        RuntimeError outside a handler.
        """
        self._host.stash_current(type(self).stash_capacity)

    def unstash_all(self) -> int:
        """Put every stashed message back, in the order they came, ahead of the mailbox;
        returns how many. Typically called right after :meth:`become`."""
        return self._host.unstash_all()

    @property
    def stashed(self) -> int:
        """Messages in the stash."""
        return self._host.stash_size()

    def degrade(self, reason: str) -> None:
        """Keep running but refuse work: every message except :class:`Ping` gets
        :class:`Unavailable` with ``reason`` until this incarnation ends.

        For an agent whose resource is unusable (a corrupt database file):
        the rest of the system starts and serves, while readiness and
        ``tree()`` name this agent and the reason. A restart (a new
        incarnation) tries again. Takes effect from the next message; safe in
        ``on_start`` and in a handler.
        """
        self.__dict__["_degraded"] = reason
        self._refuse_all(reason)
        self._host.report_degraded(reason)
        self.log.error("agent_degraded", reason=reason)

    def _refuse_all(self, reason: str) -> None:
        host = self._host
        name = host.name

        def unavailable(agent: Agent, msg: Any) -> Unavailable:
            return Unavailable(agent=name, reason=reason)

        table = host.handlers
        for message_type in list(table):
            if message_type is not Ping and issubclass(message_type, Message):
                table[message_type] = unavailable
        if host.fallback is not None:
            host.fallback = unavailable

    def impair(self, reason: str | None) -> None:
        """Report that this agent cannot do all its work (``reason``), or can again (None).

        Unlike :meth:`degrade` nothing is refused by the runtime: the agent keeps
        handling every message and answers what it cannot do with its own error
        replies (a durable agent whose disk is full still serves reads). Readiness
        and ``tree()`` name the agent and the reason until it reports None or
        the incarnation ends. Safe from any thread.
        """
        if not self._host.report_impaired(reason):
            return
        if reason is None:
            self.log.info("agent_recovered")
        else:
            self.log.error("agent_impaired", reason=reason)

    @property
    def impaired(self) -> str | None:
        """Why this agent cannot do all its work (:meth:`impair`), else None."""
        return self._host.impaired

    def stop(self) -> None:
        """Stop this agent normally after the current message.

        A transient or temporary agent that stops this way is not restarted; a
        permanent one is (OTP semantics).
        """
        self._host.request_stop(normal=True)

    def watch(self, name: str) -> None:
        """Receive :class:`Terminated` when ``name`` stops for good (at once if it has)."""
        self._host.watch(name)

    def unwatch(self, name: str) -> None:
        """Stop watching ``name``; a Terminated already queued may still arrive."""
        self._host.unwatch(name)

    def start_timer(self, key: Any, message: Any, delay: float, *, repeat: bool = False) -> None:
        """Send ``message`` to self after ``delay`` s (every ``delay`` s if ``repeat``).

        Replaces a timer with the same key. Every timer is cancelled when this
        incarnation stops or crashes, so a restarted agent starts with none.
        """
        self._host.start_timer(key, message, delay, repeat)

    def cancel_timer(self, key: Any) -> bool:
        """Cancel the timer ``key``; returns whether one was active."""
        return self._host.cancel_timer(key)

    def set_receive_timeout(self, seconds: float | None) -> None:
        """Receive :class:`ReceiveTimeout` whenever no message came for ``seconds`` (None: off).

        Sent once per idle period of that length (again after each further
        period while still idle); any handled message starts the period again.
        The check runs every ``seconds / 2``, so it arrives between 1x and 1.5x
        ``seconds`` after the last message. Ends with the incarnation, as timers
        do. Raises ValueError for ``seconds <= 0``.
        """
        if seconds is not None and seconds <= 0:
            raise ValueError(f"receive timeout must be > 0 seconds, got {seconds}")
        self._host.set_receive_timeout(seconds)

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
        return Pong(agent=self._host.name, incarnation=self._host.incarnation)

    @handler
    def _injected_fault(self, fault: InjectedFault) -> None:
        if fault.action is not None:  # the test kit's faults (vibe_actors.testing)
            fault.action(self)
            return
        if fault.kind == "crash":
            raise InjectedCrash(f"injected crash in {self._host.name}")
        threading.Event().wait(fault.seconds)  # a hang: the thread is busy, the mailbox waits

    @classmethod
    def reply_types(cls, message_type: type) -> tuple[type, ...]:
        """The reply types the handler of ``message_type`` declares (its return annotation)."""
        fn = cls.handler_for(message_type)
        return () if fn is None else return_types(fn)

    @classmethod
    def declared_messages(cls) -> tuple[type, ...]:
        """The message classes others may send, as declared by ``class X(Agent[A | B])``
        (inherited by subclasses); ``()`` when the class declares none (``Agent[Any]``)."""
        return cls._declared

    @classmethod
    def message_types(cls) -> tuple[type[Message], ...]:
        """The public message types this agent handles, in any state (its protocol)."""
        every = dict.fromkeys(cls._handlers)
        for table in cls._states.values():
            every.update(dict.fromkeys(table))
        return tuple(t for t in every if issubclass(t, Message))


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
    missing = [m.__name__ for m in declared if cls.handler_for(m) is None]
    if missing:
        raise TypeError(
            f"{cls.__qualname__} declares {', '.join(missing)} in Agent[...] "
            "but has no handler for it"
        )
