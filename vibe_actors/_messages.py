"""Message base classes and the runtime's own messages.

Every message is a frozen :class:`msgspec.Struct` tagged with its class name,
so any agent's protocol is a tagged union that encodes to msgpack or JSON and
decodes back without ambiguity. A message type may name its tag itself
(``class Put(Message, tag="kv.Put")``, msgspec's ``tag=``); the system agents
namespace theirs by agent (``pubsub.Subscribe``, :func:`namespaced`), so that
messages of the same name in two agents never share a tag. Over HTTP a
message type is named by its class name whatever its tag (its *HTTP name*:
the route segment, and the ``type`` the gateway shows for a namespaced one). Replies are messages too; a failure comes
back as an :class:`ErrorReply` subclass, never as a bare exception raised in
another thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Generic, TypeVar, dataclass_transform

import msgspec

__all__ = [
    "AgentCrashed",
    "DeadlineExceeded",
    "EntityConflict",
    "ErrorReply",
    "Forbidden",
    "HandlerFailed",
    "MailboxFull",
    "Message",
    "Ping",
    "Pong",
    "ReceiveTimeout",
    "Request",
    "Terminated",
    "UnknownMessage",
    "Unavailable",
]


# msgspec's own dataclass_transform makes a type checker see every subclass that does not
# repeat ``frozen=True`` as a mutable class deriving from a frozen one (msgspec#657), although
# msgspec inherits ``frozen`` at runtime. Declaring the transform again here, frozen by default,
# tells mypy and pyright what the runtime does: user messages need no ``frozen=True`` and
# assigning to a field is a type error. (At runtime this decorator only sets an attribute.)
@dataclass_transform(frozen_default=True, field_specifiers=(msgspec.field,))
class Message(msgspec.Struct, frozen=True, tag=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every message: frozen, keyword-only, tagged by class name.

    Subclass it to define a message::

        class Put(Message):
            key: str
            value: bytes

    Name fields that hold secrets in ``sensitive_fields``: the runtime masks
    them wherever it keeps or shows a message (dead letters).
    """

    sensitive_fields: ClassVar[frozenset[str]] = frozenset()


#: Wire tag -> HTTP name (the class name) of every message type tagged by :func:`namespaced`.
#: Filled as the classes are defined; read by the HTTP face (``vibe_actors.agents.schema``).
HTTP_NAMES: dict[str, str] = {}


def namespaced(namespace: str) -> Callable[[str], str]:
    """The ``tag=`` of a message base whose subclasses are tagged ``"<namespace>.<ClassName>"``.

    msgspec calls it with the name of each class that inherits it; each tag is
    recorded in :data:`HTTP_NAMES` with its class name. A system agent's
    protocol module derives its messages from such a base::

        class _Message(Message, tag=namespaced("pubsub")): ...
        class Subscribe(_Message): ...   # tagged "pubsub.Subscribe"
    """

    def tag(class_name: str) -> str:
        wire = f"{namespace}.{class_name}"
        HTTP_NAMES[wire] = class_name
        return wire

    return tag


class ErrorReply(Message, kw_only=True):
    """Base of every typed error reply.

    An agent may return an :class:`ErrorReply` from a handler to report a
    domain failure (a version conflict, a missing key); the runtime uses its own
    subclasses for delivery failures. :meth:`vibe_actors.Ref.ask` raises
    :class:`vibe_actors.AskError` (or the subclass named by ``error_class``)
    carrying the reply; :meth:`vibe_actors.ReplyFuture.wait` returns it as data.
    """

    detail: str = ""
    #: HTTP status a gateway should map this reply to (problem+json).
    http_status: ClassVar[int] = 500


class _ErrorReplyTypes(dict[type, bool]):
    """type -> whether it is an :class:`ErrorReply`, filled in on first sight.

    ``isinstance(x, ErrorReply)`` costs ~130 ns (msgspec's metaclass takes
    CPython off its fast path and the miss walks the MRO); this lookup ~40 ns,
    and it runs once per handled message.
    """

    def __missing__(self, cls: type) -> bool:
        self[cls] = answer = issubclass(cls, ErrorReply)
        return answer


#: ``IS_ERROR_REPLY[type(value)]``: True for error replies (internal, hot paths).
IS_ERROR_REPLY = _ErrorReplyTypes()


#: The reply type of a :class:`Request` (covariant: a Request[Count] is a Request[Message]).
R = TypeVar("R", covariant=True)


class Request(Message, Generic[R]):
    """A message that names its reply type, for type checkers: ``class Get(Request[Count])``.

    ``ref.ask(Get(...))`` is then a ``Count`` to mypy and pyright (and
    ``await ref.ask_async(...)`` too), so using the reply wrongly is a type
    error. Nothing changes at runtime: the tag is still the class name, and the
    handler's return value is the reply.
    """


class Pong(Message):
    """Reply to :class:`Ping`: the agent's name and its incarnation number."""

    agent: str
    incarnation: int


class Ping(Request[Pong]):
    """Liveness probe; every agent answers it with :class:`Pong`."""


class ReceiveTimeout(Message):
    """Sent to an agent idle for its receive timeout (:meth:`Agent.set_receive_timeout`)."""


class Terminated(Message):
    """Death-watch notification: ``agent`` has stopped for good.

    Delivered to every watcher once, also when the target was already dead
    when ``watch`` was called (``reason`` is then what it died of).
    """

    agent: str
    reason: str


class AgentCrashed(ErrorReply):
    """The handler of this ask raised; the agent is being restarted (or stopped)."""

    agent: str
    error: str
    http_status: ClassVar[int] = 503


class MailboxFull(ErrorReply):
    """The agent's bounded mailbox refused the message (overflow policy)."""

    agent: str
    capacity: int
    http_status: ClassVar[int] = 429


class DeadlineExceeded(ErrorReply):
    """No reply before the ask's deadline; if the handler had not started, it never will."""

    agent: str
    timeout: float
    http_status: ClassVar[int] = 504


class Unavailable(ErrorReply):
    """The agent is unknown, stopped, or was stopped before handling the message."""

    agent: str
    reason: str
    http_status: ClassVar[int] = 503


class EntityConflict(ErrorReply):
    """The entity's state was changed by another replica since this activation read it.

    Answered by a durable entity kind on a shared store (PostgreSQL, several
    replicas) when the message changed the entity's state but another replica
    saved a newer state of it meanwhile: nothing of this message's change was
    saved, and the stale activation was dropped, so the next message (a retry)
    runs on the newer state. ``agent`` is the entity's address (``kind/id``).
    """

    agent: str
    reason: str
    http_status: ClassVar[int] = 409


class HandlerFailed(ErrorReply):
    """The handler raised an exception its agent resumes from (Directive.RESUME): the agent
    kept running with its state; this message was not processed."""

    agent: str
    error: str
    http_status: ClassVar[int] = 500


class UnknownMessage(ErrorReply):
    """The agent has no handler for this message type."""

    agent: str
    message_type: str
    http_status: ClassVar[int] = 404


class Forbidden(ErrorReply):
    """The caller this ask was sent for may not send its type to the agent (policy)."""

    agent: str
    message_type: str
    http_status: ClassVar[int] = 403
