"""Job kinds for the jobs tests (importable by name, also from the crash-test child)."""

from __future__ import annotations

import threading
from typing import Any

from vibe_actors.agents.jobs import JobContext

NOT_CALLABLE = 42


class Gate:
    """Shared by the gated kinds: who started, how many ran at once, and the gate itself."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open = threading.Event()
        self.started: list[str] = []
        self.running = 0
        self.most = 0

    def reset(self) -> None:
        self.open.set()  # release anything still waiting from an earlier test
        with self.lock:
            self.open = threading.Event()
            self.started = []
            self.running = 0
            self.most = 0


GATE = Gate()
#: Released by the timeout test once the first attempt has timed out.
RELEASE = threading.Event()


def flaky(args: dict[str, Any], ctx: JobContext) -> dict[str, int]:
    """Fails the first ``args["fail"]`` attempts."""
    if ctx.attempt <= args["fail"]:
        raise RuntimeError(f"attempt {ctx.attempt} fails")
    return {"attempt": ctx.attempt}


def gated(args: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Waits (at most 10 s) for GATE.open, counting how many run at once."""
    gate = GATE
    with gate.lock:
        gate.started.append(ctx.job_id)
        gate.running += 1
        gate.most = max(gate.most, gate.running)
    try:
        gate.open.wait(10.0)
    finally:
        with gate.lock:
            gate.running -= 1
    return {"n": args.get("n")}


def hang_first(args: dict[str, Any], ctx: JobContext) -> dict[str, int]:
    """The first attempt blocks until RELEASE (at most 10 s); later ones return at once."""
    if ctx.attempt == 1:
        RELEASE.wait(10.0)
    return {"attempt": ctx.attempt}


def bad_result(args: dict[str, Any], ctx: JobContext) -> Any:
    return {"value": object()}


def slow(args: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Takes ``args["seconds"]``; returns its args (the crash test checks them)."""
    threading.Event().wait(args.get("seconds", 0.05))
    return args
