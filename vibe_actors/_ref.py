"""Ref: how anything sends to an agent, by name, valid across restarts."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Generic, Literal, overload

import structlog

from vibe_actors import _tracing
from vibe_actors._asyncio import LoopBridge
from vibe_actors._authz import Caller
from vibe_actors._codec import roundtrip
from vibe_actors._envelope import Envelope
from vibe_actors._errors import NotAMessage, SystemNotRunning
from vibe_actors._future import ReplyFuture, raise_for_error
from vibe_actors._messages import ErrorReply, Ping, Request
from vibe_actors._serving import ServingHost, serving

if TYPE_CHECKING:
    from collections.abc import Callable

    from typing_extensions import TypeVar

    from vibe_actors._routing import SendContext

    # The message type a ref accepts. Contravariant: a Ref[Message] may stand where a
    # Ref[Put] is expected. Defaults to Any (PEP 696), so a bare ``Ref`` is ``Ref[Any]``.
    M_contra = TypeVar("M_contra", contravariant=True, default=Any)
    #: A Request's reply type.
    R = TypeVar("R")
else:
    from typing import TypeVar

    # TypeVar(default=...) is Python 3.13; only type checkers need the default.
    M_contra = TypeVar("M_contra", contravariant=True)

__all__ = ["Ref"]

_log = structlog.get_logger("vibe_actors.ref")
#: Values a send refuses (NotAMessage): a set lookup per send, not an isinstance walk.
_NOT_MESSAGES = frozenset(
    {dict, list, tuple, set, frozenset, str, bytes, bytearray, int, float, complex, bool,
     type(None)}
)  # fmt: skip
_monotonic = time.monotonic


def _unknown(system: SendContext, name: str, envelope: Envelope) -> None:
    """A send to a name with no route: refused before the system's start, else undeliverable.

    Raises :class:`SystemNotRunning` if ``system`` was never started: nothing
    has a route yet, so the send is a mistake, not a delivery problem.
    """
    if not system.started:
        raise SystemNotRunning(
            f"cannot send {type(envelope.message).__name__} to {name!r}: the system has not "
            "been started (call ActorSystem.start(), or use it as a context manager, first)"
        )
    system.routes.undeliverable(name, envelope)


class Ref(Generic[M_contra]):
    """A handle on the agent (or pool) called ``name``.

    A ref resolves the name at every send, so it stays valid across restarts
    and live reloads. Sends never raise for delivery problems: a tell that
    cannot be delivered becomes a dead letter, and an ask gets an error reply
    (:class:`Unavailable`, :class:`MailboxFull`, ...). Mistakes raise at the
    send instead: :class:`NotAMessage` for a builtin value (a dict, a string),
    :class:`SystemNotRunning` for any send before the system was started,
    :class:`SelfAsk` for a blocking :meth:`ask` that only the asking thread
    could answer (see :meth:`ask`), and :class:`CodecError` with
    ``serialize_messages`` on for a message that does not survive msgpack.

    ``Ref[M]`` accepts messages of type ``M`` (and :class:`Ping`, which every
    agent answers); a type checker rejects any other. ``system.ref(name)`` is a
    ``Ref[Any]``; ``system.ref(name, agent=Store)`` is a ``Ref[Put | Get]`` when
    ``Store`` is declared as ``class Store(Agent[Put | Get])``. The type is for the
    checker only: at runtime a ref sends whatever it is given, as before.
    """

    __slots__ = ("_route", "_system", "agent", "entity", "inherits", "name", "sender")

    def __init__(
        self,
        system: SendContext,
        name: str,
        sender: str | None = None,
        entity: str | None = None,
    ) -> None:
        self._system = system
        self.sender = sender
        #: Whether sends made in a handler inherit its message's deadline (without_deadline).
        self.inherits = True
        #: The entity id, for a ref to an entity (``system.entity``), else None.
        self.entity = entity
        #: The agent (or entity kind) policy is checked against.
        self.agent = name
        if entity is None:
            self.name = self._route = name
        else:
            #: ``kind/id`` for an entity, as dead letters and errors name it.
            self.name = f"{name}/{entity}"
            # Straight to the shard's mailbox, as a send to an agent is (no router in between);
            # before the kind exists, through its router (a name no agent can have).
            router = system.routes.entity_kind(name)
            self._route = name + "/" if router is None else router.route_of(entity)

    def __repr__(self) -> str:
        return f"<Ref {self.name}>"

    def without_deadline(self) -> Ref[M_contra]:
        """This ref, for sends that are not bound by the deadline of the message being handled.

        For work a handler accepts and that outlives its caller's wait on
        purpose (a job's run, a fan-out to subscribers): its own timeout applies.
        """
        ref: Ref[M_contra] = Ref(self._system, self.agent, self.sender, self.entity)
        ref.inherits = False
        return ref

    def _no_route(self, envelope: Envelope) -> None:
        """Nothing is routed under this ref's route: undeliverable, unless it is an entity's.

        An entity's route names its shard (see :meth:`EntityRouter.route_of`); it goes
        stale when the kind restarts with another shard count, and does not exist
        until the kind's shards do: the kind's router decides then (and the ref
        remembers the shard it picks). Raises :class:`SystemNotRunning` before the start.
        """
        system = self._system
        if self.entity is not None:
            router = system.routes.entity_kind(self.agent)
            if router is not None:
                self._route = router.route_of(self.entity)
                router.deliver(envelope)
                return
        _unknown(system, self.name, envelope)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ref) and other._system is self._system and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def tell(
        self,
        message: M_contra | Ping,
        *,
        request_id: str | None = None,
        caller: Caller | None = None,
    ) -> None:
        """Send ``message`` without waiting for a reply.

        With ``caller`` (sending on an external party's behalf) the system's
        authorizer is consulted first: a denied message is a dead letter
        (``forbidden``) and never reaches the agent.

        Inside a handler the tell carries the deadline of the message being
        handled (none outside one, or for a message without): past it the
        receiver does not start it (a dead letter, ``expired``). Not for a tell
        to the agent itself, nor through :meth:`without_deadline`.
        """
        if message.__class__ in _NOT_MESSAGES:
            raise NotAMessage(message)
        system = self._system
        if system.serializes:
            message = roundtrip(message)
        deadline = None
        host = serving.host  # inside a handler, the tell carries that message's deadline
        if host is not None and self.inherits:
            current = host.current
            if current is not None and current.deadline is not None and host.name != self.name:
                deadline = current.deadline  # (not to itself: its own bookkeeping)
        envelope = Envelope(
            message, None, request_id, self.sender, deadline, 0, caller, self.entity,
            _tracing.outgoing() if _tracing.ON else None,
        )  # fmt: skip
        if caller is not None and system.forbids(self.agent, envelope):
            return
        target = system.routes.get(self._route)
        if target is None:
            self._no_route(envelope)
        else:
            target.deliver(envelope)

    def ask_future(
        self,
        message: M_contra | Ping,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
        callback: Callable[[Any], None] | None = None,
        caller: Caller | None = None,
    ) -> ReplyFuture:
        """Send ``message`` and return the :class:`ReplyFuture` of its reply.

        ``timeout`` (default: the system's ``ask_timeout``) is also the
        message's deadline: past it the handler is not started. Inside a
        handler the deadline is never later than that of the message being
        handled (deadline propagation: work stops when the original caller has
        given up), whatever ``timeout`` says (unless sent through
        :meth:`without_deadline`); an already passed one is answered
        :class:`DeadlineExceeded` at once. ``callback``
        receives the reply in the resolving thread. With ``caller``, a message
        the caller may not send there is answered :class:`Forbidden` at once.
        """
        return self._ask(message, timeout, request_id, callback, False, caller)

    def _ask(
        self,
        message: Any,
        timeout: float | None,
        request_id: str | None,
        callback: Callable[[Any], None] | None,
        blocking: bool,
        caller: Caller | None = None,
        asker: ServingHost | None = None,
    ) -> ReplyFuture:
        if message.__class__ in _NOT_MESSAGES:
            raise NotAMessage(message)
        system = self._system
        if system.serializes:
            message = roundtrip(message)
        if timeout is None:
            timeout = system.config.ask_timeout
        now = _monotonic()
        deadline = now + timeout
        host = serving.host  # inside a handler: no later than that message's deadline
        if host is not None and self.inherits:
            current = host.current
            if current is not None and current.deadline is not None and current.deadline < deadline:
                deadline = current.deadline
                timeout = max(deadline - now, 0.0)
        future = ReplyFuture(self.name, timeout, callback)
        envelope = Envelope(
            message, future, request_id, self.sender, deadline, 0, caller, self.entity,
            _tracing.outgoing() if _tracing.ON else None,
        )  # fmt: skip
        if caller is not None and system.forbids(self.agent, envelope):
            return future
        target = system.routes.get(self._route)
        if target is None:
            self._no_route(envelope)
            return future
        if not blocking:
            target.deliver(envelope)
            return future
        if asker is not None:  # an agent's thread: refuse an ask only it could answer
            asker.blocking_ask(target, future)
        # A blocking asker may be answered in its own thread (a Ray-placed agent
        # with nothing queued: SEMANTICS.md, "Asks answered in the asker's thread").
        inline = target.ask_inline
        if inline is None or not inline(envelope):
            target.deliver(envelope)
        return future

    @overload
    def ask(
        self,
        message: Request[R],
        *,
        timeout: float | None = None,
        request_id: str | None = None,
        caller: Caller | None = None,
    ) -> R: ...

    @overload
    def ask(
        self,
        message: M_contra | Ping,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
        caller: Caller | None = None,
    ) -> Any: ...

    def ask(
        self,
        message: Any,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
        caller: Caller | None = None,
    ) -> Any:
        """Send ``message`` and block for the reply (``caller``: as :meth:`tell`).

        For a :class:`Request` (``class Get(Request[Count])``) a type checker
        knows the reply's type (``Count``); for other messages it is ``Any``.
        (The first overload does not check the ref's declared messages: a
        Request the agent does not accept is not flagged.)

        Raises the :class:`AskError` subclass matching an error reply:
        :class:`DeadlineExceededError` after ``timeout``, :class:`AgentCrashedError`
        if the handler raised, :class:`UnavailableError`, :class:`MailboxFullError`,
        :class:`UnknownMessageError`, :class:`ForbiddenError`; plain
        :class:`AskError` for an agent's own error replies.

        In an agent's own thread, an ask only that thread could answer raises
        :class:`SelfAsk` at once, and nothing is sent: the agent asking itself,
        or an agent that is blocked in an ask of this one (a cycle of two).
        :meth:`ask_future` and :meth:`ask_async` do not block, so they are not
        checked. Before the system's start it raises :class:`SystemNotRunning`.
        """
        asker = serving.host
        if asker is None:
            reply = self._ask(message, timeout, request_id, None, True, caller).wait()
        else:
            reply = self._ask(message, timeout, request_id, None, True, caller, asker).wait()
            asker.waiting = None
        if self._system.serializes:
            reply = roundtrip(reply)
        return raise_for_error(reply)

    @overload
    async def ask_async(
        self,
        message: Request[R],
        *,
        timeout: float | None = None,
        request_id: str | None = None,
        raise_errors: Literal[True] = True,
        caller: Caller | None = None,
    ) -> R: ...

    @overload
    async def ask_async(
        self,
        message: Request[R],
        *,
        timeout: float | None = None,
        request_id: str | None = None,
        raise_errors: Literal[False],
        caller: Caller | None = None,
    ) -> R | ErrorReply: ...

    @overload
    async def ask_async(
        self,
        message: M_contra | Ping,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
        raise_errors: bool = True,
        caller: Caller | None = None,
    ) -> Any: ...

    async def ask_async(
        self,
        message: Any,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
        raise_errors: bool = True,
        caller: Caller | None = None,
    ) -> Any:
        """Like :meth:`ask`, for asyncio code: awaiting never blocks the event loop.

        The agent's thread hands the reply to the loop through the loop's
        :class:`~vibe_actors._asyncio.LoopBridge` (``call_soon_threadsafe``,
        batched); the deadline is enforced on the loop. Cancelling the awaiting
        task abandons the reply (it is discarded on arrival). With
        ``raise_errors=False`` an error reply is returned as data instead.
        """
        if message.__class__ in _NOT_MESSAGES:
            raise NotAMessage(message)
        system = self._system
        if system.serializes:
            message = roundtrip(message)
        bridge = LoopBridge.of(asyncio.get_running_loop())
        slot = bridge.open(self.name, system.config.ask_timeout if timeout is None else timeout)
        envelope = Envelope(
            message, slot, request_id, self.sender, slot.deadline, 0, caller, self.entity,
            _tracing.outgoing() if _tracing.ON else None,
        )  # fmt: skip
        if caller is None or not system.forbids(self.agent, envelope):  # else answered Forbidden
            target = system.routes.get(self._route)
            if target is None:
                try:
                    self._no_route(envelope)
                except SystemNotRunning:
                    bridge.close(slot)
                    raise
            else:
                target.deliver(envelope)
        try:
            reply = await slot.waiter
        finally:
            bridge.close(slot)
        if system.serializes:
            reply = roundtrip(reply)
        return raise_for_error(reply) if raise_errors else reply
