"""The Ray side of a placed agent: runs one agent's handlers outside a Pykka thread.

:class:`AgentHost` is a plain synchronous class (Ray makes it an actor in
:mod:`vibe_actors.ray._proxy`; this module never imports Ray, so it is testable
and importable alone). It builds an instance of the hosted :class:`Agent`
subclass without a Cell, gives it a :class:`RemoteContext` in the Cell's place,
runs ``on_start`` and then dispatches msgpack-encoded messages to the agent's
handler table, one at a time, in submission order (a Ray actor with one thread).

What a hosted agent may use (first version): ``self.name``, ``self.config``,
``self.log`` (bound with ``agent``, ``incarnation`` and ``placement="ray"``),
``self.incarnation``, ``self.system.clock``, ``self.degrade(reason)`` (applies
to the remote handler table only: the local tree does not show it),
``on_start``, ``on_stop`` (run on a graceful stop) and handlers returning
replies or typed :class:`ErrorReply` values. Not available remotely: the rest
of ``self.system`` (and so ``ref``, ``start_timer``, ``watch``, events, the
registry and ``data_dir``), ``defer()`` and ``on_unhandled``; using one raises
:class:`RemoteFeatureUnavailable` (``defer()`` a RuntimeError), which crashes
the incarnation like any handler error (in ``on_start``: a start failure).

Failure: a handler that raises marks the host crashed; the reply is
:class:`HostCrashed` (the proxy turns it into :class:`AgentCrashed` for the
asker and crashes itself, so our supervisor restarts it with a fresh Ray
actor). Calls already submitted behind the crash get :class:`HostRefused`:
they are not carried over to the next incarnation.
"""

from __future__ import annotations

import importlib
import time
import typing
from collections.abc import Callable
from typing import Any, NoReturn

import msgspec

from vibe_actors._agent import Agent
from vibe_actors._codec import decode_msgpack, encode_msgpack
from vibe_actors._handlers import collect_handlers
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
    """The Agent subclass named ``module:Qualified.Name``."""
    module_name, _, attribute = path.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    if not (isinstance(value, type) and issubclass(value, Agent)):
        raise TypeError(f"{path!r} is not a vibe_actors.Agent subclass")
    return value


def message_union(types_: tuple[type, ...]) -> Any:
    """``A | B | ...`` of ``types_`` (a single type as is), for the msgpack decoder."""
    if len(types_) == 1:
        return types_[0]
    return typing.Union[types_]  # noqa: UP007 - built from a runtime tuple


class _NoMailbox:
    """``mailbox_size`` on the host: the queue is Ray's, not visible here."""

    @staticmethod
    def qsize() -> int:
        return 0


class RemoteContext:
    """What the hosted agent finds where a local agent has its Cell."""

    def __init__(self, name: str, config: Any) -> None:
        self.name = name
        self.config = config
        self.mailbox = _NoMailbox()
        self.degraded: str | None = None
        self.system = RemoteSystem(name)


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
        self._agent = _build(cls, RemoteContext(name, decoded), incarnation)
        self._agent.on_start()

    def ping(self) -> int:
        """Liveness: the host answers while its process lives."""
        return self._agent.incarnation

    def handle(self, data: bytes) -> bytes:
        """Decode a message, run its handler, encode the reply (``None`` for none)."""
        if self._crashed is not None:
            return encode_msgpack(HostRefused(error=self._crashed))
        agent = self._agent
        message = decode_msgpack(data, self._union)
        fn: Callable[..., Any] | None = agent._table.get(type(message)) or agent._fallback
        if fn is None:  # the proxy declares the same types, so this is a version skew
            raise TypeError(f"{self._name} has no handler for {type(message).__name__}")
        try:
            reply = fn(agent, message)
        except Exception as exc:  # a crash: reported to the proxy, which restarts
            self._crashed = f"{type(exc).__name__}: {exc}"[:500]
            agent.log.error("handler_crashed", message_type=type(message).__name__, exc_info=exc)
            agent._run_hook("on_failure", agent.on_failure, exc)
            return encode_msgpack(HostCrashed(error=self._crashed))
        return encode_msgpack(reply)

    def handle_batch(self, batch: list[bytes]) -> list[bytes]:
        """:meth:`handle` for each message, in order (one Ray call for a proxy's batch)."""
        return [self.handle(data) for data in batch]

    def stop(self) -> None:
        """Graceful stop: ``on_stop`` (its error is logged, the stop completes)."""
        if self._crashed is None:
            self._agent._run_hook("on_stop", self._agent.on_stop)


def _build(cls: type[Agent], context: RemoteContext, incarnation: int) -> Agent:
    """An instance of ``cls`` built as the runtime builds one, with ``context`` as its Cell.

    The agent's ``__init__`` runs (Agent's reads only the name and the mailbox); no
    thread is started: the host calls the handlers itself.
    """
    agent = cls._incarnate(context, incarnation)  # type: ignore[arg-type]
    agent.log = agent.log.bind(placement="ray")
    return agent


def forwarded_types(hosted: type[Agent]) -> tuple[type, ...]:
    """Every message type ``hosted`` handles that the proxy sends on: its public messages
    and its private Structs (a coordinator's work items), not the base Agent's own."""
    return tuple(t for t in hosted._handlers if t not in _BASE_TYPES)


def return_annotation(hosted: type[Agent], message_type: type) -> Any:
    """The return annotation of ``hosted``'s handler of ``message_type`` (Any if none)."""
    fn = hosted._handlers[message_type]
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
