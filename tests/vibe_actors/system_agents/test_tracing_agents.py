"""Tracing through the system agents (issue 21): work that outlives the message that
asked for it (a reminder, a job attempt, a pubsub-to-webhook delivery) joins the trace it
was asked for in, after a restart of the system too (the context is stored with it)."""

from __future__ import annotations

import time
from typing import Any

from vibe_actors.agents.scheduler import Schedule, Scheduled

from tests.conftest import wait_until
from tests.vibe_actors.system_agents.scheduler.test_scheduler import Inbox, call, note, specs


def _named(exporter, name: str):
    return [s for s in exporter.get_finished_spans() if s.name == name]


def _wait_for_span(exporter, name: str, timeout: float = 10.0):
    wait_until(lambda: _named(exporter, name), timeout, f"a span {name!r}")
    return _named(exporter, name)[0]


def test_a_reminder_is_delivered_in_the_trace_that_scheduled_it(make_system, tmp_path, spans):
    inbox = Inbox()
    system = make_system(specs(inbox), data_dir=str(tmp_path))
    call(system, Schedule(name="plain", target="recorder", message=note("hi"), at=time.time()))
    inbox.wait_for("hi")
    assert spans.get_finished_spans() == ()  # scheduled outside any trace: none starts
    with spans.provider.get_tracer("test").start_as_current_span("caller") as root:
        reply = call(system, Schedule(name="t", target="recorder", message=note("yo"), at=0.0))
    assert isinstance(reply, Scheduled)
    inbox.wait_for("yo")
    delivered = _wait_for_span(spans, "recorder Note")
    deliver = _wait_for_span(spans, "scheduler deliver")
    scheduled = _wait_for_span(spans, "scheduler Schedule")
    trace_id = root.get_span_context().trace_id
    assert {delivered.context.trace_id, deliver.context.trace_id} == {trace_id}
    assert scheduled.parent.span_id == root.get_span_context().span_id
    assert deliver.parent.span_id == scheduled.context.span_id
    assert delivered.parent.span_id == deliver.context.span_id
    assert deliver.attributes["vibe.schedule"] == "t"


def test_a_stored_reminder_resumes_its_trace_after_a_restart(make_system, tmp_path, spans):
    inbox = Inbox()
    first = make_system(specs(inbox), data_dir=str(tmp_path))
    tracer = spans.provider.get_tracer("test")
    with tracer.start_as_current_span("caller") as root:
        at = time.time() + 0.5
        call(first, Schedule(name="later", target="recorder", message=note("hi"), at=at))
    first.shutdown()
    make_system(specs(inbox), data_dir=str(tmp_path))  # loads it; it fires when due
    inbox.wait_for("hi")
    deliver = _wait_for_span(spans, "scheduler deliver")
    assert deliver.context.trace_id == root.get_span_context().trace_id
    delivered = _wait_for_span(spans, "recorder Note")
    assert delivered.parent.span_id == deliver.context.span_id


def test_each_job_attempt_is_a_span_of_the_submission_s_trace(make_system, tmp_path, spans):
    from tests.vibe_actors.system_agents.jobs import test_jobs as jobs

    system = make_system(jobs.specs(), data_dir=str(tmp_path))
    with spans.provider.get_tracer("test").start_as_current_span("caller") as root:
        job_id = jobs.submit(system, "flaky", args={"fail": 1}, retries=2)
    jobs.wait_job(system, job_id)
    trace_id = root.get_span_context().trace_id
    submitted = _wait_for_span(spans, "jobs Submit")
    wait_until(lambda: len(_named(spans, "job attempt")) >= 2, 10, "two attempt spans")
    attempts = _named(spans, "job attempt")
    attempts.sort(key=lambda s: s.attributes["vibe.job.attempt"])
    assert [a.attributes["vibe.outcome"] for a in attempts] == ["failed", "succeeded"]
    assert {a.context.trace_id for a in attempts} == {trace_id}
    assert {a.parent.span_id for a in attempts} == {submitted.context.span_id}
    assert attempts[0].attributes["vibe.job.id"] == job_id
    # The Submit's reply was deferred to the group commit: the Flush that gave it links it.
    flush = _wait_for_span(spans, "jobs Flush")
    assert [(link.context.span_id, link.attributes["vibe.link"]) for link in flush.links] == [
        (submitted.context.span_id, "deferred_reply")
    ]
    runs = [s for s in spans.get_finished_spans() if s.name.endswith(" Run")]
    assert {r.parent.span_id for r in runs} == {a.context.span_id for a in attempts}


def test_a_listener_such_as_an_sse_stream_takes_the_event_in_its_trace(make_system, spans):
    from opentelemetry import trace

    from vibe_actors import WorkerSpec
    from vibe_actors.agents.pubsub import Publish, PubSub, PubSubConfig, listen

    system = make_system([WorkerSpec(name="pubsub", agent=PubSub, config=PubSubConfig())])
    seen: list[int] = []

    def took(event) -> None:
        seen.append(trace.get_current_span().get_span_context().trace_id)
        raise RuntimeError("a listener's bug")  # logged and kept; its span says so

    tracer = spans.provider.get_tracer("test")
    with listen(system, "news", took), tracer.start_as_current_span("caller") as root:
        system.ask("pubsub", Publish(topic="news", data={}))
    listener = _wait_for_span(spans, "pubsub listener")
    published = _wait_for_span(spans, "pubsub Publish")
    assert seen == [root.get_span_context().trace_id]
    assert listener.parent.span_id == published.context.span_id
    assert listener.attributes["vibe.topic"] == "news"
    assert [e.name for e in listener.events] == ["exception"]


def test_store_writes_are_child_spans_and_a_group_commit_links_its_writers(
    make_system, tmp_path, spans
):
    from vibe_actors import WorkerSpec
    from vibe_actors.agents.ledger import Append, Ledger
    from vibe_actors.agents.state import Put, State

    system = make_system(
        [WorkerSpec(name="ledger", agent=Ledger), WorkerSpec(name="state", agent=State)],
        data_dir=str(tmp_path),
    )
    tracer = spans.provider.get_tracer("test")
    with tracer.start_as_current_span("first") as first:
        pending = system.ref("ledger").ask_future(Append(stream="s", data=1))
    with tracer.start_as_current_span("second") as second:
        system.ref("ledger").ask(Append(stream="s", data=2))
        system.ref("state").ask(Put(key="k", value=1))
    pending.wait()
    commits = _named(spans, "store group commit")
    assert commits and sum(c.attributes["vibe.store.writes"] for c in commits) == 2
    writers = {first.get_span_context().trace_id, second.get_span_context().trace_id}
    linked = {link.context.trace_id for c in commits for link in c.links}
    assert linked == writers  # each writer's span is linked from the commit that wrote it

    def finished() -> dict[int, Any]:
        return {s.context.span_id: s for s in spans.get_finished_spans()}

    # A store span's parent, the message's span, ends after the reply left: wait for it.
    (write,) = _named(spans, "store write")
    parents = [c.parent.span_id for c in commits] + [write.parent.span_id]
    wait_until(lambda: all(p in finished() for p in parents), what="the messages' spans")
    by_id = finished()
    assert all(by_id[c.parent.span_id].name.startswith("ledger ") for c in commits)
    assert write.attributes["vibe.store.operation"] == "put"
    assert by_id[write.parent.span_id].name == "state Put"
    assert write.context.trace_id == second.get_span_context().trace_id
