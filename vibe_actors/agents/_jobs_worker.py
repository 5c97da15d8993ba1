"""The worker side of the jobs agent: :class:`JobWorker` runs one job attempt per ``Run``.

``Run`` and ``RunResult`` are plain Structs, not Messages, on purpose: a
``Run`` names any importable function, so it must never be accepted from
outside the process (the gateway routes Messages only). The coordinator
(:mod:`vibe_actors.agents.jobs`) sends the kind's import string with every
``Run``, so its configuration is the one source of truth; a worker imports
each target once and caches it per incarnation (nothing else is kept: a
restarted worker imports again).

A job function's exception, or a result that is not JSON-like, is a failed
attempt reported as data in ``RunResult``: the worker itself never crashes
because of a job.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from vibe_actors import Agent, handler

if TYPE_CHECKING:
    from vibe_actors import ActorSystem

__all__ = ["JobContext", "JobWorker", "JobWorkerConfig", "Run", "RunResult", "load_callable"]


def load_callable(target: str) -> Callable[..., Any]:
    """Import ``"package.module:name"`` (``name`` may be dotted) and return it.

    Raises ValueError saying what is wrong: not an import string, module not
    importable, no such attribute, or not callable.
    """
    module_name, sep, attr = target.partition(":")
    if not (module_name and sep and attr):
        raise ValueError(f"{target!r} is not an import string 'module:function'")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r} ({exc})") from exc
    for part in attr.split("."):
        try:
            found = getattr(found, part)
        except AttributeError as exc:
            raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from exc
    if not callable(found):
        raise ValueError(f"{target!r} is not callable (it is a {type(found).__name__})")
    return found  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a job function gets besides its args: which job and attempt, and the system
    (to ask other agents: ``ctx.system.ref("ledger").ask(...)``)."""

    job_id: str
    kind: str
    attempt: int
    system: ActorSystem


class Run(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Run attempt ``attempt`` (1-based) of job ``job_id``: ``target(args, context)``.

    Tagged (like messages, though private) so that it and its reply cross a
    process boundary in one msgpack union: a worker pool may be placed on Ray.
    """

    job_id: str
    kind: str
    target: str
    args: dict[str, Any]
    attempt: int


class RunResult(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """How the attempt ended: ``result`` (JSON-like) if ``ok``, else ``error``."""

    job_id: str
    ok: bool
    result: Any = None
    error: str | None = None
    seconds: float = 0.0


def _json_like(value: Any) -> Any:
    """``value`` as plain JSON data (tuples become lists); raises TypeError if it is not."""
    try:
        encoded = msgspec.json.encode(value)
        msgspec.msgpack.encode(value)  # it also has to cross the actor boundary (big ints)
    except (TypeError, OverflowError, msgspec.EncodeError) as exc:
        raise TypeError(f"the result is not JSON-serializable: {exc}") from exc
    return msgspec.json.decode(encoded)


class JobWorkerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A worker has no settings: the kinds come with each ``Run`` from the coordinator's
    config (this struct exists so that a misplaced ``kinds`` is refused, not ignored)."""


class JobWorker(Agent):
    """Runs job attempts; pool it (``PoolSpec(size=N)``) to run N at once."""

    Config: ClassVar = JobWorkerConfig

    def on_start(self) -> None:
        self._callables: dict[str, Callable[..., Any]] = {}

    @handler
    def run(self, msg: Run) -> RunResult:
        started = time.perf_counter()
        context = JobContext(job_id=msg.job_id, kind=msg.kind, attempt=msg.attempt,
                             system=self.system)  # fmt: skip
        try:
            fn = self._callables.get(msg.target) or self._load(msg.target)
            result = _json_like(fn(msg.args, context))
        except Exception as exc:
            seconds = time.perf_counter() - started
            error = f"{type(exc).__name__}: {exc}"
            self.log.warning("job_attempt_failed", job_id=msg.job_id, kind=msg.kind,
                             attempt=msg.attempt, error=error, exc_info=exc)  # fmt: skip
            return RunResult(job_id=msg.job_id, ok=False, error=error, seconds=seconds)
        seconds = time.perf_counter() - started
        return RunResult(job_id=msg.job_id, ok=True, result=result, seconds=seconds)

    def _load(self, target: str) -> Callable[..., Any]:
        fn = self._callables[target] = load_callable(target)
        return fn
