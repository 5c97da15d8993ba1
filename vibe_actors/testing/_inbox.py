"""A thread-safe record of arrivals that a test thread waits on (probes, event recorders)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Inbox", "describe", "matches"]


def matches(item: Any, expected: Any, where: Callable[[Any], bool] | None) -> bool:
    """``expected`` is a type (isinstance) or a value (equality); ``where`` must also hold."""
    ok = isinstance(item, expected) if isinstance(expected, type) else item == expected
    return ok and (where is None or bool(where(item)))


def describe(expected: Any, where: Callable[[Any], bool] | None) -> str:
    text = expected.__name__ if isinstance(expected, type) else repr(expected)
    return text if where is None else f"{text} matching {getattr(where, '__name__', where)}"


class Inbox:
    """Items in arrival order and a cursor: items before it were consumed by an expectation."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._items: list[Any] = []
        self._cursor = 0
        self._cond = threading.Condition()

    def put(self, item: Any) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def items(self) -> list[Any]:
        with self._cond:
            return list(self._items)

    def _listing(self) -> str:
        if not self._items:
            return "nothing arrived"
        shown = [
            f"{'  ' if i >= self._cursor else '  (consumed) '}{item!r}"
            for i, item in enumerate(self._items[-20:], start=max(0, len(self._items) - 20))
        ]
        return "received:\n" + "\n".join(shown)

    def next(self, expected: Any, timeout: float, where: Callable[[Any], bool] | None) -> Any:
        """Consume the next item; it must match (AssertionError otherwise, or on timeout)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._cursor < len(self._items), timeout):
                raise AssertionError(
                    f"{self.owner}: expected {describe(expected, where)} within {timeout}s; "
                    f"{self._listing()}"
                )
            item = self._items[self._cursor]
            self._cursor += 1
            if not matches(item, expected, where):
                raise AssertionError(
                    f"{self.owner}: expected {describe(expected, where)}, got {item!r}; "
                    f"{self._listing()}"
                )
            return item

    def find(self, expected: Any, timeout: float, where: Callable[[Any], bool] | None) -> Any:
        """Consume items up to and including the first match (others are skipped)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                while self._cursor < len(self._items):
                    item = self._items[self._cursor]
                    self._cursor += 1
                    if matches(item, expected, where):
                        return item
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{self.owner}: no {describe(expected, where)} within {timeout}s; "
                        f"{self._listing()}"
                    )
                self._cond.wait(remaining)

    def nothing(self, within: float) -> None:
        """AssertionError if an unconsumed item is there or arrives within ``within`` s."""
        with self._cond:
            if self._cond.wait_for(lambda: self._cursor < len(self._items), within):
                item = self._items[self._cursor]
                raise AssertionError(
                    f"{self.owner}: expected no message within {within}s, got {item!r}; "
                    f"{self._listing()}"
                )
