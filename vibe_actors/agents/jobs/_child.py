"""The job process: a fresh interpreter that runs job functions for one worker agent.

Started by :class:`~vibe_actors.agents.jobs._process.JobProcess` as
``python -c "...; from vibe_actors.agents.jobs._child import main; main()" FD ROOT``
with one end of a socket pair as ``FD`` (``ROOT``: where the worker's
vibe_actors comes from). It starts nothing (no actor system,
no gateway): it takes the worker's import path from :class:`Hello`, then runs
each :class:`Call` it receives, one at a time, and sends back its
:class:`Outcome`. A job function's exception, or a result that is not
JSON-like, is a failed attempt reported as data; the process keeps serving.

``ctx.system`` is a :class:`JobSystem`: ``ref(name).ask(message)`` and
``.tell(message)`` go through the worker agent, which sends them in the
system and answers (asks get the reply, or raise the :class:`AskError`
subclass ``Ref.ask`` would raise; :class:`JobAskFailed` if the worker could
not make the ask at all).

Lifetime: the process ends when the connection closes (the worker stopped
it, or the worker's process died and the kernel closed its end), when the
worker kills it (a timed-out attempt, a stop), or, while a job runs, within
``_WATCH_EVERY`` seconds of its parent's death (a watchdog thread sees the
parent pid change): it never outlives the worker's process for long.
SIGINT is ignored (a terminal's Ctrl-C is the parent's to handle).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import msgspec

from vibe_actors._future import raise_for_error
from vibe_actors.agents.jobs._wire import (
    Answer,
    AskRequest,
    Call,
    Hello,
    Outcome,
    Ready,
    TellRequest,
    encode,
    from_worker,
    load_callable,
    resolve_struct,
    type_path,
)

__all__ = ["JobAskFailed", "JobContext", "JobRef", "JobSystem", "json_like", "main"]

#: How often a running job's process checks that its parent still lives (seconds).
_WATCH_EVERY = 0.25
#: Exit status when the parent died (EX_SOFTWARE-like: not a job's own exit code).
_ORPHANED = 70
#: How a closed connection shows: EOF, or a reset when the worker closed its end
#: with our last message still unread (a Ready it never needed), or a broken pipe.
_CLOSED = (EOFError, ConnectionError)


class JobAskFailed(RuntimeError):
    """The worker could not send a job's ask or tell (the reason names why)."""


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a job function gets besides its args: which job and attempt, and
    ``system`` to ask other agents (``ctx.system.ref("ledger").ask(...)``)."""

    job_id: str
    kind: str
    attempt: int
    system: JobSystem


class JobRef:
    """``ctx.system.ref(name)`` in a job: ask or tell agent ``name`` through the worker."""

    __slots__ = ("_channel", "name")

    def __init__(self, channel: _Channel, name: str) -> None:
        self._channel = channel
        self.name = name

    def ask(self, message: msgspec.Struct, *, timeout: float | None = None) -> Any:
        """Send ``message`` and wait for the reply (at most ``timeout`` s, default the
        system's ``ask_timeout``, never past the attempt's own timeout).

        Raises what :meth:`vibe_actors.Ref.ask` raises for an error reply, and
        :class:`JobAskFailed` if the worker could not send it.
        """
        request = AskRequest(self.name, type_path(type(message)), encode(message), timeout)
        return self._channel.ask(request)

    def tell(self, message: msgspec.Struct) -> None:
        """Send ``message`` without a reply (a failure is logged by the worker)."""
        self._channel.tell(TellRequest(self.name, type_path(type(message)), encode(message)))


class JobSystem:
    """``ctx.system`` in a job process: only :meth:`ref` (asks and tells)."""

    __slots__ = ("_channel",)

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel

    def ref(self, name: str) -> JobRef:
        return JobRef(self._channel, name)


class _Channel:
    """The process's end of the connection; asks are serialized by a lock (a job may
    ask from several threads, the worker answers one request at a time)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._lock = threading.Lock()

    def receive(self) -> Any:
        return from_worker.decode(self._connection.recv_bytes())

    def send(self, data: bytes) -> None:
        with self._lock:
            self._connection.send_bytes(data)

    def ask(self, request: AskRequest) -> Any:
        with self._lock:
            self._connection.send_bytes(encode(request))
            answer = from_worker.decode(self._connection.recv_bytes())
        if not isinstance(answer, Answer):
            raise JobAskFailed(f"the worker answered a {type(answer).__name__} to an ask")
        if not answer.ok:
            raise JobAskFailed(answer.error or "the worker could not send the ask")
        if answer.reply_type is None:
            return msgspec.msgpack.decode(answer.reply)
        reply_type = resolve_struct(answer.reply_type, may_import=True)
        return raise_for_error(msgspec.msgpack.decode(answer.reply, type=reply_type))

    def tell(self, request: TellRequest) -> None:
        self.send(encode(request))


