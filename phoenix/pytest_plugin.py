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
that does not validate fails the test with Phoenix's problems: file
``<inline wiring>``, each line and column those of the text as given (line 1
is its first line, blank or not, before any dedent or wrapping), so a problem
points at the snippet in the test, never at the wrapper.
"""

from __future__ import annotations

import os
import textwrap
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import pytest

from phoenix import WiringError, build, load_text
from vibe_actors import ActorSystem
from vibe_actors.testing import ManualClock, release_all

__all__ = ["actor_system", "actor_system_factory", "manual_clock", "system_from_wiring"]

_FILE = "<inline wiring>"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "wiring(text): the inline wiring.yaml the actor_system fixture builds"
    )


_WRAPPER = "version: 1\nroot:\n  name: root\n  children:\n"
_WRAPPER_LINES = _WRAPPER.count("\n")
_WRAPPER_INDENT = 4


class _Snippet(NamedTuple):
    """The file loaded for a wiring text, and how its positions map back to the text."""

    text: str
    skipped: int  # blank lines of the text before its first line loaded
    dedent: int  # columns of indentation removed from every line
    wrapped: bool  # a list of children, loaded inside _WRAPPER

    def position(self, line: int, column: int) -> tuple[int, int]:
        """Where ``line:column`` of :attr:`text` is in the text as given."""
        if self.wrapped:
            if line <= _WRAPPER_LINES:  # the wrapper itself: the snippet's first line
                return self.skipped + 1, self.dedent + 1
            line -= _WRAPPER_LINES
            column = max(column - _WRAPPER_INDENT, 1)
        return line + self.skipped, column + self.dedent


def _full_text(wiring: str) -> _Snippet:
    dedented = textwrap.dedent(wiring)
    skipped = len(dedented) - len(dedented.lstrip("\n"))
    margins = [
        line[: len(line) - len(line.lstrip())] for line in wiring.splitlines() if line.strip()
    ]
    dedent = len(os.path.commonprefix(margins)) if margins else 0  # what dedent() removed
    text = dedented.strip("\n")
    if any(line.startswith("root:") for line in text.splitlines()):
        return _Snippet(text + "\n", skipped, dedent, wrapped=False)
    wrapped = _WRAPPER + textwrap.indent(text, " " * _WRAPPER_INDENT) + "\n"
    return _Snippet(wrapped, skipped, dedent, wrapped=True)


def _in_snippet(error: WiringError, snippet: _Snippet) -> WiringError:
    """``error`` with each problem's position in the text as given."""
    problems = []
    for problem in error.problems:
        line, column = snippet.position(problem.line, problem.column)
        problems.append(msgspec.structs.replace(problem, line=line, column=column))
    return WiringError(problems)


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
    snippet = _full_text(wiring)
    try:
        root, config = build(load_text(snippet.text, _FILE, environ))
    except WiringError as exc:
        raise _in_snippet(exc, snippet) from None
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
