"""The worker side of the jobs agent: :class:`JobWorker` runs one job attempt per ``Run``.

``Run`` and ``RunResult`` are plain Structs, not Messages, on purpose: a
``Run`` names any importable function, so it must never be accepted from
outside the process (the gateway routes Messages only). The coordinator
(:mod:`vibe_actors.agents.jobs`) sends the kind's import string with every
``Run``, so its configuration is the one source of truth.

Each worker incarnation owns one job process
(:mod:`~vibe_actors.agents.jobs._process`), started in ``on_start`` and stopped
in ``on_stop``/``on_failure``, and runs every attempt there, so that an
attempt past its ``timeout`` can be stopped: its process is killed and
replaced, and the worker is free for the next job as soon as the kill is
done. While an attempt runs, the worker serves the job's ``ctx.system`` asks
and tells (in its own thread, bounded by the attempt's deadline).

A job function's exception, a result that is not JSON-like, a timeout or the
process dying are failed attempts reported as data in ``RunResult``: the
worker itself never crashes because of a job (only if a replacement process
cannot be started: :class:`~vibe_actors.agents.jobs._process.JobProcessError`).
"""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

import msgspec

from vibe_actors import ActorSystem, Agent, Caller, handler
from vibe_actors.agents.jobs._child import JobContext
from vibe_actors.agents.jobs._metrics import build_process_metrics
from vibe_actors.agents.jobs._process import JobProcess
from vibe_actors.agents.jobs._wire import (
    Answer,
    AskRequest,
    Call,
    TellRequest,
    encode,
    load_callable,
    resolve_struct,
    type_path,
)

__all__ = ["JobContext", "JobWorker", "JobWorkerConfig", "Run", "RunResult", "load_callable"]

#: How often a worker waiting on a job's ask checks whether it was told to stop (seconds).
_ASK_POLL_EVERY = 0.05


class Run(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Run attempt ``attempt`` (1-based) of job ``job_id``: ``target(args, context)``,
    for at most ``timeout`` seconds.

    Tagged (like messages, though private) so that it and its reply cross a
    process boundary in one msgpack union: a worker pool may be placed on Ray.
    """

    job_id: str
    kind: str
    target: str
    args: dict[str, Any]
    attempt: int
    timeout: float
    #: Who submitted the job: what it asks through ``ctx.system`` is sent on that caller's
    #: behalf and authorised as the caller's own request (None: trusted code).
    caller: Caller | None = None


class RunResult(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """How the attempt ended: ``result`` (JSON-like) if ``ok``, else ``error``."""

    job_id: str
    ok: bool
    result: Any = None
    error: str | None = None
    seconds: float = 0.0


class JobWorkerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of a :class:`JobWorker` (the kinds come with each ``Run`` from the
    coordinator's config: a misplaced ``kinds`` is refused, not ignored)."""

    #: Seconds between SIGTERM and SIGKILL when a job's process is killed.
    kill_grace: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.kill_grace <= 10:
            raise ValueError(f"kill_grace must be > 0 and <= 10 seconds, got {self.kill_grace}")


class JobWorker(Agent):
    """Runs job attempts in its own process; pool it (``PoolSpec(size=N)``) to run N at once."""

    Config: ClassVar = JobWorkerConfig

    def on_start(self) -> None:
        # A Ray-placed worker has no local system: its processes go uncounted.
        system = self.system
        metrics = (
            system.shared_metrics("job_processes", build_process_metrics)
            if isinstance(system, ActorSystem)
            else None
        )
        self._process = JobProcess(self.name, self.log, metrics, self.config.kill_grace)
        self._process.start()

    def on_stop(self) -> None:
        self._stop_process()

    def on_failure(self, error: BaseException) -> None:
        self._stop_process()

    def _stop_process(self) -> None:
        process = getattr(self, "_process", None)  # None if on_start failed before it
        if process is not None:
            process.stop()

    @handler
    def run(self, msg: Run) -> RunResult:
        call = Call(msg.job_id, msg.kind, msg.target, msg.args, msg.attempt)
        outcome = self._process.run(call, msg.timeout, _Services(self, msg.caller))
        if not outcome.ok:
            self.log.warning("job_attempt_failed", job_id=msg.job_id, kind=msg.kind,
                             attempt=msg.attempt, error=outcome.error,
                             traceback=outcome.traceback)  # fmt: skip
        return RunResult(job_id=msg.job_id, ok=outcome.ok, result=outcome.result,
                         error=outcome.error, seconds=outcome.seconds)  # fmt: skip

    @property
    def job_process_id(self) -> int | None:
        """The pid of this worker's job process (None while it has none, or before
        ``on_start`` made it: the property may be read from any thread)."""
        process: JobProcess | None = getattr(self, "_process", None)
        return None if process is None else process.pid


class _Services:
    """A running job's ``ctx.system``, served in the worker's thread, on behalf of the
    job's submitter (a denied ask is answered ``Forbidden``, a denied tell dead-lettered)."""

    def __init__(self, worker: JobWorker, caller: Caller | None) -> None:
        self._worker = worker
        self._caller = caller

    def stopping(self) -> bool:
        # The runtime sets this flag before it queues the stop (or retires a hung
        # incarnation): a job that would hold the thread past it is abandoned.
        return self._worker.stopping

    def ask(self, request: AskRequest, deadline: float) -> Answer | None:
        worker = self._worker
        try:
            message = self._decode(request.message_type, request.message)
            ref = worker.ref(request.agent)
            default = worker.system.config.ask_timeout
        except ValueError as exc:
            return Answer(ok=False, error=str(exc))
        except RuntimeError as exc:  # a Ray-placed worker: RemoteFeatureUnavailable
            return Answer(ok=False, error=f"{type(exc).__name__}: {exc}")
        limit = min(default if request.timeout is None else request.timeout,
                    deadline - time.monotonic())  # fmt: skip
        arrived = threading.Event()
        future = ref.ask_future(message, timeout=max(limit, 0.0), caller=self._caller,
                                callback=lambda _reply: arrived.set())  # fmt: skip
        ask_deadline = time.monotonic() + limit
        while not arrived.wait(min(_ASK_POLL_EVERY, max(ask_deadline - time.monotonic(), 0.0))):
            if self.stopping():
                return None
            if time.monotonic() >= ask_deadline:
                break
        reply = future.wait(0)  # the reply, or DeadlineExceeded once the ask's time is up
        try:
            if isinstance(reply, msgspec.Struct):
                return Answer(ok=True, reply_type=type_path(type(reply)), reply=encode(reply))
            return Answer(ok=True, reply=encode(reply))
        except (TypeError, msgspec.EncodeError) as exc:
            return Answer(ok=False, error=f"the reply cannot cross to the job: {exc}")

    def tell(self, request: TellRequest) -> None:
        worker = self._worker
        try:
            message = self._decode(request.message_type, request.message)
            worker.ref(request.agent).tell(message, caller=self._caller)
        except (ValueError, RuntimeError) as exc:
            worker.log.warning("job_tell_failed", agent=request.agent,
                               message_type=request.message_type, error=str(exc))  # fmt: skip

    @staticmethod
    def _decode(message_type: str, data: bytes) -> msgspec.Struct:
        """The job's message, as a type already loaded here; ValueError if it is not one."""
        cls = resolve_struct(message_type, may_import=False)
        try:
            return msgspec.msgpack.decode(data, type=cls)
        except msgspec.DecodeError as exc:
            raise ValueError(f"cannot decode the job's {message_type}: {exc}") from exc
