"""pytest plugin of vibe-actors (entry point ``pytest11: vibe_actors``): running systems for tests.

Fixtures:

* ``actor_system_factory`` — ``factory(wiring, *, clock=None, **overrides)``
  builds and starts an :class:`ActorSystem` from an inline wiring.yaml text
  through Phoenix. ``serialize_messages`` is on and ``data_dir`` is a fresh
  ``tmp_path`` directory unless overridden. After the test every hang injected
  with :func:`vibe_actors.testing.hang` is released, every system is shut
  down, and the test errors if an actor thread it started is still alive.
* ``actor_system`` — one system from the ``@pytest.mark.wiring("...")`` marker
  (or an overridden ``vibe_wiring`` fixture); it uses the ``manual_clock``
  fixture when the test asks for that too.
* ``manual_clock`` — a :class:`vibe_actors.testing.ManualClock`.

A wiring text is a whole file (with ``root:``) or just the root's children (a
YAML list), which are wrapped in a one_for_one root named ``root``. A text
that does not validate fails the test with Phoenix's problems (file
``<inline wiring>``, lines of the text as given for a whole file).
"""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
import pytest

from phoenix import build, load_text
from vibe_actors import ActorSystem
from vibe_actors.testing import ManualClock, release_all

__all__ = ["actor_system", "actor_system_factory", "manual_clock", "system_from_wiring"]

_FILE = "<inline wiring>"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "wiring(text): the inline wiring.yaml the actor_system fixture builds"
    )


def _full_text(wiring: str) -> str:
    text = textwrap.dedent(wiring).strip("\n")
    if any(line.startswith("root:") for line in text.splitlines()):
        return text + "\n"
    return "version: 1\nroot:\n  name: root\n  children:\n" + textwrap.indent(text, "    ") + "\n"


def system_from_wiring(
    wiring: str,
    *,
    clock: Callable[[], float] | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> ActorSystem:
    """An ActorSystem (not started) from a wiring text; ``overrides`` replace SystemConfig fields.

    Raises :class:`phoenix.WiringError` listing every problem of the text.
    """
    root, config = build(load_text(_full_text(wiring), _FILE, environ))
    if overrides:
        config = msgspec.structs.replace(config, **overrides)
    if clock is None:
        return ActorSystem(root, config)
    return ActorSystem(root, config, clock=clock)


def _actor_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("vibe:") and t.is_alive()}


@pytest.fixture
def manual_clock() -> ManualClock:
    """A :class:`ManualClock` at t=1000 (give it to a system as ``clock=``)."""
    return ManualClock()


@pytest.fixture
def actor_system_factory(tmp_path: Path) -> Iterator[Callable[..., ActorSystem]]:
    """``factory(wiring, *, clock=None, start=True, leak_ok=False, environ=None, **overrides)``.

    Builds (and starts) a system; see the module docstring for the teardown checks.
    ``leak_ok=True`` skips the thread check (for a test that abandons a thread on purpose).
    """
    systems: list[tuple[ActorSystem, bool]] = []
    before = _actor_threads()

    def factory(
        wiring: str,
        *,
        clock: Callable[[], float] | None = None,
        start: bool = True,
        leak_ok: bool = False,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> ActorSystem:
        overrides.setdefault("serialize_messages", True)
        overrides.setdefault("data_dir", str(tmp_path / f"data{len(systems)}"))
        system = system_from_wiring(wiring, clock=clock, environ=environ, **overrides)
        systems.append((system, leak_ok))
        if start:
            system.start()
        return system

    yield factory
    for system, _ in systems:
        release_all(system)
        system.shutdown(timeout=5.0)
    if any(leak_ok for _, leak_ok in systems):
        return
    for thread in _actor_threads() - before:
        thread.join(2.0)  # it has signalled its stop; let it leave its last frame
    leftover = _actor_threads() - before
    assert not leftover, f"actor threads alive after shutdown: {sorted(t.name for t in leftover)}"


@pytest.fixture
def vibe_wiring(request: pytest.FixtureRequest) -> str:
    """The wiring text of ``actor_system``: the test's ``@pytest.mark.wiring(text)``."""
    marker = request.node.get_closest_marker("wiring")
    if marker is None or not marker.args:
        raise pytest.UsageError(
            "actor_system needs @pytest.mark.wiring('<wiring.yaml text>') "
            "or a vibe_wiring fixture returning the text"
        )
    return str(marker.args[0])


@pytest.fixture
def actor_system(
    actor_system_factory: Callable[..., ActorSystem],
    vibe_wiring: str,
    request: pytest.FixtureRequest,
) -> ActorSystem:
    """A running system built from ``vibe_wiring`` (marker ``wiring``), checked after the test."""
    clock = None
    if "manual_clock" in request.fixturenames:
        clock = request.getfixturevalue("manual_clock")
    return actor_system_factory(vibe_wiring, clock=clock)
