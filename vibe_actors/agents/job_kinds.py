"""Built-in job kinds for the jobs agent: smoke tests and operations.

Each is a function ``fn(args, ctx)`` to name in ``JobsConfig.kinds``, e.g.::

    kinds:
      echo: vibe_actors.agents.job_kinds:echo
      sleep: vibe_actors.agents.job_kinds:sleep
      fail: vibe_actors.agents.job_kinds:fail
      ping: vibe_actors.agents.job_kinds:ping
      verify_ledger: vibe_actors.agents.job_kinds:verify_ledger

Bad arguments raise ValueError, which makes the attempt fail (and be retried
like any failure: submit such jobs with ``retries=0`` when that is pointless).
A kind that declares its arguments with :func:`job_args` (``sleep``) has them
checked at ``Submit`` already: bad ones are answered ``InvalidJob`` (422).
"""

from __future__ import annotations

import math
import threading
from typing import Annotated, Any

import msgspec

from vibe_actors import Ping
from vibe_actors.agents.jobs.protocol import JobContext, job_args

__all__ = ["MAX_SLEEP", "SleepArgs", "echo", "fail", "ping", "sleep", "verify_ledger"]

#: The longest ``sleep`` accepts, in seconds (a worker is busy for the whole wait,
#: or until the job's timeout kills it).
MAX_SLEEP = 3600.0


class SleepArgs(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The arguments of :func:`sleep`, checked at ``Submit``."""

    seconds: Annotated[float, msgspec.Meta(ge=0, le=MAX_SLEEP)] = 0.0


def echo(args: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Return ``args`` unchanged: proves the queue, a worker and the store round-trip."""
    return args


@job_args(SleepArgs)
def sleep(args: dict[str, Any], ctx: JobContext) -> dict[str, float]:
    """Wait ``args["seconds"]`` (0 to :data:`MAX_SLEEP`) and return ``{"slept": seconds}``.

    Occupies one worker for that long (or until the job's timeout kills its
    process): for load and timeout drills.
    """
    seconds = args.get("seconds", 0)
    if not isinstance(seconds, int | float) or not (0 <= seconds <= MAX_SLEEP):
        raise ValueError(f"seconds must be a number between 0 and {MAX_SLEEP:g}, got {seconds!r}")
    threading.Event().wait(float(seconds))
    return {"slept": float(seconds)}


def fail(args: dict[str, Any], ctx: JobContext) -> None:
    """Always raise RuntimeError with ``args["message"]``: exercises retries and alerts."""
    raise RuntimeError(str(args.get("message", f"job {ctx.job_id} failed on purpose")))


def ping(args: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Ping agent ``args["agent"]`` (within ``args["timeout"]`` s, default 5): its incarnation.

    Fails if the agent does not answer (unknown, stopped, hung).
    """
    name, timeout = _name(args, "agent", None), _timeout(args)
    pong = ctx.system.ref(name).ask(Ping(), timeout=timeout)
    return {"agent": pong.agent, "incarnation": pong.incarnation}


def verify_ledger(args: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Verify the hash chain of every stream of the ledger agent ``args["ledger"]``
    (default ``"ledger"``), each ask within ``args["timeout"]`` s (default 30).

    Returns ``{"ok": every chain holds, "streams": {stream: {"ok", "count",
    "broken_at"}}}``. A broken chain is a result, not a failure (retrying would
    not mend it): alert on ``ok``. The job fails if the ledger cannot be asked.
    """
    # Imported here: the jobs agent must not depend on the ledger being installed.
    from vibe_actors.agents.ledger.protocol import StreamList, Streams, Verified, Verify

    ledger, timeout = ctx.system.ref(_name(args, "ledger", "ledger")), _timeout(args, 30.0)
    listing: StreamList = ledger.ask(Streams(), timeout=timeout)
    results: dict[str, Any] = {}
    for info in listing.streams:
        verified: Verified = ledger.ask(Verify(stream=info.stream), timeout=timeout)
        results[info.stream] = {
            "ok": verified.ok,
            "count": verified.count,
            "broken_at": verified.broken_at,
        }
    return {"ok": all(r["ok"] for r in results.values()), "streams": results}


def _name(args: dict[str, Any], key: str, default: str | None) -> str:
    value = args.get(key, default)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be an agent name, got {value!r}")
    return value


def _timeout(args: dict[str, Any], default: float = 5.0) -> float:
    value = args.get("timeout", default)
    if not isinstance(value, int | float) or not (value > 0 and math.isfinite(value)):
        raise ValueError(f"timeout must be a number of seconds > 0, got {value!r}")
    return float(value)
