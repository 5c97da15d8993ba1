"""The Ray side of a placed agent: runs one agent's handlers outside a Pykka thread.

:class:`AgentHost` is a plain synchronous class (Ray makes it an actor in
:mod:`vibe_actors.ray._proxy`; this module never imports Ray, so it is testable
and importable alone). It builds an instance of the hosted :class:`Agent`
subclass hosted by a :class:`RemoteContext` (a :class:`vibe_actors._agent.Host`,
as an incarnation is locally), runs ``on_start`` and then dispatches
msgpack-encoded messages to the host's handler table, one at a time, in
submission order (a Ray actor with one thread).

What a hosted agent may use (first version): ``self.name``, ``self.config``,
``self.log`` (bound with ``agent``, ``incarnation`` and ``placement="ray"``),
``self.incarnation``, ``self.system.clock``, ``self.degrade(reason)`` (applies
to the remote handler table only: the local tree does not show it),
``on_start``, ``on_stop`` (run on a graceful stop) and handlers returning
replies or typed :class:`ErrorReply` values. Not available remotely: the rest
of ``self.system`` (and so ``ref``, ``start_timer``, ``watch``, events, the
registry and ``data_dir``), ``self.caller`` (the envelope does not cross: None
would read as trusted code), ``defer()`` and ``on_unhandled``; using one raises
:class:`RemoteFeatureUnavailable` (``defer()`` a RuntimeError), which crashes
the incarnation like any handler error (in ``on_start``: a start failure).

Failure: a handler that raises marks the host crashed; the reply is
:class:`HostCrashed` (the proxy turns it into :class:`AgentCrashed` for the
asker and crashes itself, so our supervisor restarts it with a fresh Ray
actor). Calls already submitted behind the crash get :class:`HostRefused`:
they are not carried over to the next incarnation.
"""

from __future__ import annotations

import time
import typing
from collections.abc import Callable
from typing import Any, NoReturn

import msgspec

from vibe_actors._agent import Agent, Deferred
from vibe_actors._codec import decode_msgpack, encode_msgpack
from vibe_actors._envelope import Envelope, ReplySlot
from vibe_actors._handlers import collect_handlers
from vibe_actors._imports import resolve_import
from vibe_actors._incarnation import run_hook
from vibe_actors._messages import (
    AgentCrashed,
    DeadlineExceeded,
    MailboxFull,
    Message,
    Unavailable,
    UnknownMessage,
)

__all__ = [
    "AgentHost",
    "forwarded_types",
    "HostCrashed",
    "HostRefused",
    "RemoteContext",
    "RemoteFeatureUnavailable",
    "RemoteSystem",
    "import_agent",
    "message_union",
    "reply_targets",
    "return_annotation",
]

_RUNTIME_REPLIES = (AgentCrashed, DeadlineExceeded, MailboxFull, Unavailable, UnknownMessage)
#: What every Agent handles itself (Ping, fault injection): never sent through ``handle``.
_BASE_TYPES = frozenset(collect_handlers(Agent))


class HostCrashed(Message):
    """Reply marker: the hosted handler raised ``error``; the host serves no more."""

    error: str


class HostRefused(Message):
    """Reply marker: the host had crashed before this message; it was not handled."""

    error: str


class RemoteFeatureUnavailable(RuntimeError):
    """An Agent feature a Ray-placed agent does not have (see the module docstring)."""


def import_agent(path: str) -> type[Agent]:
    """The Agent subclass named ``module:Qualified.Name``.

    Raises :class:`~vibe_actors.ImportStringError` (one of its kinds) if ``path``
    does not resolve, TypeError if it names something else than an Agent subclass.
    """
    value = resolve_import(path)
    if not (isinstance(value, type) and issubclass(value, Agent)):
        raise TypeError(f"{path!r} is not a vibe_actors.Agent subclass")
    return value


