"""Shared fixtures: systems that are always shut down and checked for leftover threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog

from vibe_actors import ActorSystem, SupervisorSpec, SystemConfig, WorkerSpec

from tests.vibe_actors.agents import Journal

pytest_plugins = ["tests.postgres"]


def pytest_configure(config: pytest.Config) -> None:
    # The test run is an edge, like the CLI: configure logging here, once.
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["event", "level"]),
        ],
        cache_logger_on_first_use=False,
    )


def _actor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("vibe:") and t.is_alive()]


@pytest.fixture
def journal() -> Journal:
    journal = Journal()
    yield journal
    journal.gate.set()  # never leave a blocked handler behind


@pytest.fixture
def make_system() -> Iterator[Callable[..., ActorSystem]]:
    """Build and start a system (serialize_messages on); shut down after the test.

    After shutdown no actor thread of the test's systems may be alive, apart
    from those the test abandoned on purpose (``leak_ok=True``).
    """
    systems: list[tuple[ActorSystem, bool]] = []
    before = set(_actor_threads())

    def factory(
        root: SupervisorSpec | list[Any],
        *,
        start: bool = True,
        leak_ok: bool = False,
        **config: Any,
    ) -> ActorSystem:
        config.setdefault("serialize_messages", True)
        config.setdefault("ask_timeout", 5.0)
        system = ActorSystem(root, SystemConfig(**config))
        systems.append((system, leak_ok))
        if start:
            system.start()
        return system

    yield factory
    leaks_allowed = False
    for system, leak_ok in systems:
        leaks_allowed |= leak_ok
        system.shutdown(timeout=5.0)
    if not leaks_allowed:
        for thread in set(_actor_threads()) - before:
            thread.join(2.0)  # it has signalled its stop; let it leave its last frame
        leftover = set(_actor_threads()) - before
        assert not leftover, (
            f"actor threads alive after shutdown: {sorted(t.name for t in leftover)}"
        )


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` s (for state no event announces)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        pause.wait(0.001)


def worker(name: str, journal: Journal | None = None, **kwargs: Any) -> WorkerSpec:
    from tests.vibe_actors.agents import Worker

    return WorkerSpec(name=name, agent=Worker, config=journal, **kwargs)


@pytest.fixture
def spans() -> Iterator[Any]:
    """Tracing on for the test, into an in-memory exporter (returned); off afterwards."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from vibe_actors import tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    exporter.provider = provider  # for the tests to make spans of their own
    try:
        yield exporter
    finally:
        tracing.disable()
        provider.shutdown()
