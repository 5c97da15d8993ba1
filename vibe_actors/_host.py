"""What hosts an agent's behaviour: the :class:`Host` protocol, and :class:`Deferred` replies.

The handler API of :class:`~vibe_actors.Agent` reaches its host only through
:class:`Host`: locally an :class:`~vibe_actors._incarnation.Incarnation`,
under Ray placement :class:`vibe_actors.ray._host.RemoteContext`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from vibe_actors._tracing import answered

if TYPE_CHECKING:
    from vibe_actors._authz import Caller
    from vibe_actors._envelope import Envelope, ReplySlot
    from vibe_actors._runtime import Runtime

__all__ = ["Deferred", "Host"]


class Deferred:
    """A reply the handler will give later (see :meth:`Agent.defer`).

    :meth:`resolve` may be called from any thread, once; later calls do nothing.
    A handle from :meth:`Agent.defer` is held by its incarnation until it is
    resolved: if the incarnation ends first, the runtime answers the asker
    (:class:`AgentCrashed` after a crash, :class:`Unavailable` ``stopped`` after a
    graceful stop), and a later :meth:`resolve` is discarded.
    """

    __slots__ = ("_future", "_owner", "_trace")

    def __init__(
        self, future: ReplySlot | None, owner: set[Deferred] | None = None, trace: Any = None
    ) -> None:
        self._future = future
        #: The set of its host's unanswered handles, while this one is in it.
        self._owner = owner
        if owner is not None:
            owner.add(self)
        #: The span of the message whose reply this is (tracing on): the span current where
        #: the reply is given links to it (vibe_actors._tracing.answered).
        self._trace = trace

    def resolve(self, reply: Any) -> None:
        """Send ``reply`` to the asker (nothing happens for a tell)."""
        owner = self._owner
        if owner is not None:
            self._owner = None
            owner.discard(self)
        if self._future is not None:
            self._future.resolve(reply)
        if self._trace is not None:
            answered(self._trace)

    def answers(self, slot: object) -> bool:
        """Whether this handle resolves the reply ``slot`` (the runtime's ask-cycle check)."""
        return self._future is slot


class Host(Protocol):
    """What hosts an agent's behaviour: one incarnation's engine (see the module docstring).

    The handler API of :class:`Agent` is built on these members only.
    """

    incarnation: int
    #: The envelope being handled, else None.
    current: Envelope | None
    #: Told to stop (or retired): the loop returns after the current message.
    halted: bool
    #: Message type -> handler, for this incarnation (degrade() swaps entries).
    handlers: dict[type, Callable[..., Any]]
    fallback: Callable[..., Any] | None

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> Any: ...

    @property
    def system(self) -> Runtime:
        """The system running the agent (:class:`~vibe_actors.ActorSystem` locally; what
        :attr:`Agent.system` hands the handlers)."""
        ...

    def mailbox_size(self) -> int: ...

    def report_degraded(self, reason: str) -> None: ...

    @property
    def impaired(self) -> str | None: ...

    def report_impaired(self, reason: str | None) -> bool: ...

    def request_stop(self, *, normal: bool = False) -> None: ...

    def watch(self, name: str) -> None: ...

    def unwatch(self, name: str) -> None: ...

    def start_timer(self, key: Any, message: Any, delay: float, repeat: bool) -> None: ...

    def cancel_timer(self, key: Any) -> bool: ...

    def set_receive_timeout(self, seconds: float | None) -> None: ...

    def stash_current(self, capacity: int) -> None:
        """Set the message being handled aside (its reply too); raises StashOverflow."""
        ...

    def unstash_all(self) -> int:
        """Put every stashed message back before the mailbox's; returns how many."""
        ...

    def stash_size(self) -> int: ...

    def defer_reply(self, slot: ReplySlot) -> Deferred:
        """A handle on ``slot`` (the current ask's reply), answered by the host if it ends
        before the handle is resolved."""
        ...

    def current_caller(self) -> Caller | None:
        """On whose behalf the message being handled was sent (None: trusted code, or no
        message); a host that cannot know raises rather than answer None."""
        ...
