"""In-process pubsub listeners: callbacks for code that is not an agent.

The registry of :func:`listen` callbacks, held per system in this module (so
it outlives an incarnation of the pubsub agent) and referenced by the agent
by listener id. The agent learns of a listener through :class:`Listen` and
forgets it on :class:`Unlisten`; both are plain Structs, outside the public
protocol (not forgeable over HTTP). Nothing here is persisted: listeners
belong to the process. Re-exported by :mod:`vibe_actors.agents.pubsub`.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec

from vibe_actors import ActorSystem

if TYPE_CHECKING:
    from vibe_actors.agents.pubsub.protocol import Event

__all__ = ["Callback", "Listen", "Listener", "Unlisten", "callback", "callbacks", "listen"]


class Listen(msgspec.Struct, frozen=True):
    listener: str


class Unlisten(msgspec.Struct, frozen=True):
    listener: str


@dataclass(frozen=True, slots=True)
class Callback:
    pubsub: str
    topic: str
    callback: Callable[[Event], None]


_listeners_lock = threading.Lock()
_listeners: weakref.WeakKeyDictionary[ActorSystem, dict[str, Callback]] = (
    weakref.WeakKeyDictionary()
)
_ids = itertools.count(1)


def callbacks(system: ActorSystem) -> dict[str, Callback]:
    with _listeners_lock:
        return _listeners.setdefault(system, {})


def callback(system: ActorSystem, listener: str) -> Callback | None:
    with _listeners_lock:
        return _listeners.get(system, {}).get(listener)


@dataclass(eq=False)
class Listener:
    """A registered callback (see :func:`listen`); :meth:`close` removes it."""

    system: ActorSystem
    pubsub: str
    topic: str
    id: str
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        """Stop the callbacks (none starts after this returns); idempotent, any thread."""
        with _listeners_lock:
            if self._closed:
                return
            self._closed = True
            _listeners.get(self.system, {}).pop(self.id, None)
        self.system.ref(self.pubsub).tell(Unlisten(self.id))

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def listen(
    system: ActorSystem,
    topic: str,
    callback: Callable[[Event], None],
    *,
    pubsub: str = "pubsub",
    timeout: float | None = None,
) -> Listener:
    """Call ``callback(event)`` for every event published on ``topic`` from now on.

    Returns once the pubsub agent ``pubsub`` has taken the listener: an event
    published after ``listen`` returns reaches it. ``callback`` runs in the
    pubsub agent's thread and must not block (hand the event off, e.g.
    ``loop.call_soon_threadsafe``; keep your own bound and drop count); an
    exception from it is logged (``pubsub_listener_failed``) and the listener
    kept. Listeners are not persisted; they survive a restart of the agent.

    Raises :class:`vibe_actors.AskError` (``UnavailableError`` if there is no
    agent ``pubsub``, ``DeadlineExceededError`` past ``timeout``); nothing is
    left registered then.
    """
    if not topic:
        raise ValueError("the topic must not be empty")
    handle = Listener(system, pubsub, topic, f"listener:{next(_ids)}")
    with _listeners_lock:
        _listeners.setdefault(system, {})[handle.id] = Callback(pubsub, topic, callback)
    try:
        system.ref(pubsub).ask(Listen(handle.id), timeout=timeout)
    except BaseException:
        handle.close()
        raise
    return handle
