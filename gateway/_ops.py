"""The operational routes: probes, metrics, and chaos (fault injection).

``/healthz`` (and ``/livez``, the same answer under the name Kubernetes uses) never
waits on agents; ``/readyz`` is 503 naming every permanent
agent that is not serving: not running, degraded (running but refusing work),
impaired (running, but its durable writes fail: a full disk),
or not answering (stuck in one message past its heartbeat deadline, as the
runtime sees it whether or not the watchdog is alive; see :func:`not_ready`).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import msgspec
import structlog
from prometheus_client import CollectorRegistry, generate_latest

from gateway._problems import Reject, make_problem
from vibe_actors import ActorSystem, UnknownAgent
from vibe_actors.agents.watchdog import STALLED, unresponsive

__all__ = ["MAX_HANG_SECONDS", "Health", "Readiness", "inject_chaos", "not_ready", "probe"]

_log = structlog.get_logger("gateway")

_JSON = b"application/json"
_METRICS_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class Health(msgspec.Struct, frozen=True):
    """The body of ``/healthz``: the process answers."""

    status: Literal["ok"] = "ok"


class Readiness(msgspec.Struct, frozen=True, omit_defaults=True):
    """The body of ``/readyz``: ``ready`` (200), or ``not_ready`` (503) naming what fails."""

    status: Literal["ready", "not_ready"]
    #: The agents (or ``system``, ``vibe-timers``) keeping the system from being ready.
    failing: list[str] = []


_HEALTHY = msgspec.json.encode(Health())
_READY = msgspec.json.encode(Readiness(status="ready"))


def probe(
    name: str, system: ActorSystem, http_registry: CollectorRegistry
) -> tuple[int, bytes, bytes]:
    """(status, body, content type) of ``/healthz``, ``/readyz`` or ``/metrics``."""
    if name in ("healthz", "livez"):
        return 200, _HEALTHY, _JSON
    if name == "metrics":
        return 200, generate_latest(system.registry) + generate_latest(http_registry), _METRICS_TYPE
    failing = not_ready(system)
    if failing:
        return 503, msgspec.json.encode(Readiness(status="not_ready", failing=failing)), _JSON
    return 200, _READY, _JSON


def not_ready(system: ActorSystem) -> list[str]:
    """The permanent agents that keep the system from being ready (``["system"]`` if stopped).

    Not answering means: the agent's current incarnation has been handling one
    message for longer than its watchdog heartbeat deadline
    (:func:`vibe_actors.agents.watchdog.unresponsive`), read from the runtime
    at call time: it holds between watchdog rounds and while the watchdog
    itself is hung, and ends once the agent is replaced. ``"vibe-timers"`` is
    named when the runtime has stopped sampling (unknown is not ready).
    Without a watchdog, hangs are not looked for.
    """
    if not system.running:
        return ["system"]
    stuck = unresponsive(system)
    failing = [
        node.name
        for node in system.walk()
        if node.restart == "permanent"
        and (node.status != "running" or node.degraded or node.impaired or node.name in stuck)
    ]
    if STALLED in stuck:
        failing.append(STALLED)
    return failing


#: The longest hang chaos injects (seconds): enough for any watchdog drill, bounded.
MAX_HANG_SECONDS = 3600.0


def inject_chaos(system: ActorSystem, name: str, kind: str, scope: Any, request_id: str) -> None:
    """Crash or hang agent ``name`` (``?seconds=N`` for a hang, default 1).

    Only workers (and pools: one worker) take faults; a supervisor is refused,
    since crashing one takes down its whole subtree and can end the process.
    Raises :class:`Reject`: 400 for a ``seconds`` that is not a finite number in
    (0, :data:`MAX_HANG_SECONDS`], 404 for an unknown agent, 403 for a supervisor.
    """
    seconds = 0.0
    if kind == "hang":
        seconds = _hang_seconds(scope, request_id)
    node = next((n for n in system.walk() if n.name == name), None)
    if node is None:
        raise Reject(make_problem(404, "unknown-agent", f"no agent named {name!r}", request_id))
    if node.kind == "supervisor":
        detail = f"{name!r} is a supervisor: chaos crashes and hangs workers and pools only"
        raise Reject(make_problem(403, "chaos-refused", detail, request_id))
    try:
        system.inject_fault(name, kind, seconds)
    except UnknownAgent:  # removed by a reload since the walk
        raise Reject(
            make_problem(404, "unknown-agent", f"no agent named {name!r}", request_id)
        ) from None
    _log.warning("chaos_injected", agent=name, fault=kind, seconds=seconds, request_id=request_id)


def _hang_seconds(scope: Any, request_id: str) -> float:
    query = dict(
        part.partition("=")[::2]
        for part in scope.get("query_string", b"").decode("latin-1").split("&")
        if part
    )
    raw = query.get("seconds", "1")
    try:
        seconds = float(raw) if len(raw) <= 32 else math.nan
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_HANG_SECONDS):
        detail = f"seconds must be a finite number in (0, {MAX_HANG_SECONDS:g}]"
        raise Reject(make_problem(400, "bad-seconds", detail, request_id))
    return seconds
