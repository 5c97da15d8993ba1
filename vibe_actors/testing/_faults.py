"""Fault injection for tests: crash an agent, fail its next handler, hang it until released.

Every fault travels as a system message: it takes its turn after the messages
already in the agent's mailbox, runs in the agent's own thread, and waits in
the mailbox while the agent restarts (the mailbox outlives incarnations). A
crash is an ordinary crash: ``on_failure`` runs and the supervisor decides.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from vibe_actors._agent import Agent
from vibe_actors._errors import InjectedCrash
from vibe_actors._messages import Message, Ping
from vibe_actors._signals import InjectedFault
from vibe_actors._system import ActorSystem

__all__ = ["Release", "crash", "fail_next", "hang", "release_all"]

_lock = threading.Lock()
_hangs: weakref.WeakKeyDictionary[ActorSystem, list[Release]] = weakref.WeakKeyDictionary()


def _error(name: str, error: BaseException | type[BaseException] | None) -> BaseException:
    if error is None:
        return InjectedCrash(f"injected crash in {name}")
    return error() if isinstance(error, type) else error


def crash(
    system: ActorSystem, name: str, error: BaseException | type[BaseException] | None = None
) -> None:
    """Crash ``name`` when it reaches this point of its mailbox, raising ``error``.

    ``error`` is an exception (instance or class; default :class:`InjectedCrash`).
    No message is lost: the ones queued after it go to the next incarnation.
    Raises :class:`UnknownAgent`. For a pool, one worker is picked.
    """
    exc = _error(name, error)

    def action(agent: Agent) -> None:
        raise exc

    system._inject(name, InjectedFault("crash", action=action))  # noqa: SLF001 - the test kit


def fail_next(
    system: ActorSystem,
    name: str,
    error: BaseException | type[BaseException] | None = None,
    *,
    on: type | None = None,
) -> None:
    """Make the handler of the next message ``name`` handles raise ``error``.

    "Next" counts from the messages queued after this call (those already
    queued are handled normally); with ``on``, the next message of that type
    (others are handled normally meanwhile). The failing message is consumed:
    its asker gets :class:`AgentCrashed`, ``on_failure`` runs, the supervisor
    decides. :class:`Ping` never fails. Raises :class:`UnknownAgent`, and
    ValueError if ``name``'s agent has no handler for ``on``.
    """
    agent_class = system.agent_class(name)
    if (
        on is not None
        and on not in agent_class.handler_table()
        and agent_class.unhandled_hook() is None
    ):
        raise ValueError(f"{agent_class.__name__} has no handler for {on.__name__}")
    exc = _error(name, error)

    def failing(agent: Agent, message: Any) -> Any:
        raise exc

    def arm(agent: Agent) -> None:
        # Only this incarnation's own table is touched: the crash ends it, and the
        # next incarnation starts from the class's handlers again.
        host = agent._host  # noqa: SLF001 - the test kit swaps the incarnation's handlers
        table = host.handlers
        if on is not None and on in table:
            table[on] = failing
            return
        if on is None:
            for message_type in list(table):
                if message_type is not Ping and issubclass(message_type, Message):
                    table[message_type] = failing
        if host.fallback is not None:
            fallback = host.fallback
            host.fallback = failing if on is None else _only(on, failing, fallback)

    system._inject(name, InjectedFault("crash", action=arm))  # noqa: SLF001 - the test kit


def _only(on: type, failing: Any, fallback: Any) -> Any:
    def pick(agent: Agent, message: Any) -> Any:
        return (failing if type(message) is on else fallback)(agent, message)

    return pick


class Release:
    """A hang injected by :func:`hang`: the agent's thread waits until :meth:`release`.

    Use it as a context manager to release on exit. An unreleased hang blocks
    the agent's shutdown (it is abandoned after its shutdown timeout); the
    pytest plugin's systems release every hang before stopping.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._hung = threading.Event()
        self._released = threading.Event()

    def __repr__(self) -> str:
        state = "released" if self.released else "hung" if self.hung else "queued"
        return f"Release({self.name!r}, {state})"

    @property
    def hung(self) -> bool:
        """Whether the agent has reached the hang (its thread is blocked now or was)."""
        return self._hung.is_set()

    @property
    def released(self) -> bool:
        return self._released.is_set()

    def wait_hung(self, timeout: float = 1.0) -> None:
        """Block until the agent is hung; AssertionError after ``timeout`` real seconds."""
        if not self._hung.wait(timeout):
            raise AssertionError(f"{self.name!r} did not reach the injected hang within {timeout}s")

    def release(self) -> None:
        """Let the agent go on with its mailbox; idempotent, from any thread."""
        self._released.set()

    def __enter__(self) -> Release:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def _block(self, agent: Agent) -> None:
        self._hung.set()
        self._released.wait()


def hang(system: ActorSystem, name: str) -> Release:
    """Block ``name``'s thread when it reaches this point of its mailbox, until released.

    While hung the agent handles nothing (messages queue up; asks time out);
    ``release()`` lets it continue with the next message. Raises
    :class:`UnknownAgent`. For a pool, one worker is picked.
    """
    release = Release(name)
    with _lock:
        _hangs.setdefault(system, []).append(release)
    system._inject(name, InjectedFault("hang", action=release._block))  # noqa: SLF001 - the test kit
    return release


def release_all(system: ActorSystem) -> int:
    """Release every hang injected into ``system``; returns how many were still held."""
    with _lock:
        pending = _hangs.pop(system, [])
    held = sum(1 for r in pending if not r.released)
    for release in pending:
        release.release()
    return held
