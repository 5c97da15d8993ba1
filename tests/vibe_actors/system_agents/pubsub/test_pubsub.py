"""PubSub: fan-out, errors, slow subscribers, death-watch, restarts, listeners, a model."""

from __future__ import annotations

import sqlite3
import tempfile
import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from vibe_actors import (
    ActorSystem,
    Agent,
    AskError,
    BackoffSpec,
    DeadLetterReason,
    Ping,
    RestartType,
    SupervisorSpec,
    SystemConfig,
    UnavailableError,
    WorkerSpec,
    handler,
)
from vibe_actors.agents.pubsub import (
    Event,
    InvalidTopic,
    NoSuchAgent,
    NotSubscribed,
    Publish,
    Published,
    PubSub,
    PubSubConfig,
    Subscribe,
    Subscribed,
    TopicInfo,
    Topics,
    Unsubscribe,
    Unsubscribed,
    listen,
)

from tests.conftest import wait_until


class Inbox:
    """What the recorders received, by agent; ``gate`` (if set) holds their handler."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.events: dict[str, list[Event]] = {}
        self.changed = threading.Condition()
        self.gate = gate
        self.entered = threading.Event()

    def add(self, name: str, event: Event) -> None:
        with self.changed:
            self.events.setdefault(name, []).append(event)
            self.changed.notify_all()

    def of(self, name: str) -> list[Event]:
        with self.changed:
            return list(self.events.get(name, []))

    def wait(self, name: str, count: int, timeout: float = 5.0) -> list[Event]:
        with self.changed:
            ok = self.changed.wait_for(lambda: len(self.events.get(name, [])) >= count, timeout)
            got = list(self.events.get(name, []))
        assert ok, f"{name} got {len(got)} events, wanted {count}"
        return got


class Recorder(Agent):
    """Subscriber: records every Event in its Inbox (its config)."""

    @handler
    def event(self, msg: Event) -> None:
        inbox: Inbox = self.config
        if inbox.gate is not None:
            inbox.entered.set()
            inbox.gate.wait(10)
        inbox.add(self.name, msg)


def recorder(name: str, inbox: Inbox, **kw: Any) -> WorkerSpec:
    return WorkerSpec(name=name, agent=Recorder, config=inbox, **kw)


def pubsub_spec(**config: Any) -> WorkerSpec:
    config.setdefault("recheck_interval", 0.01)
    return WorkerSpec(name="pubsub", agent=PubSub, config=PubSubConfig(**config))


def tree(*children: WorkerSpec) -> SupervisorSpec:
    """A root that restarts at once and does not give up (tests restart agents often)."""
    no_backoff = BackoffSpec(min=0.0, max=0.0, random_factor=0.0)
    return SupervisorSpec(name="root", children=children, intensity=1000, backoff=no_backoff)


def metric(system: ActorSystem, name: str) -> float:
    return system.registry.get_sample_value(name, {"agent": "pubsub"}) or 0.0


def restart(system: ActorSystem, name: str) -> None:
    before = system.cell(name).incarnation
    system.inject_fault(name, "crash")
    wait_until(
        lambda: system.cell(name).incarnation == before + 1 and system.status(name) == "running",
        5.0,
        f"{name} restarted",
    )


# -- protocol ----------------------------------------------------------------------------


def test_fan_out_in_order_with_a_sequence_per_topic(make_system, tmp_path):
    inbox = Inbox()
    system = make_system(
        [pubsub_spec(), recorder("a", inbox), recorder("b", inbox)], data_dir=str(tmp_path)
    )
    assert system.ask("pubsub", Subscribe(topic="orders", subscriber="a")) == Subscribed(
        topic="orders", subscriber="a"
    )
    system.ask("pubsub", Subscribe(topic="orders", subscriber="b"))
    system.ask("pubsub", Subscribe(topic="orders", subscriber="b"))  # idempotent
    system.ask("pubsub", Subscribe(topic="other", subscriber="b"))
    data = [{"n": 1, "items": [1, 2.5, "x", None, True]}, "two", 3]
    replies = [system.ask("pubsub", Publish(topic="orders", data=d)) for d in data]
    assert [(r.subscribers, r.seq, r.dropped) for r in replies] == [(2, 1, 0), (2, 2, 0), (2, 3, 0)]
    other = system.ask("pubsub", Publish(topic="other", data=None))
    assert (other.seq, other.subscribers) == (1, 1)
    for name in ("a", "b"):
        events = [e for e in inbox.wait(name, 3) if e.topic == "orders"]
        assert [(e.seq, e.data) for e in events] == [(1, data[0]), (2, "two"), (3, 3)]
        assert all(e.published_at > 0 for e in events)
    assert system.ask("pubsub", Publish(topic="nobody")) == Published(
        topic="nobody", subscribers=0, seq=1
    )
    assert system.ask("pubsub", Topics()).topics == [
        TopicInfo(topic="nobody", subscribers=0, listeners=0, seq=1),
        TopicInfo(topic="orders", subscribers=2, listeners=0, seq=3),
        TopicInfo(topic="other", subscribers=1, listeners=0, seq=1),
    ]
    assert metric(system, "vibe_pubsub_published_total") == 5
    wait_until(lambda: metric(system, "vibe_pubsub_delivered_total") == 7, 5.0, "delivered")
    assert metric(system, "vibe_pubsub_subscribers") == 3


def test_errors_are_typed(make_system, tmp_path):
    inbox = Inbox()
    # Built in process (not decoded: an empty topic would not decode), checked by the agent.
    system = make_system(
        [pubsub_spec(), recorder("a", inbox)], data_dir=str(tmp_path), serialize_messages=False
    )
    ref = system.ref("pubsub")
    for message, kind, status in [
        (Subscribe(topic="", subscriber="a"), InvalidTopic, 422),
        (Subscribe(topic="t", subscriber=""), InvalidTopic, 422),
        (Subscribe(topic="t", subscriber="ghost"), NoSuchAgent, 404),
        (Unsubscribe(topic="t", subscriber="a"), NotSubscribed, 404),
        (Publish(topic=""), InvalidTopic, 422),
    ]:
        reply = ref.ask_future(message).wait()
        assert isinstance(reply, kind) and reply.http_status == status, message
        assert reply.detail
    with pytest.raises(AskError):
        system.ask("pubsub", Subscribe(topic="t", subscriber="ghost"))


def test_unsubscribe_stops_delivery(make_system, tmp_path):
    inbox = Inbox()
    system = make_system([pubsub_spec(), recorder("a", inbox)], data_dir=str(tmp_path))
    system.ask("pubsub", Subscribe(topic="t", subscriber="a"))
    system.ask("pubsub", Publish(topic="t", data=1))
    inbox.wait("a", 1)
    assert system.ask("pubsub", Unsubscribe(topic="t", subscriber="a")) == Unsubscribed(
        topic="t", subscriber="a"
    )
    assert system.ask("pubsub", Publish(topic="t", data=2)).subscribers == 0
    system.ask("a", Ping())  # anything sent to "a" before this has been handled
    assert [e.data for e in inbox.of("a")] == [1]


# -- a slow subscriber -----------------------------------------------------------------------


@pytest.fixture
def gate():
    gate = threading.Event()
    yield gate
    gate.set()  # never leave a blocked handler behind


def test_a_blocked_subscriber_never_slows_the_publisher(make_system, tmp_path, gate):
    buffer, count = 100, 400
    slow_inbox, fast_inbox = Inbox(gate=gate), Inbox()
    system = make_system(
        [pubsub_spec(buffer=buffer), recorder("slow", slow_inbox), recorder("fast", fast_inbox)],
        data_dir=str(tmp_path),
    )
    drops: list[Any] = []
    system.dead_letters.subscribe(
        lambda letter: drops.append(letter) if letter.recipient == "slow" else None
    )
    for name in ("slow", "fast"):
        system.ask("pubsub", Subscribe(topic="t", subscriber=name))
    started = time.perf_counter()
    replies = [system.ask("pubsub", Publish(topic="t", data=n)) for n in range(count)]
    blocked_rate = count / (time.perf_counter() - started)
    assert slow_inbox.entered.is_set()
    # The slow one holds `buffer` events (one in its handler, the rest queued): the rest drop.
    assert [r.dropped for r in replies] == [0] * buffer + [1] * (count - buffer)
    assert [r.subscribers for r in replies] == [2] * buffer + [1] * (count - buffer)
    assert [e.data for e in fast_inbox.wait("fast", count)] == list(range(count))
    assert metric(system, "vibe_pubsub_dropped_total") == count - buffer
    assert {d.reason for d in drops} == {DeadLetterReason.BUFFER_FULL}
    assert [d.message.seq for d in drops] == list(range(buffer + 1, count + 1))
    # Released, the slow one gets exactly what it had outstanding, then has room again.
    gate.set()
    assert [e.seq for e in slow_inbox.wait("slow", buffer)] == list(range(1, buffer + 1))
    wait_until(lambda: metric(system, "vibe_pubsub_delivered_total") == count + buffer, 5.0, "acks")
    assert system.ask("pubsub", Publish(topic="t", data="again")).dropped == 0
    assert slow_inbox.wait("slow", buffer + 1)[-1].data == "again"
    # The same publishes with no slow subscriber at all, for comparison.
    system.ask("pubsub", Unsubscribe(topic="t", subscriber="slow"))
    started = time.perf_counter()
    for n in range(count):
        system.ask("pubsub", Publish(topic="t", data=n))
    free_rate = count / (time.perf_counter() - started)
    print(
        f"publish rate: {blocked_rate:.0f}/s with a blocked subscriber, {free_rate:.0f}/s without"
    )
    assert blocked_rate > free_rate / 4  # same order: the blocked one costs a counter check


def test_failed_deliveries_free_the_buffer(make_system, tmp_path):
    class Deaf(Agent):  # no handler for Event: every delivery is "unhandled"
        pass

    system = make_system(
        [pubsub_spec(buffer=1), WorkerSpec(name="deaf", agent=Deaf)], data_dir=str(tmp_path)
    )
    system.ask("pubsub", Subscribe(topic="t", subscriber="deaf"))
    for _ in range(3):
        assert system.ask("pubsub", Publish(topic="t")).dropped == 0
        system.ask("deaf", Ping())
        system.ask("pubsub", Topics())  # the pubsub has handled the deaf one's answer
    assert metric(system, "vibe_pubsub_delivered_total") == 0
    assert system.dead_letters.counts()["unhandled"] == 3


# -- death and restarts ---------------------------------------------------------------------


def test_a_dead_subscriber_is_removed_but_a_restarted_one_is_kept(make_system, tmp_path):
    inbox = Inbox()
    system = make_system(
        tree(
            pubsub_spec(),
            recorder("stays", inbox),
            recorder("dies", inbox, restart=RestartType.TEMPORARY),
        ),
        data_dir=str(tmp_path),
    )
    for name in ("stays", "dies"):
        system.ask("pubsub", Subscribe(topic="t", subscriber=name))
    restart(system, "stays")
    system.inject_fault("dies", "crash")
    wait_until(
        lambda: system.ask("pubsub", Topics()).topics[0].subscribers == 1, 5.0, "dead one removed"
    )
    assert system.ask("pubsub", Publish(topic="t", data="x")).subscribers == 1
    assert [e.data for e in inbox.wait("stays", 1)] == ["x"]
    rows = sqlite3.connect(tmp_path / "pubsub.db").execute("SELECT * FROM subscriptions")
    assert list(rows) == [("t", "stays")]


def test_subscriptions_and_sequences_survive_a_restart(make_system, tmp_path):
    inbox = Inbox()
    system = make_system([pubsub_spec(seq_block=10), recorder("a", inbox)], data_dir=str(tmp_path))
    system.ask("pubsub", Subscribe(topic="t", subscriber="a"))
    assert [system.ask("pubsub", Publish(topic="t")).seq for _ in range(3)] == [1, 2, 3]
    restart(system, "pubsub")
    after = system.ask("pubsub", Publish(topic="t", data="after"))
    assert (after.subscribers, after.seq) == (1, 11)  # resumes above the reservation
    assert inbox.wait("a", 4)[-1] == Event(
        topic="t", data="after", seq=11, published_at=inbox.of("a")[-1].published_at
    )


def test_without_persistence_a_restart_forgets(make_system, tmp_path):
    inbox = Inbox()
    system = make_system([pubsub_spec(persist=False), recorder("a", inbox)], data_dir=str(tmp_path))
    system.ask("pubsub", Subscribe(topic="t", subscriber="a"))
    system.ask("pubsub", Publish(topic="t"))
    restart(system, "pubsub")
    assert system.ask("pubsub", Publish(topic="t")) == Published(topic="t", subscribers=0, seq=1)
    assert not (tmp_path / "pubsub.db").exists()


def test_a_new_process_waits_for_subscribers_that_start_later(make_system, tmp_path):
    inbox = Inbox()
    first = make_system(
        [pubsub_spec(), recorder("a", inbox), recorder("gone", inbox)], data_dir=str(tmp_path)
    )
    for name in ("a", "gone"):
        first.ask("pubsub", Subscribe(topic="t", subscriber=name))
    first.shutdown()
    # The next process lists pubsub first (its subscribers do not exist yet) and drops "gone".
    with capture_logs() as logs:
        second = make_system([pubsub_spec(), recorder("a", inbox)], data_dir=str(tmp_path))
        wait_until(
            lambda: [t.subscribers for t in second.ask("pubsub", Topics()).topics] == [1], 5.0, "a"
        )
        wait_until(
            lambda: any(e["event"] == "pubsub_subscriber_skipped" for e in logs), 5.0, "skip"
        )
    assert second.ask("pubsub", Publish(topic="t", data="hi")).subscribers == 1
    assert inbox.wait("a", 1)[0].data == "hi"
    skipped = [e for e in logs if e["event"] == "pubsub_subscriber_skipped"]
    assert [(e["topic"], e["subscriber"]) for e in skipped] == [("t", "gone")]


def test_an_unusable_database_degrades_the_agent(make_system, tmp_path):
    (tmp_path / "pubsub.db").write_bytes(b"this is not a database" * 100)
    system = make_system([pubsub_spec()], data_dir=str(tmp_path))
    assert system.ask("pubsub", Ping()).agent == "pubsub"
    with pytest.raises(UnavailableError, match="pubsub.db"):
        system.ask("pubsub", Publish(topic="t"))


# -- listeners ------------------------------------------------------------------------------


def test_a_listener_gets_events_until_closed(make_system, tmp_path):
    system = make_system([pubsub_spec()], data_dir=str(tmp_path))
    got: list[tuple[Event, str]] = []
    listener = listen(system, "t", lambda e: got.append((e, threading.current_thread().name)))
    reply = system.ask("pubsub", Publish(topic="t", data={"k": 1}))  # right after listen
    assert reply.subscribers == 1
    ((event, thread),) = got
    assert (event.topic, event.data, event.seq) == ("t", {"k": 1}, 1)
    assert thread.startswith("vibe:pubsub#")
    assert system.ask("pubsub", Topics()).topics == [
        TopicInfo(topic="t", subscribers=0, listeners=1, seq=1)
    ]
    listener.close()
    listener.close()  # idempotent
    assert system.ask("pubsub", Publish(topic="t")).subscribers == 0
    assert len(got) == 1
    assert system.ask("pubsub", Topics()).topics[0].listeners == 0


def test_a_listener_survives_a_restart_and_a_failing_one_is_logged(make_system, tmp_path):
    system = make_system([pubsub_spec(persist=False)], data_dir=str(tmp_path))
    got: list[int] = []

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    with listen(system, "t", lambda e: got.append(e.seq)), listen(system, "t", broken):
        restart(system, "pubsub")
        with capture_logs() as logs:
            assert system.ask("pubsub", Publish(topic="t")).subscribers == 1
        assert got == [1]
        assert [e["event"] for e in logs if e["log_level"] == "error"] == ["pubsub_listener_failed"]
    assert system.ask("pubsub", Publish(topic="t")).subscribers == 0


def test_listen_to_an_absent_pubsub_raises_and_leaves_nothing(make_system, tmp_path):
    system = make_system([pubsub_spec()], data_dir=str(tmp_path))
    with pytest.raises(UnavailableError):
        listen(system, "t", lambda e: None, pubsub="nowhere")
    with pytest.raises(ValueError, match="topic"):
        listen(system, "", lambda e: None)
    restart(system, "pubsub")  # a new incarnation picks up registered listeners: none
    assert system.ask("pubsub", Topics()).topics == []


# -- a model of who receives what ----------------------------------------------------------

NAMES = ["a", "b", "c"]
TOPICS = ["x", "y"]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("sub"), st.sampled_from(TOPICS), st.sampled_from(NAMES)),
        st.tuples(st.just("unsub"), st.sampled_from(TOPICS), st.sampled_from(NAMES)),
        st.tuples(st.just("pub"), st.sampled_from(TOPICS), st.just("")),
        st.tuples(st.just("restart"), st.just(""), st.just("")),
    ),
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_property_subscribers_receive_exactly_what_the_model_says(operations):
    inbox = Inbox()
    with tempfile.TemporaryDirectory() as data_dir:
        specs = tree(pubsub_spec(), *[recorder(n, inbox) for n in NAMES])
        config = SystemConfig(serialize_messages=True, data_dir=data_dir)
        with ActorSystem(specs, config) as system:
            subs: dict[str, set[str]] = {t: set() for t in TOPICS}
            seqs = dict.fromkeys(TOPICS, 0)
            expected: dict[str, list[tuple[str, int]]] = {n: [] for n in NAMES}
            for op, topic, name in operations:
                if op == "sub":
                    system.ask("pubsub", Subscribe(topic=topic, subscriber=name))
                    subs[topic].add(name)
                elif op == "unsub":
                    reply = system.ref("pubsub").ask_future(
                        Unsubscribe(topic=topic, subscriber=name)
                    )
                    assert isinstance(reply.wait(), NotSubscribed) == (name not in subs[topic])
                    subs[topic].discard(name)
                elif op == "pub":
                    seqs[topic] += 1
                    reply = system.ask("pubsub", Publish(topic=topic, data=seqs[topic]))
                    assert reply.subscribers == len(subs[topic])
                    for n in subs[topic]:
                        expected[n].append((topic, seqs[topic]))
                else:
                    restart(system, "pubsub")
            for name in NAMES:
                system.ask(name, Ping())
                got = inbox.wait(name, len(expected[name]))
                assert [(e.topic, e.data) for e in got] == expected[name]
                # The sequence is increasing per topic (it may skip after a restart).
                for topic in TOPICS:
                    seen = [e.seq for e in got if e.topic == topic]
                    assert seen == sorted(set(seen))


def test_topics_and_subscribers_are_capped(make_system, tmp_path):
    import msgspec

    from vibe_actors import encode_json
    from vibe_actors.agents.pubsub import MAX_TOPIC_LENGTH, TooManyTopics

    inbox = Inbox()
    spec = pubsub_spec(max_topics=2, max_subscribers=1)
    system = make_system([spec, recorder("a", inbox), recorder("b", inbox)], data_dir=str(tmp_path))
    ref = system.ref("pubsub")
    assert ref.ask(Publish(topic="one")).seq == 1
    assert ref.ask(Subscribe(topic="two", subscriber="a")).topic == "two"
    over = ref.ask_future(Publish(topic="three")).wait()
    assert isinstance(over, TooManyTopics) and over.http_status == 429 and over.limit == 2
    full = ref.ask_future(Subscribe(topic="two", subscriber="b")).wait()
    assert isinstance(full, TooManyTopics) and "'two' has 1 subscribers" in full.detail
    assert ref.ask(Publish(topic="one")).seq == 2  # existing topics keep working
    sample = system.registry.get_sample_value
    assert sample("vibe_pubsub_topics", {"agent": "pubsub"}) == 2
    assert sample("vibe_pubsub_refused_total", {"agent": "pubsub", "limit": "max_topics"}) == 1
    long_name = encode_json({"type": "pubsub.Publish", "topic": "x" * (MAX_TOPIC_LENGTH + 1)})
    with pytest.raises(msgspec.ValidationError, match="length <= 256"):
        msgspec.json.decode(long_name, type=Publish)
