"""A job worker's child process: started by the worker, one attempt at a time, killed when late.

A :class:`JobProcess` is owned by one :class:`~vibe_actors.agents.jobs.JobWorker`
incarnation and used from its thread only: the worker starts it in
``on_start`` (so the interpreter's start-up is paid before the first job),
runs each attempt through :meth:`JobProcess.run`, and stops it in ``on_stop``
and ``on_failure``. Whatever starts a process stops it: no path leaves one
running behind the worker.

The child is a fresh interpreter (``python -c``, so never a fork of this
multi-threaded process, and, unlike multiprocessing's spawn and forkserver
start methods, it re-imports neither this process's ``__main__`` nor starts a
resource-tracker or fork-server helper that would outlive the workers) running
:mod:`vibe_actors.agents.jobs._child`; it talks over a socket pair framed by
:class:`multiprocessing.connection.Connection`, see
:mod:`~vibe_actors.agents.jobs._wire`.

A job's ``timeout`` counts from the moment its process is ready (a fresh
interpreter takes a few hundred milliseconds to import; a replacement's
start-up is not charged to the next job): the first attempt after a start
waits for the process's :class:`~vibe_actors.agents.jobs._wire.Ready`, for at
most :data:`START_TIMEOUT` seconds.

An attempt that outlives its timeout, or that is running when the worker is
told to stop, has its process killed (SIGTERM, SIGKILL after ``kill_grace``
seconds) and reaped; after a timeout a new process is started at once, so the
worker takes its next job as soon as :meth:`run` returns. A process that
exits by itself during an attempt (the job called ``os._exit``, a segfault,
the OOM killer) is a failed attempt too, and is replaced the same way.
"""

from __future__ import annotations

import os

# subprocess starts the job interpreter: argv is fixed (this interpreter, a constant
# boot line, a descriptor number), never a shell, never input from a request.
import subprocess  # nosec B404
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from socket import socketpair
from typing import Any, Protocol

import msgspec

from vibe_actors import VibeError
from vibe_actors.agents.jobs._metrics import ProcessMetrics
from vibe_actors.agents.jobs._wire import (
    Answer,
    AskRequest,
    Call,
    Hello,
    Outcome,
    Ready,
    TellRequest,
    encode,
    from_process,
)

__all__ = ["START_TIMEOUT", "STOPPED", "JobProcess", "JobProcessError", "JobServices"]

#: The longest a job process may take to start (import) before its first attempt.
START_TIMEOUT = 30.0

#: The child's program: argv[1] is its socket's fd, argv[2] where this vibe_actors comes
#: from, put first on its path so that both run the same code (``-c`` would put the
#: working directory first, which may hold another checkout).
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[2]); "
    "from vibe_actors.agents.jobs._child import main; main()"
)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])
#: How often a worker waiting on its job checks whether it was told to stop (seconds).
_POLL_EVERY = 0.05
#: A bigger message from a job process breaks the connection (a failed attempt).
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: Waiting for a SIGKILLed process to be reaped; past it the process is reported lost.
_REAP_TIMEOUT = 5.0
#: The job's stdout goes to our stderr: our stdout may be a protocol (acks, a pipe).
_STDERR_FD = 2

STOPPED = "interrupted: the worker stopped during the attempt"


class JobProcessError(VibeError):
    """A job process could not be started (the message names the worker and why)."""


class JobServices(Protocol):
    """What a running job may ask of its worker (the worker agent implements it)."""

    def ask(self, request: AskRequest, deadline: float) -> Answer | None:
        """Answer the job's ask; None if the attempt ended meanwhile (stop, deadline)."""

    def tell(self, request: TellRequest) -> None: ...

    def stopping(self) -> bool:
        """Whether the worker was told to stop (the attempt is then abandoned)."""