def message_union(types_: tuple[type, ...]) -> Any:
    """``A | B | ...`` of ``types_`` (a single type as is), for the msgpack decoder."""
    if len(types_) == 1:
        return types_[0]
    return typing.Union[types_]  # noqa: UP007 - built from a runtime tuple


class RemoteContext:
    """The host of a Ray-placed agent's behaviour (:class:`vibe_actors._agent.Host`).

    What needs the local runtime (timers, death-watch, stopping itself) raises
    :class:`RemoteFeatureUnavailable`, as the rest of ``self.system`` does.
    """

    def __init__(self, name: str, config: Any, cls: type[Agent], incarnation: int) -> None:
        self.name = name
        self.incarnation = incarnation
        self._config = config
        self._system = RemoteSystem(name)
        self.current: Envelope | None = None
        self.halted = False
        self.handlers: dict[type, Callable[..., Any]] = cls.handler_table()
        self.fallback: Callable[..., Any] | None = cls.unhandled_hook()
        self.degraded: str | None = None

    @property
    def config(self) -> Any:
        return self._config

    @property
    def system(self) -> Any:  # a RemoteSystem where a local agent has its ActorSystem
        return self._system

    def mailbox_size(self) -> int:
        return 0  # the queue is Ray's, not visible here

    def report_degraded(self, reason: str) -> None:
        self.degraded = reason

    @property
    def impaired(self) -> str | None:
        return None  # not shown: the local tree does not see the remote agent's state

    def report_impaired(self, reason: str | None) -> bool:
        return False  # not shown: the local tree does not see the remote agent's state

    def request_stop(self, *, normal: bool = False) -> None:
        self._unavailable("stop")

    def watch(self, name: str) -> None:
        self._unavailable("watch")

    def unwatch(self, name: str) -> None:
        self._unavailable("unwatch")

    def start_timer(self, key: Any, message: Any, delay: float, repeat: bool) -> None:
        self._unavailable("timers")

    def cancel_timer(self, key: Any) -> bool:
        self._unavailable("timers")

    def set_receive_timeout(self, seconds: float | None) -> None:
        self._unavailable("receive timeouts")

    def stash_current(self, capacity: int) -> None:
        self._unavailable("the stash")

    def unstash_all(self) -> int:
        self._unavailable("the stash")

    def stash_size(self) -> int:
        return 0

    def defer_reply(self, slot: ReplySlot) -> Deferred:
        # Not reached: no handler runs with ``current`` set here, so defer() raises first.
        return Deferred(slot)

    def current_caller(self) -> NoReturn:
        # Messages cross to Ray, envelopes do not: None would read as "trusted code".
        self._unavailable("the caller (on whose behalf the message was sent)")

    def _unavailable(self, feature: str) -> NoReturn:
        raise RemoteFeatureUnavailable(
            f"{self.name} runs on Ray: {feature} is not available to a Ray-placed agent "
            "(only self.system.clock is; ref, timers, watch, events, the registry and "
            "data_dir are not)"
        )


class RemoteSystem:
    """``self.system`` of a hosted agent: only ``clock`` (this host's monotonic clock)."""

    clock = staticmethod(time.monotonic)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> NoReturn:
        raise RemoteFeatureUnavailable(
            f"{self._name} runs on Ray: self.system.{attribute} is not available to a "
            "Ray-placed agent (only self.system.clock is; ref, timers, watch, events, the "
            "registry and data_dir are not)"
        )


