"""The local side of a placed agent: a proxy Agent supervised like any other (imports Ray).

:func:`placed` makes, per hosted class, a subclass of :class:`RayProxy` that
declares the hosted class's message types with the same reply annotations, so
``/v1/agents``, the catalogue and OpenAPI are unchanged. Each proxy incarnation
gets or creates the named Ray actor ``(namespace, agent name)`` hosting the
agent (:class:`vibe_actors.ray._host.AgentHost`, ``max_restarts=0``,
``max_task_retries=0``: Ray's retries would replay calls out of order and lose
state; supervision stays ours).

Per message: the proxy encodes it to msgpack and defers the reply. With nothing
queued behind it, it is sent at once (one Ray call); otherwise it joins a batch
that a flush self-message, queued behind what is in the mailbox, sends as one
Ray call (the host answers each message in order). The local mailbox and its
bound are in front; at most ``max_in_flight`` messages are outstanding (past
that the proxy waits and its mailbox fills). The replies are completed outside
the proxy's thread (Deferred.resolve is thread-safe; proxy state changes go
through self-messages): by the proxy's reply lane (:mod:`vibe_actors.ray._lane`,
a thread blocked in ``ray.get``, for a call submitted while it is idle: the
lone-ask case) or else by Ray's ObjectRef callback in Ray's thread. A blocking
``ref.ask`` skips both hops when the proxy is idle (nothing queued, everything
before it sent on: :meth:`Mailbox.claim`): the asker's thread encodes and
submits the call itself and waits in ``ray.get`` (:meth:`RayProxy._ask_inline`),
as a raw Ray call would. Tell is
fire-and-forget. ``Ping`` is forwarded, so the watchdog's pings reach the Ray
actor. Private Structs the hosted agent handles (not Messages: a coordinator's
work items) are forwarded too; the gateway never routes them.

Failure: a lost Ray actor (``ActorDiedError``, ``ActorUnavailableError``), a
task error or a hosted handler that raised resolves that call's asker with
:class:`AgentCrashed` and makes the proxy raise :class:`RayActorLost` in its own
thread: a child failure, handled by its supervisor's strategy, intensity and
backoff. The crashed incarnation kills its Ray actor (``on_failure``), so the
next one starts from a fresh actor: state held by a Ray-placed agent is rebuilt
on restart, exactly as for a local agent. Calls in flight when the actor dies
get ``AgentCrashed`` (or ``Unavailable`` if they were queued behind a crash;
a process that dies loses the replies of its whole batch, so an ask whose
handler ran may get ``AgentCrashed``); none hangs: an ask's deadline bounds its
wait as for a local agent.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Any, ClassVar

import msgspec
import ray
import ray.exceptions

from vibe_actors import _tracing
from vibe_actors._agent import Agent, Deferred
from vibe_actors._codec import decode_msgpack, encode_msgpack
from vibe_actors._envelope import Envelope
from vibe_actors._handlers import handler
from vibe_actors._messages import DeadlineExceeded, Ping, Pong
from vibe_actors._signals import AgentStatus
from vibe_actors.ray._cluster import connect
from vibe_actors.ray._host import (
    AgentHost,
)
from vibe_actors.ray._lane import ReplyLane, settle_future
from vibe_actors.ray._proxy_metrics import proxy_metrics
from vibe_actors.ray._proxy_replies import Lost, ProxyReplies, first_line
from vibe_actors.ray._settings import RaySettings

__all__ = ["RayActorLost", "RayProxy"]

_RemoteHost: Any = None
_NOT_FORWARDED = object()
_remote_lock = threading.Lock()


class RayActorLost(RuntimeError):
    """The Ray actor behind a proxy died, was unreachable or its handler raised."""


class _Flush:
    """Private self-message: send the batch (queued behind the batched messages)."""

    __slots__ = ("incarnation",)

    def __init__(self, incarnation: int) -> None:
        self.incarnation = incarnation


def _host_class() -> Any:
    global _RemoteHost
    with _remote_lock:
        if _RemoteHost is None:
            _RemoteHost = ray.remote(AgentHost)
        return _RemoteHost


class RayProxy(ProxyReplies, Agent):
    """Base of the generated proxies; see the module docstring."""

    #: Where the agent runs (introspect's ``placement``).
    _placement: ClassVar[str] = "ray"
    #: The Agent subclass whose behaviour runs on Ray, and how it is placed.
    hosted: ClassVar[type[Agent]]
    settings: ClassVar[RaySettings]
    #: Message type -> what its reply decodes as.
    _replies: ClassVar[dict[type, Any]] = {}
    #: The mailbox is claimable: idle, a blocking ask is sent in the asker's thread.
    _answers_inline: ClassVar[bool] = True

    def on_start(self) -> None:
        self.log = self.log.bind(placement="ray")
        self._metrics = self.system.shared_metrics("ray_proxy", proxy_metrics)
        self._slots = threading.Semaphore(self.settings.max_in_flight)
        self._lost = False
        #: (message, its reply, its reply's type, its call's span (tracing on) or None).
        self._batch: list[tuple[Any, Deferred, Any, Any]] = []
        connect(self.settings, self.system.config.data_dir)
        self._actor = self._attach(time.monotonic() + self.system.config.start_timeout * 0.9)
        self._lane: ReplyLane | None = ReplyLane(self.name)
        if self._answers_inline:
            self._cell.ask_inline = self._ask_inline
        self.log.info("ray_actor_attached", namespace=self.settings.namespace)

    def _attach(self, deadline: float) -> Any:
        """Get or create the named actor and wait for its ping; a dying one is retried."""
        while True:
            actor = self._try_attach(deadline)
            if actor is not None:
                return actor
            if time.monotonic() >= deadline:
                raise RayActorLost(f"{self.name}: its Ray actor did not start in time")
            time.sleep(0.05)

    def _try_attach(self, deadline: float) -> Any:
        # No reference to a dead actor may outlive this call: Ray frees the name of a dead
        # actor only when its last handle is gone, and get_if_exists would find it again.
        actor = (
            self._remote_class()
            .options(
                name=self.name,
                namespace=self.settings.namespace,
                get_if_exists=True,
                max_restarts=0,
                max_task_retries=0,
                num_cpus=self.settings.for_agent(self.name).num_cpus,
            )
            .remote(*self._host_args())
        )
        try:
            ray.get(actor.ping.remote(), timeout=max(0.01, deadline - time.monotonic()))
        except ray.exceptions.RayActorError as exc:
            del actor
            if exc.actor_init_failed:  # the hosted on_start raised: a start failure
                first = str(exc).strip().splitlines()[-1]
                raise RayActorLost(f"{self.name}: on_start failed on Ray: {first}") from None
            self.log.info("ray_actor_retry", error=type(exc).__name__)  # the previous one, dying
            return None
        return actor

    # -- what a subclass (an entity kind's shard, vibe_actors.ray._entity_proxy) changes --

    def _remote_class(self) -> Any:
        """The Ray actor class hosting the behaviour (``ray.remote`` of a host class)."""
        return _host_class()

    def _host_args(self) -> tuple[Any, ...]:
        """The host constructor's arguments."""
        hosted = self.hosted
        path = f"{hosted.__module__}:{hosted.__qualname__}"
        return path, self.name, encode_msgpack(self.config), self.incarnation

    def _payload(self, message: Any) -> Any:
        """What one forwarded message crosses as (``handle``'s argument)."""
        return encode_msgpack(message)

    def _decode_reply(self, data: Any, target: Any) -> Any:
        """One result of ``handle`` as a reply; raises CodecError."""
        return decode_msgpack(data, target)

    def _stopped(self, result: Any) -> None:
        """The host's ``stop`` returned ``result`` (after every call sent had run)."""

    def on_stop(self) -> None:
        # Calls already submitted finish first (Ray runs one caller's calls in order).
        self._send_batch()
        shutdown = self._cell.spec.shutdown
        budget = shutdown if isinstance(shutdown, float | int) else 0.0
        try:
            stopped = ray.get(self._actor.stop.remote(), timeout=max(0.01, float(budget)))
        except (ray.exceptions.RayError, TimeoutError) as exc:
            self.log.warning("ray_actor_stop_failed", error=str(exc))
        else:  # every call has run: let their replies reach the askers before we end
            self._stopped(stopped)
            self._await_answers(max(0.01, min(1.0, float(budget))))
        ray.kill(self._actor, no_restart=True)
        self._actor = None
        self._close_lane()

    def _await_answers(self, timeout: float) -> None:
        """Wait up to ``timeout`` s until every call sent has been answered (all its slots
        free): the runtime answers the Deferreds still open when this incarnation ends."""
        deadline = time.monotonic() + timeout
        taken = 0
        for _ in range(self.settings.max_in_flight):
            if not self._slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
                break
            taken += 1
        if taken:
            self._slots.release(taken)

    def on_failure(self, error: BaseException) -> None:
        self._abandon_batch(f"crashed: {first_line(error)}")
        actor = getattr(self, "_actor", None)
        if actor is not None:  # the next incarnation must start from a fresh actor
            ray.kill(actor, no_restart=True)
            self._actor = None
            del actor
        self._close_lane()

    def _close_lane(self) -> None:
        lane: ReplyLane | None = getattr(self, "_lane", None)
        if lane is not None:
            lane.close()
            self._lane = None

    # -- asks answered in the asker's thread ---------------------------------------

    def _ask_inline(self, env: Envelope) -> bool:
        """In the asker's thread: send a blocking ask on and wait for it here, if idle.

        False (nothing done: the ask goes through the mailbox) unless the message
        is one this proxy forwards, this incarnation is serving, a slot is free and
        the mailbox grants a claim (everything sent before has been sent on). Then
        the reply, an error reply or :class:`DeadlineExceeded` is resolved before
        it returns True; a lost actor crashes the proxy as on the mailbox path.
        """
        target = self._replies.get(type(env.message), _NOT_FORWARDED)
        cell = self._cell
        if target is _NOT_FORWARDED or self._lost or cell.agent is not self:
            return False
        if cell.status is not AgentStatus.RUNNING or not self._slots.acquire(False):
            return False
        try:
            data = encode_msgpack(env.message)
        except (msgspec.EncodeError, TypeError):  # the mailbox path reports it, as for any
            self._slots.release()
            return False
        if not cell.mailbox.claim():
            self._slots.release()
            return False
        span = None if env.trace is None else ray_call_span(self.name, env, env.trace[0])
        done = functools.partial(self._answer_one, [(b"", Deferred(env.reply), target, span)])
        lost: ray.exceptions.RayError | None = None
        try:
            ref = self._actor.handle.remote(data)
        except ray.exceptions.RayError as exc:  # the actor is gone: as for a failed call
            lost = exc
        finally:  # before reporting a loss, which puts into this mailbox
            cell.mailbox.release()
        if lost is not None:
            self._completed(done, None, lost)
            return True
        self._metrics.inline.labels(self.name).inc()
        self._wait_inline(env, ref, done)
        return True

    def _wait_inline(self, env: Envelope, ref: Any, done: Any) -> None:
        reply = env.reply
        assert reply is not None
        try:
            result = ray.get(ref, timeout=_remaining(env))
        except ray.exceptions.GetTimeoutError:
            reply.resolve(DeadlineExceeded(agent=self.name, timeout=reply.timeout))
            self._count("deadline")
            # The call still holds its slot: Ray's callback frees it (and reports a loss).
            settle = functools.partial(self._completed, done)
            ref.future().add_done_callback(functools.partial(settle_future, settle))
            return
        except ray.exceptions.RayError as exc:  # actor died, unavailable, task error
            self._completed(done, None, exc)
            return
        done(result)

    # -- forwarding ---------------------------------------------------------------

    @handler
    def _ping(self, msg: Ping) -> Pong:
        deferred = self.defer()
        pong = Pong(agent=self.name, incarnation=self.incarnation)
        self._send_batch()  # the ping follows what was queued before it
        self._submit(
            self._actor.ping.remote(), functools.partial(self._answer_ping, deferred, pong)
        )
        return pong  # not sent: the reply was deferred

    @handler
    def _lost_actor(self, msg: Lost) -> None:
        if msg.incarnation == self.incarnation:
            raise RayActorLost(msg.error)

    @handler
    def _flush(self, msg: _Flush) -> None:
        if msg.incarnation == self.incarnation:
            self._send_batch()

    def _forward(self, message: Any) -> None:
        """Send ``message`` now if nothing is queued behind it; else batch it: a flush
        self-message sends the batch after everything already in the mailbox (one Ray
        call for all of them)."""
        env = self.envelope
        assert env is not None
        timeout = float(getattr(env.reply, "timeout", 0.0))
        deferred = self.defer()
        if not self._slots.acquire(blocking=False):
            self._send_batch()  # our own unsent batch must not hold the slots we wait for
            if not self._slots.acquire(timeout=_remaining(env)):
                deferred.resolve(DeadlineExceeded(agent=self.name, timeout=timeout))
                self._count("deadline")
                return
        target = self._replies.get(type(message), Any)
        span = None if env.trace is None else ray_call_span(self.name, env, None)
        if not self._batch:
            if self.mailbox_size == 0:  # nothing to batch with: send it now (no extra hop)
                self._batch.append((self._payload(message), deferred, target, span))
                self._send_batch()
                return
            self._cell.mailbox.put_system(Envelope(_Flush(self.incarnation)))
        self._batch.append((self._payload(message), deferred, target, span))

    def _send_batch(self) -> None:
        batch, self._batch = self._batch, []
        if len(batch) == 1:  # the common case of a lone ask: no list to pickle
            ref = self._actor.handle.remote(batch[0][0])
            self._submit(ref, functools.partial(self._answer_one, batch))
        elif batch:
            ref = self._actor.handle_batch.remote([data for data, _, _, _ in batch])
            self._submit(ref, functools.partial(self._answer_batch, batch))

    def _submit(self, ref: Any, done: Any) -> None:
        """Run ``done(result)`` when ``ref`` completes, in the reply lane's thread if it is
        idle, else in Ray's; a failure crashes us."""
        settle = functools.partial(self._completed, done)
        if self._lane is None or not self._lane.offer(ref, settle):
            ref.future().add_done_callback(functools.partial(settle_future, settle))

    def _completed(self, done: Any, result: Any, error: ray.exceptions.RayError | None) -> None:
        """Outside the proxy's thread. ``done`` gets the result, or the error of a failed call."""
        if error is not None:  # actor died, unavailable, task error
            self._fail(first_line(error), "lost")
            done(error)
            return
        done(result)


def ray_call_span(name: str, env: Envelope, parent: Any) -> Any:
    """The span of ``env``'s handling on Ray (tracing on, a sampled trace): a ``CLIENT``
    span of the proxy's handling (``parent`` None: the current span), or of the asker's
    (an ask answered in the asker's thread), from the call to its reply.

    The host's process needs no tracing of its own: the call's span is made and ended
    here, around the Ray call (so it includes the transport both ways).
    """
    attributes = {
        "vibe.agent": name,
        "vibe.message.type": type(env.message).__name__,
        "vibe.placement": "ray",
    }
    if parent is None:
        return _tracing.start_here(f"{name} {type(env.message).__name__} on ray", attributes)
    return _tracing.start_under(parent, f"{name} {type(env.message).__name__} on ray", attributes)


def _remaining(env: Envelope) -> float | None:
    return None if env.deadline is None else max(0.0, env.deadline - time.monotonic())
