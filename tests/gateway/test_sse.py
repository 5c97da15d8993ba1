"""GET /v1/topics/{topic}/events: pubsub topics as Server-Sent Events."""

from __future__ import annotations

import json

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
                continue
            payload = json.loads(event["data"])
            seen.append(payload["seq"])
            if payload["data"] == "last" or len(seen) + dropped >= 201:
                break
    assert seen == sorted(seen)
    assert len(seen) + dropped == 201 or seen[-1] == 201  # the tail may drop after "last"
    assert client.app.streams.dropped >= dropped


def test_a_full_stream_drops_counts_and_reports_before_the_next_event():
    import asyncio

    from gateway._sse import TopicStreams, _Stream
    from vibe_actors.agents.pubsub import Event

    async def scenario():
        owner = TopicStreams(system=None, buffer=2)  # type: ignore[arg-type]
        stream = _Stream(owner, 2, 0)
        events = [Event(topic="t", data=n, seq=n + 1, published_at=1.0) for n in range(5)]
        for event in events:
            stream.offer(event)
        first = stream.encode(stream.queue.get_nowait())
        # The drop's id is the last event sent before it (here: where the stream started).
        assert first.startswith(b'id: 0\nevent: dropped\ndata: {"dropped":3}\n\nid: 1\n')
        second = stream.encode(stream.queue.get_nowait())
        assert second.startswith(b"id: 2\nevent: message\n")
        assert (owner.dropped, owner.events_sent, stream.dropped_total) == (3, 2, 3)
        stream.offer(events[0])
        stream.offer(events[1])
        stream.close()  # a full queue gives up its oldest for the end marker
        assert stream.queue.qsize() == 2

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
