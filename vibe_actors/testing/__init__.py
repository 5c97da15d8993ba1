"""vibe_actors.testing: a test kit for agents (Akka TestKit and Trio's MockClock as models).

* :class:`TestProbe` — an agent that records what it receives:
  ``probe.expect(Type)``, ``probe.expect_no_message()``, ``probe.reply_with(...)``.
  Put one in a tree with :func:`probe_spec` (or ``agent: vibe_actors.testing:ProbeAgent``
  in wiring.yaml), find it with ``probes(system)["name"]``, or add one to a
  running system with :func:`add_probe`.
* :class:`ManualClock` — ``ActorSystem(root, config, clock=clock)``;
  ``clock.advance(2.0)`` runs the timers, backoffs and intensity windows due by
  then, without sleeping.
* Faults — :func:`fail_next` (the next handler raises), :func:`crash`,
  :func:`hang` (until ``release()``).
* :func:`record_events` — wait for runtime events (``AgentRestarted``, ``SupervisorGaveUp``).

Every failed expectation raises AssertionError saying what was expected and
what happened instead. The pytest plugin (``phoenix.pytest_plugin``, loaded
automatically once the package is installed) adds the fixtures
``actor_system``, ``actor_system_factory`` and ``manual_clock``.
"""

from vibe_actors.testing._clock import ManualClock
from vibe_actors.testing._events import EventRecorder, record_events
from vibe_actors.testing._faults import Release, crash, fail_next, hang, release_all
from vibe_actors.testing._probe import (
    ProbeAgent,
    ProbeEntity,
    TestProbe,
    add_probe,
    entity_probe_spec,
    probe_spec,
    probes,
)

__all__ = [
    "EventRecorder",
    "ManualClock",
    "ProbeAgent",
    "ProbeEntity",
    "Release",
    "TestProbe",
    "add_probe",
    "crash",
    "entity_probe_spec",
    "fail_next",
    "hang",
    "probe_spec",
    "probes",
    "record_events",
    "release_all",
]
