"""Job kinds for the jobs tests (importable by name: they run in the workers' job processes).

A job runs in another process than the test, so whatever a test and its jobs
share goes through files: a :class:`FileGate` directory (``args["gate"]``).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from vibe_actors.agents.jobs import JobContext

NOT_CALLABLE = 42
#: The longest a gated job waits for its gate (it fails the test's deadlines first).
GATE_WAIT = 10.0


class FileGate:
    """A gate for jobs in other processes: each gated job appends ``start <id>`` and
    ``end <id>`` to ``log`` (O_APPEND: whole lines), and waits for the ``open`` file."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory

    def args(self, **more: Any) -> dict[str, Any]:
        return {"gate": str(self.directory), **more}

    def open(self) -> None:
        (self.directory / "open").touch()

    def _events(self) -> list[tuple[str, str]]:
        log = self.directory / "log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [tuple(line.split(" ", 1)) for line in lines]  # type: ignore[misc]

    @property
    def started(self) -> list[str]:
        """Job ids in the order their attempts started."""
        return [job_id for event, job_id in self._events() if event == "start"]

    @property
    def most(self) -> int:
        """The most gated attempts that ran at once."""
        running = most = 0
        for event, _ in self._events():
            running += 1 if event == "start" else -1
            most = max(most, running)
        return most


def _log(gate: Path, line: str) -> None:
    with (gate / "log").open("a") as log:
        log.write(line + "\n")


def flaky(args: dict[str, Any], ctx: JobContext) -> dict[str, int]:
    """Fails the first ``args["fail"]`` attempts."""
    if ctx.attempt <= args["fail"]:
        raise RuntimeError(f"attempt {ctx.attempt} fails")
    return {"attempt": ctx.attempt}


def gated(args: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Waits (at most GATE_WAIT s) for the gate ``args["gate"]`` to open, logging it."""
    gate = Path(args["gate"])
    _log(gate, f"start {ctx.job_id}")
    deadline = time.monotonic() + GATE_WAIT
    pause = threading.Event()
    while not (gate / "open").exists() and time.monotonic() < deadline:
        pause.wait(0.005)
    _log(gate, f"end {ctx.job_id}")
    return {"n": args.get("n")}


def hang_first(args: dict[str, Any], ctx: JobContext) -> dict[str, int]:
    """The first attempt blocks for ``args["hang"]`` s (default 10); later ones return."""
    if ctx.attempt == 1:
        threading.Event().wait(args.get("hang", 10.0))
    return {"attempt": ctx.attempt}


def bad_result(args: dict[str, Any], ctx: JobContext) -> Any:
    return {"value": object()}


def slow(args: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Takes ``args["seconds"]``; returns its args (the crash test checks them)."""
    threading.Event().wait(args.get("seconds", 0.05))
    return args


def gated_big(args: dict[str, Any], ctx: JobContext) -> dict[str, str]:
    """Like :func:`gated`, then returns ``args["size"]`` characters, or raises an error as
    long if ``args["fail"]`` (a result or an error the store needs new pages for)."""
    gated(args, ctx)
    blob = "x" * args.get("size", 200_000)
    if args.get("fail"):
        raise RuntimeError(blob)
    return {"blob": blob}
