"""A thread-safe list of callbacks: the fan-out of the dead-letter and event streams.

Callbacks run in the notifying thread, in subscription order, outside the
lock (a callback may subscribe or unsubscribe). One that raises an Exception
is logged with its ``repr`` and the notifier's context, and kept; the others
still run and ``notify`` does not raise for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["Subscribers"]

T = TypeVar("T")


class _Log(Protocol):
    def exception(self, event: str, **context: Any) -> Any: ...


class Subscribers(Generic[T]):
    """Callbacks of ``T``; a failing one is logged as ``failure_event`` on ``log``."""

    def __init__(self, log: _Log, failure_event: str) -> None:
        self._log = log
        self._failure_event = failure_event
        self._lock = threading.Lock()
        #: One entry per subscription (the same callback may subscribe twice), in order.
        self._callbacks: dict[object, Callable[[T], None]] = {}

    def subscribe(self, callback: Callable[[T], None]) -> Callable[[], None]:
        """Add ``callback``; returns the function that removes this subscription
        (idempotent, from any thread; a notify already under way may still call it)."""
        token = object()
        with self._lock:
            self._callbacks[token] = callback

        def unsubscribe() -> None:
            with self._lock:
                self._callbacks.pop(token, None)

        return unsubscribe

    def notify(self, item: T, **context: Any) -> None:
        """Call every callback subscribed now with ``item``; never raises for one that
        fails (logged with ``subscriber`` and ``context``, kept subscribed)."""
        with self._lock:
            callbacks = tuple(self._callbacks.values())
        for callback in callbacks:
            try:
                callback(item)
            except Exception:  # noqa: BLE001 - logged; other subscribers still run
                self._log.exception(self._failure_event, subscriber=repr(callback), **context)

    def __len__(self) -> int:
        with self._lock:
            return len(self._callbacks)
