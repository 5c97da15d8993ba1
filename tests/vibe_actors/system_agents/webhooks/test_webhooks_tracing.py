"""Tracing a published event to a webhook (issue 21): the POST is a client span of the
publisher's trace, and the receiver gets its traceparent."""

from __future__ import annotations

from vibe_actors import WorkerSpec
from vibe_actors.agents.pubsub import Publish, PubSub, PubSubConfig, Topics
from vibe_actors.agents.webhooks import Subscribe, Webhooks, WebhooksConfig

from tests.conftest import wait_until
from tests.vibe_actors.system_agents.test_tracing_agents import _wait_for_span
from tests.vibe_actors.system_agents.webhooks import test_webhooks as webhooks


def test_a_published_event_reaches_the_webhook_in_the_publisher_s_trace(
    make_system, tmp_path, spans, hook
):
    config = WebhooksConfig(allow=webhooks.LOCAL, backoff_initial=0.05)
    system = make_system(
        [
            WorkerSpec(name="pubsub", agent=PubSub, config=PubSubConfig()),
            WorkerSpec(name="hooks", agent=Webhooks, config=config),
        ],
        data_dir=str(tmp_path),
    )
    system.ask("hooks", Subscribe(topic="orders", url=hook.url, secret=webhooks.SECRET))
    wait_until(
        lambda: any(t.subscribers for t in system.ask("pubsub", Topics()).topics),
        what="webhooks following 'orders'",
    )
    with spans.provider.get_tracer("test").start_as_current_span("caller") as root:
        system.ask("pubsub", Publish(topic="orders", data={"n": 1}))
    ((headers, _),) = hook.received(1)
    post = _wait_for_span(spans, "webhook POST")
    trace_id = root.get_span_context().trace_id
    published = _wait_for_span(spans, "pubsub Publish")
    event = _wait_for_span(spans, "hooks Event")
    assert published.parent.span_id == root.get_span_context().span_id
    assert event.parent.span_id == published.context.span_id
    assert post.parent.span_id == event.context.span_id
    assert post.context.trace_id == trace_id
    assert post.attributes["vibe.outcome"] == "delivered"
    assert post.attributes["http.response.status_code"] == 200
    flags = f"{int(post.context.trace_flags):02x}"
    assert headers["traceparent"] == f"00-{trace_id:032x}-{post.context.span_id:016x}-{flags}"


def test_an_event_published_outside_any_trace_posts_no_traceparent(
    make_system, tmp_path, spans, hook
):
    config = WebhooksConfig(allow=webhooks.LOCAL, backoff_initial=0.05)
    system = make_system(
        [WorkerSpec(name="hooks", agent=Webhooks, config=config)], data_dir=str(tmp_path)
    )
    from vibe_actors.agents.webhooks import Deliver

    system.ask("hooks", Subscribe(topic="orders", url=hook.url, secret=webhooks.SECRET))
    system.ask("hooks", Deliver(topic="orders", data={"n": 1}))
    ((headers, _),) = hook.received(1)
    assert "traceparent" not in headers
    assert spans.get_finished_spans() == ()
