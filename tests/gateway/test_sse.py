"""GET /v1/topics/{topic}/events: pubsub topics as Server-Sent Events."""

from __future__ import annotations

import json

import pytest

from vibe_actors import SupervisorSpec, WorkerSpec
from vibe_actors.agents.pubsub import Publish, PubSub

from tests.conftest import wait_until, worker


def tree():
    return SupervisorSpec(
        name="root", children=(WorkerSpec(name="pubsub", agent=PubSub), worker("w"))
    )


def iter_events(lines):
    """SSE messages from an iterator of lines, as dicts of their fields (a block without
    data, as the stream's opening ``retry:``, is no message)."""
    fields = {}
    for line in lines:
        if line == "":
            if "data" in fields:
                yield fields
            fields = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            fields[key] = value


def subscribed(lines, retry_ms=3000):
    """The stream's opening: the reconnection delay, then the comment that says the stream
    listens from here on."""
    assert next(lines) == f"retry: {retry_ms}"
    assert next(lines) == ": subscribed"


def read_events(lines, count):
    events = []
    for event in iter_events(lines):
        events.append(event)
        if len(events) == count:
            return events
    raise AssertionError(f"the stream ended after {events}")


def test_published_events_stream_to_the_client_in_order(gateway, tmp_path):
    system, client = gateway(tree(), {"data_dir": str(tmp_path)})
    with client.stream("GET", "/v1/topics/orders/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        lines = response.iter_lines()
        subscribed(lines)  # the listener is registered from here on
        for n in range(3):
            system.ask("pubsub", Publish(topic="orders", data={"n": n}))
        system.ask("pubsub", Publish(topic="other", data="not for this stream"))
        events = read_events(lines, 3)
    assert [e["event"] for e in events] == ["message"] * 3
    assert [e["id"] for e in events] == ["1", "2", "3"]
    payloads = [json.loads(e["data"]) for e in events]
    assert [p["data"] for p in payloads] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert payloads[0]["topic"] == "orders" and payloads[0]["published_at"] > 0
    wait_until(lambda: client.app.streams.open_streams == 0, what="the stream to close")
    metrics = client.get("/metrics").text
    assert "vibe_sse_events_total 3.0" in metrics and "vibe_sse_streams 0.0" in metrics


def test_every_event_is_delivered_or_reported_dropped(gateway, tmp_path):
    system, client = gateway(tree(), {"data_dir": str(tmp_path)}, stream_buffer=2)
    with client.stream("GET", "/v1/topics/t/events") as response:
        lines = response.iter_lines()
        subscribed(lines)
        for n in range(200):
            system.tell("pubsub", Publish(topic="t", data=n))
        system.ask("pubsub", Publish(topic="t", data="last"))
        seen, dropped = [], 0
        for event in iter_events(lines):
            if event["event"] == "dropped":
                dropped += json.loads(event["data"])["dropped"]
            else:
                seen.append(json.loads(event["data"])["seq"])
            if len(seen) + dropped >= 201:
                break
    assert seen == sorted(seen)
    assert len(seen) + dropped == 201  # a loss at the tail is told too
    assert client.app.streams.dropped >= dropped


def test_a_full_stream_reports_its_drops_where_they_were_lost():
    import asyncio

    from gateway._sse import TopicStreams, _Stream
    from gateway._sse_wire import CLOSED
    from vibe_actors.agents.pubsub import Event

    async def scenario():
        owner = TopicStreams(system=None, buffer=2)  # type: ignore[arg-type]
        stream = _Stream(owner, 2, 0)
        events = [Event(topic="t", data=n, seq=n + 1, published_at=1.0) for n in range(7)]
        for event in events[:5]:  # 1 and 2 are queued; 3, 4 and 5 find the queue full
            stream.offer(event)
        assert stream.encode(await stream.get()).startswith(b"id: 1\nevent: message\n")
        stream.offer(events[5])  # queued after the loss: the notice goes before it
        assert stream.encode(await stream.get()).startswith(b"id: 2\nevent: message\n")
        # The drop's id is the last event sent before it: resuming there replays 3, 4, 5.
        notice = stream.encode(await stream.get())
        assert notice == b'id: 2\nevent: dropped\ndata: {"dropped":3}\n\n'
        assert stream.encode(await stream.get()).startswith(b"id: 6\nevent: message\n")
        assert (owner.dropped, owner.events_sent, stream.dropped_total) == (3, 3, 3)
        # A loss at the end of a burst is told once the client has read what was queued.
        for event in events[:3]:
            stream.offer(event)
        assert [(await stream.get()).seq for _ in range(2)] == [1, 2]
        assert b'"dropped":1' in stream.encode(await stream.get())
        stream.offer(events[6])
        stream.close()  # the end comes after what is queued
        assert (await stream.get()).seq == 7 and await stream.get() is CLOSED

    asyncio.run(scenario())


def test_bad_topic_no_pubsub_and_shutdown(gateway, tmp_path):
    system, client = gateway(tree(), {"data_dir": str(tmp_path)})
    bad = client.get("/v1/topics/%20bad/events")
    assert bad.status_code == 422 and bad.json()["type"].endswith("invalid-topic")
    assert client.post("/v1/topics/t/events").status_code == 405
    _, plain = gateway(SupervisorSpec(name="root", children=(worker("w"),)))
    missing = plain.get("/v1/topics/t/events")
    assert missing.status_code == 404 and missing.json()["type"].endswith("no-pubsub")
    with client.stream("GET", "/v1/topics/t/events") as response:
        lines = response.iter_lines()
        subscribed(lines)
        client.app.close_streams()  # what the server does when its drain begins
        assert list(lines) == [""]  # the stream ends cleanly, after the comment's blank line
    refused = client.get("/v1/topics/t/events")
    assert refused.status_code == 503 and "retry-after" in refused.headers


# -- resuming with Last-Event-ID ----------------------------------------------------------


def publish(system, topic, *values):
    return [system.ask("pubsub", Publish(topic=topic, data=v)).seq for v in values]


def resume(client, topic, last_event_id, count, **kwargs):
    """Reconnect with Last-Event-ID and read ``count`` messages (gap events included)."""
    headers = {"last-event-id": str(last_event_id)}
    with client.stream("GET", f"/v1/topics/{topic}/events", headers=headers) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        subscribed(lines, **kwargs)
        return read_events(lines, count)


def test_a_reconnecting_client_gets_what_it_missed_then_the_live_events(gateway, tmp_path):
    system, client = gateway(tree(), {"data_dir": str(tmp_path)})
    with client.stream("GET", "/v1/topics/orders/events") as response:
        lines = response.iter_lines()
        subscribed(lines)
        publish(system, "orders", "a", "b")
        seen = read_events(lines, 2)
    last = seen[-1]["id"]
    publish(system, "orders", "c", "d", "e")  # while the client is away
    headers = {"last-event-id": last}
    with client.stream("GET", "/v1/topics/orders/events", headers=headers) as response:
        lines = response.iter_lines()
        subscribed(lines)
        replayed = read_events(lines, 3)
        publish(system, "orders", "f")
        (live,) = read_events(lines, 1)
    assert [e["id"] for e in seen] == ["1", "2"]
    assert [e["id"] for e in replayed] == ["3", "4", "5"]  # no gap, no duplicate
    assert [json.loads(e["data"])["data"] for e in replayed] == ["c", "d", "e"]
    assert all(e["event"] == "message" for e in replayed)
    assert (live["id"], json.loads(live["data"])["data"]) == ("6", "f")


def test_an_id_older_than_the_history_is_told_as_a_gap_never_silently(gateway, tmp_path):
    system, client = gateway(tree(), {"data_dir": str(tmp_path)}, stream_history=3)
    with client.stream("GET", "/v1/topics/t/events") as response:
        subscribed(response.iter_lines())  # the topic is kept from here on
    publish(system, "t", *range(10))  # ids 1..10; the history keeps 8, 9, 10
    gap, *replayed = resume(client, "t", 2, 4)
    assert gap["event"] == "gap" and gap["id"] == "7"
    assert json.loads(gap["data"]) == {"last_event_id": 2, "resumed_from": 7}
    assert [e["id"] for e in replayed] == ["8", "9", "10"]  # the history's bound: 3 events
    # Resuming from the gap's id is complete: no second gap.
    assert [e["id"] for e in resume(client, "t", 7, 3)] == ["8", "9", "10"]


def test_an_id_from_before_the_topic_was_kept_or_unknown_is_a_gap(gateway, tmp_path):
    system, client = gateway(tree(), {"data_dir": str(tmp_path)})
    publish(system, "early", "x", "y", "z")  # before any stream: the gateway kept nothing
    (gap,) = resume(client, "early", 1, 1)
    assert gap["event"] == "gap" and json.loads(gap["data"])["resumed_from"] == 3
    (future,) = resume(client, "early", 99, 1)  # no id this topic has sent
    assert future["event"] == "gap" and future["id"] == "3"


def test_history_zero_keeps_nothing_and_a_resumed_client_is_told(gateway, tmp_path):
    system, client = gateway(tree(), {"data_dir": str(tmp_path)}, stream_history=0)
    with client.stream("GET", "/v1/topics/t/events") as response:
        subscribed(response.iter_lines())
    publish(system, "t", 1, 2)
    (gap,) = resume(client, "t", 1, 1)
    assert gap["event"] == "gap" and gap["id"] == "2"
    assert client.app.streams.kept_topics == 1


def test_only_the_most_recently_streamed_topics_are_kept(gateway, tmp_path):
    system, client = gateway(tree(), {"data_dir": str(tmp_path)}, history_topics=1)
    for topic in ("first", "second"):
        with client.stream("GET", f"/v1/topics/{topic}/events") as response:
            subscribed(response.iter_lines())
        publish(system, topic, "missed")
    wait_until(lambda: client.app.streams.open_streams == 0, what="the streams to close")
    assert client.app.streams.kept_topics == 1
    (kept,) = resume(client, "second", 0, 1)
    assert kept["event"] == "message" and json.loads(kept["data"])["data"] == "missed"
    (gap,) = resume(client, "first", 0, 1)  # forgotten: what it missed cannot be replayed
    assert gap["event"] == "gap"


def test_every_event_has_an_id_and_retry_and_keepalive_are_configured(gateway, tmp_path):
    system, client = gateway(
        tree(), {"data_dir": str(tmp_path)}, retry_ms=1500, keepalive_seconds=0.05,
        stream_buffer=1,
    )  # fmt: skip
    with client.stream("GET", "/v1/topics/t/events") as response:
        lines = response.iter_lines()
        subscribed(lines, retry_ms=1500)
        assert next(lines) == ""  # the end of the opening block
        assert next(lines) == ": keepalive"  # within the client's read timeout
        assert next(lines) == ""
        for n in range(50):  # a queue of 1: most are dropped for this client
            system.tell("pubsub", Publish(topic="t", data=n))
        system.ask("pubsub", Publish(topic="t", data="burst-end"))

        def until_quiet():  # the lines up to the next keep-alive: the queue has drained
            for line in lines:
                if line == ": keepalive":
                    return
                yield line

        received = list(iter_events(until_quiet()))
        system.ask("pubsub", Publish(topic="t", data="last"))
        # A keep-alive can come between two events of the burst on a loaded machine: what
        # is still queued (and a drop not yet reported) comes before "last", never after.
        for event in iter_events(lines):
            received.append(event)
            if event["event"] == "message" and json.loads(event["data"])["data"] == "last":
                break
    assert all("id" in e for e in received), received
    dropped = [e for e in received if e["event"] == "dropped"]
    assert dropped, received
    # A drop's id is the last event delivered before it: resuming there replays the drops.
    first_drop = received.index(dropped[0])
    before = received[first_drop - 1]["id"] if first_drop else "0"
    assert dropped[0]["id"] == before


def test_a_malformed_last_event_id_is_a_400_problem(gateway, tmp_path):
    _, client = gateway(tree(), {"data_dir": str(tmp_path)})
    refused = client.get("/v1/topics/t/events", headers={"last-event-id": "abc"})
    assert refused.status_code == 400
    assert refused.json()["type"] == "/problems/bad-last-event-id"
    assert client.get(refused.json()["type"]).status_code == 200  # the type resolves


def test_the_stream_settings_have_flags_variables_and_checks():
    from gateway import SettingsError, parse_settings

    settings = parse_settings(
        ["--sse-buffer", "8", "--sse-keepalive", "2.5", "--sse-history", "0"],
        {"VIBE_SSE_HISTORY_TOPICS": "4", "VIBE_SSE_RETRY_MS": "250"},
    )
    app = settings.app_settings()
    assert (app.stream_buffer, app.keepalive_seconds, app.stream_history) == (8, 2.5, 0)
    assert (app.history_topics, app.retry_ms) == (4, 250)
    for argv, problem in [
        (["--sse-buffer", "0"], "--sse-buffer / VIBE_SSE_BUFFER: must be >= 1, got 0"),
        (["--sse-keepalive", "nan"], "--sse-keepalive / VIBE_SSE_KEEPALIVE: must be a finite"),
        (["--sse-history", "-1"], "--sse-history / VIBE_SSE_HISTORY: must be >= 0, got -1"),
        (["--sse-history-topics", "0"], "--sse-history-topics / VIBE_SSE_HISTORY_TOPICS: must"),
        (["--sse-retry-ms", "soon"], "--sse-retry-ms / VIBE_SSE_RETRY_MS: Expected `int`"),
    ]:
        with pytest.raises(SettingsError) as caught:
            parse_settings(argv, {})
        assert caught.value.problems[0].startswith(problem), caught.value.problems
