"""A circuit breaker per (agent, message type): poison requests cannot spend restarts.

Every request whose handler raised (the ask was answered ``AgentCrashed``)
crashed an incarnation and spent one restart of its supervisor's intensity;
a client repeating such a request would make the supervisors give up and the
process exit. The breaker counts those crashes per (agent, message type):

* **closed** (the normal state): requests go through; ``crashes`` crashes
  within ``window`` seconds open it;
* **open**: requests of that type to that agent are answered 503
  problem+json (``circuit-open``) with ``Retry-After`` at once, without
  reaching the agent, for ``cooldown`` seconds; other types, other agents,
  probes and every other route keep serving;
* **half-open** after the cooldown: one request goes through as a trial; if
  it crashes the handler again the circuit opens for twice as long (up to
  ``max_cooldown``), if it is answered it closes.

Opening publishes :class:`~vibe_actors.CircuitOpened` on ``system.events``
(recorded by the audit agent), logs ``circuit_opened`` with the request id of
the request that opened it, and counts ``vibe_http_circuit_opened_total``.
Used from the event loop's thread only: no locks.
"""

from __future__ import annotations

import math
import time

import msgspec
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from vibe_actors import ActorSystem, CircuitOpened

__all__ = ["BreakerSettings", "CrashBreaker"]

_log = structlog.get_logger("gateway.breaker")


class BreakerSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When crashes open a circuit, and for how long."""

    #: Handler crashes within ``window`` seconds that open the circuit (0: never).
    crashes: int = 3
    window: float = 60.0
    #: Seconds the first opening lasts; each failed trial doubles it, up to ``max_cooldown``
    #: (which it must not exceed).
    cooldown: float = 30.0
    max_cooldown: float = 600.0

    def __post_init__(self) -> None:
        if self.crashes < 0:
            raise ValueError(f"crashes must be >= 0, got {self.crashes}")
        for name in ("window", "cooldown", "max_cooldown"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value}")
        if self.cooldown > self.max_cooldown:  # the first opening would outlast the cap
            raise ValueError(
                f"cooldown ({self.cooldown:g}) must not exceed max_cooldown ({self.max_cooldown:g})"
            )


class _Circuit:
    __slots__ = ("cooldown", "crash_times", "open_until", "trial", "trial_at")

    def __init__(self) -> None:
        self.crash_times: list[float] = []
        self.open_until = 0.0
        self.cooldown = 0.0
        self.trial = False
        self.trial_at = 0.0


class CrashBreaker:
    """The circuits of one gateway app (see the module docstring)."""

    def __init__(
        self,
        system: ActorSystem,
        registry: CollectorRegistry,
        settings: BreakerSettings | None = None,
        clock: object = time.monotonic,
    ) -> None:
        self._system = system
        self.settings = settings or BreakerSettings()
        self._clock = clock
        self._circuits: dict[tuple[str, str], _Circuit] = {}
        #: The circuits not closed now: the request path looks here only when it is not empty.
        self.tripped: dict[tuple[str, str], _Circuit] = {}
        self._opened = Counter(
            "vibe_http_circuit_opened",
            "Circuits opened: a message type kept crashing its agent's handler",
            ["agent", "message_type"],
            registry=registry,
        )
        self._refused = Counter(
            "vibe_http_circuit_refused",
            "Requests refused by an open circuit",
            ["agent", "message_type"],
            registry=registry,
        )
        self._open_now = Gauge(
            "vibe_http_circuits_open", "Circuits open or half-open now", registry=registry
        )
        self._open_now.set_function(lambda: len(self.tripped))

    def _now(self) -> float:
        return self._clock()  # type: ignore[operator,no-any-return]

    def refuse(self, agent: str, message_type: str) -> int | None:
        """Seconds to wait (Retry-After) if the circuit refuses this request, else None.

        A half-open circuit lets one trial request through.
        """
        circuit = self.tripped.get((agent, message_type))
        if circuit is None:
            return None
        now = self._now()
        if now < circuit.open_until:
            self._refused.labels(agent, message_type).inc()
            return max(1, math.ceil(circuit.open_until - now))
        if circuit.trial and now - circuit.trial_at < circuit.cooldown:
            # A trial is in flight: the others wait for its outcome (a trial whose
            # client went away never reports one: after a cooldown another is let in).
            self._refused.labels(agent, message_type).inc()
            return 1
        circuit.trial, circuit.trial_at = True, now
        return None

    def crashed(self, agent: str, message_type: str, request_id: str) -> None:
        """The handler of this request raised: count it; maybe open the circuit."""
        settings = self.settings
        if settings.crashes == 0:
            return
        key = (agent, message_type)
        circuit = self._circuits.setdefault(key, _Circuit())
        now = self._now()
        if circuit.trial:  # the trial crashed too: open again, for longer
            circuit.trial = False
            self._open(key, circuit, min(circuit.cooldown * 2, settings.max_cooldown), request_id)
            return
        circuit.crash_times = [t for t in circuit.crash_times if now - t < settings.window]
        circuit.crash_times.append(now)
        if len(circuit.crash_times) >= settings.crashes:
            self._open(key, circuit, settings.cooldown, request_id)

    def answered(self, agent: str, message_type: str) -> None:
        """A request was answered without crashing the handler (an error reply or a
        timeout counts too): a trial closes the circuit."""
        key = (agent, message_type)
        circuit = self.tripped.get(key)
        if circuit is not None and circuit.trial:
            del self.tripped[key]
            circuit.trial = False
            circuit.crash_times.clear()
            _log.info("circuit_closed", agent=agent, message_type=message_type)

    def _open(
        self, key: tuple[str, str], circuit: _Circuit, seconds: float, request_id: str
    ) -> None:
        agent, message_type = key
        circuit.cooldown = seconds
        circuit.open_until = self._now() + seconds
        circuit.crash_times.clear()
        self.tripped[key] = circuit
        self._opened.labels(agent, message_type).inc()
        _log.warning(
            "circuit_opened",
            agent=agent,
            message_type=message_type,
            seconds=seconds,
            request_id=request_id,
        )
        self._system.events.publish(
            CircuitOpened(
                agent=agent,
                message_type=message_type,
                crashes=self.settings.crashes,
                seconds=seconds,
                by="gateway",
                request_id=request_id,
                at=time.time(),
            )
        )