class JobProcess:
    """The child process of one worker incarnation (see the module docstring)."""

    def __init__(
        self, owner: str, log: Any, metrics: ProcessMetrics | None, kill_grace: float
    ) -> None:
        self._owner = owner
        self._log = log
        self._metrics = metrics
        self._kill_grace = kill_grace
        self._popen: subprocess.Popen[bytes] | None = None
        self._connection: Connection | None = None
        self._ready = False  #: the process said Ready

    @property
    def pid(self) -> int | None:
        """The running child's pid (None between a stop and the next start)."""
        return None if self._popen is None else self._popen.pid

    def start(self) -> None:
        """Start the child (it boots while the worker goes on).

        Raises :class:`JobProcessError` if the interpreter cannot be started.
        """
        parent_end, child_end = socketpair()
        try:
            with child_end:
                fd = child_end.fileno()
                # A fixed argv (see the subprocess import), never a shell.
                popen = subprocess.Popen(  # nosec B603
                    [sys.executable, "-c", _BOOT, str(fd), _PACKAGE_ROOT],
                    pass_fds=(fd,),
                    stdin=subprocess.DEVNULL,
                    stdout=_STDERR_FD,
                )
        except OSError as exc:
            parent_end.close()
            raise JobProcessError(f"{self._owner}: cannot start a job process: {exc}") from exc
        connection = Connection(parent_end.detach())
        self._popen, self._connection, self._ready = popen, connection, False
        try:
            connection.send_bytes(encode(Hello(sys_path=list(sys.path), parent_pid=os.getpid())))
        except OSError as exc:
            self._end("broken", None)
            raise JobProcessError(
                f"{self._owner}: the job process {popen.pid} died at start"
            ) from exc
        if self._metrics is not None:
            self._metrics.started.inc()
        self._log.info("job_process_started", pid=popen.pid)

    def run(self, call: Call, timeout: float, services: JobServices) -> Outcome:
        """Run one attempt in the child, serving its asks, for at most ``timeout`` s.

        Never raises for what the job does: a timeout, a stop, the process
        dying or sending garbage are failed attempts (the process is replaced,
        except on a stop). Raises :class:`JobProcessError` only if a
        replacement process cannot be started.
        """
        if self._connection is None:
            self.start()
        connection = self._connection
        assert connection is not None
        started = time.monotonic()
        try:
            if not self._ready:
                not_ready = self._await_ready(call, services, started)
                if not_ready is not None:
                    return not_ready
            started = time.monotonic()
            deadline = started + timeout
            connection.send_bytes(encode(call))
            while True:
                if services.stopping():
                    return self._interrupt(call, "stop", STOPPED, started)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return self._interrupt(
                        call, "timeout", f"timed out after {timeout:g}s", started
                    )
                if not connection.poll(min(remaining, _POLL_EVERY)):
                    continue
                message = from_process.decode(connection.recv_bytes(_MAX_MESSAGE_BYTES))
                if isinstance(message, Outcome):
                    return message
                if isinstance(message, AskRequest):
                    answer = services.ask(message, deadline)
                    if answer is not None:  # else the loop ends the attempt (stop, deadline)
                        connection.send_bytes(encode(answer))
                elif isinstance(message, TellRequest):
                    services.tell(message)
                else:
                    raise msgspec.DecodeError(f"unexpected {type(message).__name__}")
        except (EOFError, OSError, msgspec.DecodeError) as exc:
            return self._lost(call, started, exc)

    def _await_ready(self, call: Call, services: JobServices, started: float) -> Outcome | None:
        """Wait for the new process's Ready; the failed attempt if it never comes.

        Raises what the connection raises (EOFError, OSError, DecodeError): the
        caller's to report.
        """
        connection = self._connection
        assert connection is not None
        deadline = started + START_TIMEOUT
        while not connection.poll(_POLL_EVERY):
            if services.stopping():
                return self._interrupt(call, "stop", STOPPED, started)
            if time.monotonic() >= deadline:
                error = f"the job process did not start within {START_TIMEOUT:g}s"
                return self._interrupt(call, "start", error, started)
        message = from_process.decode(connection.recv_bytes(_MAX_MESSAGE_BYTES))
        if not isinstance(message, Ready):
            raise msgspec.DecodeError(f"expected Ready, got {type(message).__name__}")
        self._ready = True
        self._log.debug("job_process_ready", pid=message.pid,
                        seconds=round(time.monotonic() - started, 4))  # fmt: skip
        return None

    def stop(self) -> None:
        """End the child (if any) and reap it; the worker is stopping or crashed."""
        if self._popen is not None:
            self._end("stopped", None)

    # -- ending a process ------------------------------------------------------------

    def _interrupt(self, call: Call, reason: str, error: str, started: float) -> Outcome:
        """Kill the child mid-attempt; unless the worker is stopping, start its replacement."""
        self._end(reason, call.job_id)
        if reason != "stop":
            self.start()
        return Outcome(ok=False, error=error, seconds=time.monotonic() - started)

    def _lost(self, call: Call, started: float, exc: BaseException) -> Outcome:
        """The connection broke or carried garbage: the child exited, or is killed now."""
        popen = self._popen
        assert popen is not None
        code = popen.poll()
        if code is None and isinstance(exc, EOFError | ConnectionError):
            try:  # its end closed: it is exiting, give it the time to
                code = popen.wait(self._kill_grace)
            except subprocess.TimeoutExpired:
                code = None
        if code is None:  # alive but unusable
            self._end("broken", call.job_id)
            error = f"the job process broke its connection ({type(exc).__name__}: {exc})"
        else:
            self._forget()
            if self._metrics is not None:
                self._metrics.died.inc()
            self._log.warning("job_process_died", pid=popen.pid, exit_code=code,
                              job_id=call.job_id, kind=call.kind)  # fmt: skip
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            when = "during the attempt" if self._ready else "before it was ready"
            error = f"the job process {how} {when}"
        self.start()
        return Outcome(ok=False, error=error, seconds=time.monotonic() - started)

    def _end(self, reason: str, job_id: str | None) -> None:
        """Close the connection, then SIGTERM, SIGKILL after the grace, and reap."""
        popen = self._popen
        assert popen is not None
        self._forget()
        begun = time.monotonic()
        popen.terminate()
        try:
            code = popen.wait(self._kill_grace)
        except subprocess.TimeoutExpired:
            popen.kill()
            try:
                code = popen.wait(_REAP_TIMEOUT)
            except subprocess.TimeoutExpired:
                # Uninterruptible (in the kernel): nothing more can be done from here.
                self._log.error("job_process_unreaped", pid=popen.pid, reason=reason,
                                job_id=job_id)  # fmt: skip
                return
        seconds = round(time.monotonic() - begun, 4)
        if job_id is None:
            self._log.info("job_process_stopped", pid=popen.pid, exit_code=code, seconds=seconds)
            return
        if self._metrics is not None:
            self._metrics.killed.labels(reason=reason).inc()
        self._log.warning("job_process_killed", pid=popen.pid, reason=reason, job_id=job_id,
                          exit_code=code, seconds=seconds)  # fmt: skip

    def _forget(self) -> None:
        connection, self._connection, self._popen = self._connection, None, None
        if connection is not None:
            connection.close()
