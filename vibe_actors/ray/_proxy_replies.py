"""How a Ray proxy's calls are answered: :class:`ProxyReplies`, mixed into
:class:`~vibe_actors.ray._proxy.RayProxy`.

A call's replies are completed outside the proxy's thread (the reply lane's,
or Ray's callback thread): each asker gets the hosted agent's reply, or
:class:`~vibe_actors.AgentCrashed` when the call failed, the reply could not
be decoded or the hosted handler raised; a lost actor is reported to the
proxy's own thread (:class:`Lost`), where it becomes a crash its supervisor
handles. Every call's in-flight slot is released once its askers are answered.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from vibe_actors import _tracing
from vibe_actors._codec import CodecError
from vibe_actors._envelope import Envelope
from vibe_actors._messages import AgentCrashed, Pong, Unavailable
from vibe_actors.ray._host import HostCrashed, HostRefused

if TYPE_CHECKING:
    from vibe_actors._agent import Deferred
    from vibe_actors._cell import Cell
    from vibe_actors.ray._proxy_metrics import ProxyMetrics

__all__ = ["Lost", "ProxyReplies", "first_line"]


class Lost:
    """Private self-message: raise RayActorLost in the proxy's thread (not a Message)."""

    __slots__ = ("error", "incarnation")

    def __init__(self, incarnation: int, error: str) -> None:
        self.incarnation = incarnation
        self.error = error


class ProxyReplies:
    """The answering side of :class:`~vibe_actors.ray._proxy.RayProxy` (see the module
    docstring)."""

    log: Any
    _lost: bool
    _metrics: ProxyMetrics
    _slots: threading.Semaphore
    #: (message, its reply, its reply's type, its call's span (tracing on) or None).
    _batch: list[tuple[Any, Deferred, Any, Any]]

    if TYPE_CHECKING:  # provided by RayProxy (an Agent)

        @property
        def name(self) -> str: ...

        @property
        def incarnation(self) -> int: ...

        @property
        def _cell(self) -> Cell: ...

        def _decode_reply(self, data: Any, target: Any) -> Any: ...

    def _answer_ping(self, deferred: Deferred, pong: Pong, result: Any) -> None:
        if isinstance(result, BaseException):
            deferred.resolve(AgentCrashed(agent=self.name, error=first_line(result)))
        else:
            deferred.resolve(pong)

    def _answer_one(self, batch: list[tuple[Any, Deferred, Any, Any]], reply: Any) -> None:
        self._answer_batch(batch, reply if isinstance(reply, BaseException) else [reply])

    def _answer_batch(self, batch: list[tuple[Any, Deferred, Any, Any]], replies: Any) -> None:
        # Every asker is answered, then the slots released, whatever happens below
        # (on_stop waits for the slots: a free slot is an answered call).
        try:
            error: BaseException | None = None
            if isinstance(replies, BaseException):  # the whole call failed
                error, replies = replies, [None] * len(batch)
            for (_, deferred, target, span), data in zip(batch, replies, strict=True):
                if error is not None:
                    deferred.resolve(AgentCrashed(agent=self.name, error=first_line(error)))
                    if span is not None:
                        _tracing.finish(span, "lost", first_line(error))
                    continue
                try:
                    reply = self._decode_reply(data, target)
                except CodecError as exc:
                    deferred.resolve(AgentCrashed(agent=self.name, error=str(exc)))
                    self._fail(f"undecodable reply: {exc}", "lost")
                    if span is not None:
                        _tracing.finish(span, "lost", str(exc))
                    continue
                outcome = self._answer(deferred, reply)
                if span is not None:
                    failed = outcome != "ok"
                    _tracing.finish(
                        span, outcome, getattr(reply, "error", outcome) if failed else None
                    )
        finally:
            self._slots.release(len(batch))

    def _answer(self, deferred: Deferred, reply: Any) -> str:
        """Answer ``deferred`` with the host's ``reply``; returns the call's outcome."""
        if isinstance(reply, HostCrashed):
            deferred.resolve(AgentCrashed(agent=self.name, error=reply.error))
            self._fail(reply.error, "crashed")
            return "crashed"
        if isinstance(reply, HostRefused):
            deferred.resolve(Unavailable(agent=self.name, reason=f"crashed: {reply.error}"))
            self._count("refused")
            return "refused"
        deferred.resolve(reply)
        self._count("ok")
        return "ok"

    def _fail(self, error: str, outcome: str) -> None:
        self._count(outcome)
        if self._lost:
            return
        self._lost = True
        self.log.error("ray_actor_lost", error=error)
        self._cell.mailbox.put_system(Envelope(Lost(self.incarnation, error)))

    def _count(self, outcome: str) -> None:
        self._metrics.calls.labels(self.name, "ray", outcome).inc()

    def _abandon_batch(self, reason: str) -> None:
        """Answer the messages batched but never sent (the incarnation is ending)."""
        batch, self._batch = getattr(self, "_batch", []), []
        for _, deferred, _, span in batch:
            deferred.resolve(Unavailable(agent=self.name, reason=reason))
            if span is not None:
                _tracing.finish(span, "unavailable", reason)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"[:500]