def json_like(value: Any) -> Any:
    """``value`` as plain JSON data (tuples become lists); raises TypeError if it is not."""
    try:
        encoded = msgspec.json.encode(value)
        msgspec.msgpack.encode(value)  # it also crosses msgpack boundaries (big ints)
    except (TypeError, OverflowError, msgspec.EncodeError) as exc:
        raise TypeError(f"the result is not JSON-serializable: {exc}") from exc
    return msgspec.json.decode(encoded)


class _Runner:
    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self._system = JobSystem(channel)
        self._callables: dict[str, Callable[..., Any]] = {}

    def serve(self) -> None:
        """Run calls until the worker closes the connection."""
        while True:
            try:
                call = self._channel.receive()
            except _CLOSED:
                return
            if not isinstance(call, Call):
                raise TypeError(f"expected a Call, the worker sent a {type(call).__name__}")
            outcome = encode(self.run(call))
            try:
                self._channel.send(outcome)
            except _CLOSED:
                return  # the worker gave up on the attempt (killed us late, or stopped)

    def run(self, call: Call) -> Outcome:
        started = time.perf_counter()
        context = JobContext(call.job_id, call.kind, call.attempt, self._system)
        try:
            fn = self._callables.get(call.target)
            if fn is None:
                fn = self._callables[call.target] = load_callable(call.target)
            result = json_like(fn(call.args, context))
        except Exception as exc:  # noqa: BLE001 - a job's failure is data: the attempt failed
            return Outcome(
                ok=False,
                error=f"{type(exc).__name__}: {exc}",
                seconds=time.perf_counter() - started,
                traceback=traceback.format_exc(),
            )
        return Outcome(ok=True, result=result, seconds=time.perf_counter() - started)


def _watch_parent(parent_pid: int) -> None:
    """Exit soon after the parent dies, even while a job holds the main thread."""

    def watch() -> None:
        pause = threading.Event()
        while not pause.wait(_WATCH_EVERY):
            if os.getppid() != parent_pid:
                os.write(2, f"job process {os.getpid()}: parent {parent_pid} died\n".encode())
                os._exit(_ORPHANED)

    threading.Thread(target=watch, name="vibe-job-parent-watch", daemon=True).start()


def main() -> None:
    """The process's entry point (see the module docstring); argv[1] is the socket's fd."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel = _Channel(Connection(int(sys.argv[1])))
    try:
        hello = channel.receive()
    except _CLOSED:
        return  # stopped before it was told anything
    if not isinstance(hello, Hello):
        raise TypeError(f"expected Hello first, the worker sent a {type(hello).__name__}")
    if os.getppid() != hello.parent_pid:
        return  # the parent died while this process started
    sys.path[:] = hello.sys_path
    _watch_parent(hello.parent_pid)
    try:
        channel.send(encode(Ready(os.getpid())))
    except _CLOSED:
        return  # stopped while it started
    _Runner(channel).serve()
