"""The subscriber list behind the dead-letter and event streams."""

from __future__ import annotations

import threading

import structlog
from structlog.testing import capture_logs

from vibe_actors._subscribers import Subscribers


def make() -> Subscribers[int]:
    return Subscribers(structlog.get_logger("test.subscribers"), "test_subscriber_failed")


def test_every_subscriber_is_called_in_order():
    subscribers, seen = make(), []
    subscribers.subscribe(lambda n: seen.append(("a", n)))
    subscribers.subscribe(lambda n: seen.append(("b", n)))
    subscribers.notify(1)
    assert seen == [("a", 1), ("b", 1)]
    assert len(subscribers) == 2


def test_a_failing_subscriber_is_logged_with_context_and_kept():
    subscribers, seen = make(), []

    def failing(n: int) -> None:
        raise ValueError(f"bug {n}")

    subscribers.subscribe(failing)
    subscribers.subscribe(seen.append)
    with capture_logs() as logs:
        subscribers.notify(1, event_type="Thing")
        subscribers.notify(2, event_type="Thing")
    assert seen == [1, 2]  # the one after it still ran, both times
    failures = [entry for entry in logs if entry["event"] == "test_subscriber_failed"]
    assert len(failures) == 2
    assert failures[0]["subscriber"] == repr(failing) and failures[0]["event_type"] == "Thing"
    assert failures[0]["exc_info"] is True and failures[0]["log_level"] == "error"
    assert len(subscribers) == 2  # kept


def test_unsubscribe_removes_its_own_subscription_once():
    subscribers, seen = make(), []
    first = subscribers.subscribe(seen.append)
    subscribers.subscribe(seen.append)  # the same callback, twice: two subscriptions
    first()
    first()  # idempotent: the other subscription stays
    subscribers.notify(1)
    assert seen == [1] and len(subscribers) == 1


def test_a_subscriber_may_unsubscribe_while_being_notified():
    subscribers, seen = make(), []
    unsubscribe = None

    def once(n: int) -> None:
        seen.append(n)
        assert unsubscribe is not None
        unsubscribe()

    unsubscribe = subscribers.subscribe(once)
    subscribers.notify(1)
    subscribers.notify(2)
    assert seen == [1] and len(subscribers) == 0


def test_concurrent_subscribes_notifies_and_unsubscribes_lose_nothing():
    subscribers = make()
    counts = [0] * 8
    lock = threading.Lock()
    stop = threading.Event()

    def notifier() -> None:
        while not stop.is_set():
            subscribers.notify(1)

    def churn(index: int) -> None:
        def count(n: int) -> None:
            with lock:
                counts[index] += n

        for _ in range(200):
            subscribers.subscribe(count)()

    threads = [threading.Thread(target=notifier) for _ in range(2)]
    threads += [threading.Thread(target=churn, args=(i,)) for i in range(len(counts))]
    for thread in threads:
        thread.start()
    for thread in threads[2:]:
        thread.join(10)
    stop.set()
    for thread in threads[:2]:
        thread.join(10)
    assert len(subscribers) == 0  # every subscription removed, none lost or left behind