class AgentHost:
    """One hosted agent incarnation; see the module docstring."""

    def __init__(self, agent_path: str, name: str, config: bytes, incarnation: int) -> None:
        cls = import_agent(agent_path)
        schema = getattr(cls, "Config", None)
        decoded = decode_msgpack(config, schema if schema is not None else Any)
        self._name = name
        forwarded = forwarded_types(cls)
        self._union = message_union(forwarded) if forwarded else Any
        self._crashed: str | None = None
        self._context = RemoteContext(name, decoded, cls, incarnation)
        self._agent = _build(cls, self._context)
        self._agent.on_start()

    def ping(self) -> int:
        """Liveness: the host answers while its process lives."""
        return self._agent.incarnation

    def handle(self, data: bytes) -> bytes:
        """Decode a message, run its handler, encode the reply (``None`` for none)."""
        if self._crashed is not None:
            return encode_msgpack(HostRefused(error=self._crashed))
        agent, context = self._agent, self._context
        message = decode_msgpack(data, self._union)
        fn: Callable[..., Any] | None = context.handlers.get(type(message)) or context.fallback
        if fn is None:  # the proxy declares the same types, so this is a version skew
            raise TypeError(f"{self._name} has no handler for {type(message).__name__}")
        try:
            reply = fn(agent, message)
        except Exception as exc:  # a crash: reported to the proxy, which restarts
            self._crashed = f"{type(exc).__name__}: {exc}"[:500]
            agent.log.error("handler_crashed", message_type=type(message).__name__, exc_info=exc)
            run_hook(agent, "on_failure", agent.on_failure, exc)
            return encode_msgpack(HostCrashed(error=self._crashed))
        return encode_msgpack(reply)

    def handle_batch(self, batch: list[bytes]) -> list[bytes]:
        """:meth:`handle` for each message, in order (one Ray call for a proxy's batch)."""
        return [self.handle(data) for data in batch]

    def stop(self) -> None:
        """Graceful stop: ``on_stop`` (its error is logged, the stop completes)."""
        if self._crashed is None:
            run_hook(self._agent, "on_stop", self._agent.on_stop)


def _build(cls: type[Agent], context: RemoteContext) -> Agent:
    """An instance of ``cls`` hosted by ``context``, built as the runtime builds one.

    The agent's ``__init__`` runs; no thread is started: the host calls the
    handlers itself.
    """
    agent = cls.hosted_by(context)
    agent.log = agent.log.bind(placement="ray")
    return agent


def forwarded_types(hosted: type[Agent]) -> tuple[type, ...]:
    """Every message type ``hosted`` handles that the proxy sends on: its public messages
    and its private Structs (a coordinator's work items), not the base Agent's own."""
    return tuple(t for t in hosted.handler_table() if t not in _BASE_TYPES)


def return_annotation(hosted: type[Agent], message_type: type) -> Any:
    """The return annotation of ``hosted``'s handler of ``message_type`` (Any if none)."""
    fn = hosted.handler_table()[message_type]
    try:
        return typing.get_type_hints(fn).get("return", Any)
    except (NameError, TypeError):
        return Any


def reply_targets(hosted: type[Agent]) -> dict[type, Any]:
    """Per forwarded message type of ``hosted``, what its reply decodes as on the way back.

    Raises ``TypeError`` naming the handler whose declared replies cannot be one
    msgpack union (checked when a wiring is loaded, without Ray).
    """
    return {
        message_type: _reply_target(hosted, message_type)
        for message_type in forwarded_types(hosted)
    }


def _reply_target(hosted: type[Agent], message_type: type) -> Any:
    """The declared replies, the runtime's error replies and the host's markers, as one type."""
    declared = hosted.reply_types(message_type)
    if not declared and return_annotation(hosted, message_type) is Any:
        return Any  # unannotated: plain data (the brief: always annotate)
    tags = {getattr(t, "__name__", "") for t in declared}
    extra = tuple(
        t for t in (*_RUNTIME_REPLIES, HostCrashed, HostRefused) if t.__name__ not in tags
    )
    target = message_union((*declared, *extra, type(None)))
    try:
        msgspec.msgpack.Decoder(target)
    except TypeError as exc:
        raise TypeError(
            f"{hosted.__qualname__}: the replies declared for {message_type.__name__} "
            f"cannot cross to Ray as one msgpack union: {exc}"
        ) from exc
    return target
