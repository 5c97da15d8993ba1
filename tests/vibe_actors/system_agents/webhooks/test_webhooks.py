"""Webhooks: SSRF guard, signatures, retries, circuit breaker, threads, restarts.

A real HTTP server on 127.0.0.1 plays the receiving end; it is allow-listed
in the config of the tests that expect a delivery.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import os
import socket
import stat
import threading
import time
from typing import Any

import msgspec
import pytest
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks import WebhookVerificationError
from structlog.testing import capture_logs

from vibe_actors import AskError, Ping, UnavailableError, WorkerSpec
from vibe_actors.agents.pubsub import Publish as PubSubPublish
from vibe_actors.agents.pubsub import PubSub, PubSubConfig, Topics
from vibe_actors.agents.webhooks import (
    Breaker,
    Deliver,
    Deliveries,
    DeliveriesReply,
    InvalidWebhook,
    Queued,
    Subscribe,
    Subscribed,
    UnknownSubscription,
    Unsubscribe,
    Unsubscribed,
    WebhookRefused,
    Webhooks,
    WebhooksBusy,
    WebhooksConfig,
)
from vibe_actors.agents.webhooks._http_client import (
    Refused,
    ResolutionFailed,
    parse_allow,
    refusal,
    resolve,
    sign,
    url_problem,
)

from tests.conftest import wait_until

SECRET = "s3cret-never-shown"
LOCAL = ["127.0.0.1/32"]


# -- helpers --------------------------------------------------------------------------------


def hooks(tmp_path, make_system, agent: type[Webhooks] = Webhooks, store: str = "", **config: Any):
    config.setdefault("backoff_initial", 0.05)
    config.setdefault("backoff_jitter", 0.0)  # exact delays; the jitter has its own test
    config.setdefault("timeout", 5.0)
    spec = WorkerSpec(name="hooks", agent=agent, config=WebhooksConfig(**config))
    return make_system([spec], data_dir=str(tmp_path), store=store)


def final_records(system, count: int = 1, sub: str | None = None) -> DeliveriesReply:
    def done() -> bool:
        reply = system.ask("hooks", Deliveries(id=sub, limit=100))
        return sum(r.final for r in reply.deliveries) >= count

    wait_until(done, 5.0, f"{count} final delivery records")
    return system.ask("hooks", Deliveries(id=sub, limit=100))


def worker_threads(incarnation: int | None = None) -> list[threading.Thread]:
    prefix = "webhooks:hooks#" + ("" if incarnation is None else f"{incarnation}:")
    return [t for t in threading.enumerate() if t.name.startswith(prefix) and t.is_alive()]


# -- the guard, the signature, the breaker (no agent) ---------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("192.168.0.1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("0.0.0.0", "an unspecified address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("100.64.0.1", "a non-global address"),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_guard_classifies_addresses(address, kind):
    assert refusal(ipaddress.ip_address(address), ()) == kind


def test_allow_list_admits_addresses_and_networks():
    allow = parse_allow(["127.0.0.1", "10.0.0.0/8"])
    assert refusal(ipaddress.ip_address("127.0.0.1"), allow) is None
    assert refusal(ipaddress.ip_address("::ffff:10.9.8.7"), allow) is None
    assert refusal(ipaddress.ip_address("127.0.0.2"), allow) == "a loopback address"
    with pytest.raises(ValueError, match="not an address or CIDR"):
        parse_allow(["localhost"])
    with pytest.raises(ValueError):
        WebhooksConfig(allow=["10.0.0.0/33"])


def fake_resolver(answers: dict[str, list[str]], calls: list[str] | None = None):
    def resolver(host, port, type=0, **_: Any):
        if calls is not None:
            calls.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answers[host]]

    return resolver


def test_every_resolved_address_must_pass():
    resolver = fake_resolver({"mixed.test": ["93.184.216.34", "10.0.0.1"], "ok.test": ["8.8.8.8"]})
    with pytest.raises(Refused, match=r"mixed.test resolves to 10.0.0.1, a private address"):
        resolve("mixed.test", 443, (), resolver)
    assert str(resolve("ok.test", 443, (), resolver)) == "8.8.8.8"
    with pytest.raises(ResolutionFailed, match="cannot resolve nowhere.test"):
        resolve("nowhere.test", 443, (), resolver)


def test_signature_and_url_checks():
    body = b'{"a":1}'
    expected = hmac.new(b"key", body, hashlib.sha256).hexdigest()
    assert sign("key", body) == f"sha256={expected}"
    assert url_problem("https://example.com/x") is None
    assert "http:// or https://" in url_problem("ftp://example.com/x")
    assert "credentials" in url_problem("https://user:pw@example.com/x")
    assert "no host" in url_problem("http:///x")


def test_breaker_opens_half_opens_and_closes():
    breaker = Breaker(threshold=2, cooldown=10.0)
    assert breaker.allow(0) and breaker.state(0) == "closed"
    breaker.failure(0)
    assert breaker.state(0) == "closed"
    breaker.failure(1)
    assert breaker.state(1) == "open" and not breaker.allow(5)
    assert breaker.reopens_in(5) == 6.0
    assert breaker.allow(11) and breaker.state(11) == "half_open"
    assert not breaker.allow(11)  # one trial at a time
    breaker.failure(12)  # the trial failed: open again, for a full cool-down
    assert breaker.state(12) == "open" and not breaker.allow(21)
    assert breaker.allow(22)
    breaker.success()
    assert breaker.state(22) == "closed" and breaker.failures == 0


def test_subscribe_repr_hides_the_secret():
    msg = Subscribe(topic="t", url="https://example.com/path/token123", secret=SECRET)
    assert SECRET not in repr(msg) and "token123" not in repr(msg)
    assert SECRET not in str(msg)


# -- the agent ------------------------------------------------------------------------------


def test_loopback_is_refused_by_default_and_nothing_is_sent(make_system, tmp_path, hook):
    system = hooks(tmp_path, make_system)
    with pytest.raises(AskError) as caught:
        system.ask("hooks", Subscribe(topic="orders", url=hook.url, secret=SECRET))
    reply = caught.value.reply
    assert isinstance(reply, WebhookRefused) and reply.http_status == 403
    assert "127.0.0.1 is a loopback address" in reply.detail and "'allow'" in reply.detail
    localhost = hook.url.replace("127.0.0.1", "localhost")
    refused = system.ref("hooks").ask_future(Subscribe(topic="o", url=localhost, secret=SECRET))
    assert "localhost resolves to" in refused.wait().detail
    assert system.ask("hooks", Deliver(topic="orders", data=1)) == Queued(deliveries=[])
    assert hook.requests == []
    assert SECRET not in str(caught.value)


def test_a_delivery_verifies_with_the_standard_webhooks_library(make_system, tmp_path, hook):
    system = hooks(tmp_path, make_system, allow=LOCAL)
    system.ask("hooks", Subscribe(topic="orders", url=hook.url, secret=SECRET))
    standard = "whsec_" + base64.b64encode(b"a 32-byte key, as the spec has it").decode()
    system.ask("hooks", Subscribe(topic="orders", url=hook.url, secret=standard))
    system.ask("hooks", Deliver(topic="orders", data={"n": 1}, seq=7))
    received = hook.received(2)
    verifiers = [
        StandardWebhook(base64.b64encode(SECRET.encode()).decode()),  # any secret: its bytes
        StandardWebhook(standard),  # a whsec_ secret: as the specification says
    ]
    for headers, body in received:
        lowered = {name.lower(): value for name, value in headers.items()}
        verified = [v for v in verifiers if _verifies(v, body, lowered)]
        assert len(verified) == 1  # signed with its own subscription's secret only
        assert json.loads(body)["id"] == lowered["webhook-id"] == lowered["x-vibe-delivery"]
        assert abs(int(lowered["webhook-timestamp"]) - time.time()) < 60
    forged = {**lowered, "webhook-timestamp": str(int(time.time()) - 3600)}
    with pytest.raises(WebhookVerificationError):  # an old timestamp: a replay, refused
        verifiers[1].verify(body, forged)


def _verifies(verifier: StandardWebhook, body: bytes, headers: dict[str, str]) -> bool:
    try:
        verifier.verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


def test_a_standard_secret_must_be_base64(make_system, tmp_path, hook):
    system = hooks(tmp_path, make_system, allow=LOCAL)
    with pytest.raises(AskError, match="InvalidWebhook.*base64"):
        system.ask("hooks", Subscribe(topic="t", url=hook.url, secret="whsec_not base64!"))


def test_delivered_when_allow_listed_with_a_valid_signature(make_system, tmp_path, hook):
    with capture_logs() as logs:
        system = hooks(tmp_path, make_system, allow=LOCAL)
        subscribed = system.ask("hooks", Subscribe(topic="orders", url=hook.url, secret=SECRET))
        assert isinstance(subscribed, Subscribed)
        queued = system.ask("hooks", Deliver(topic="orders", data={"n": 1}, seq=7))
        assert len(queued.deliveries) == 1
        ((headers, body),) = hook.received(1)
        reply = final_records(system)
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Vibe-Signature"] == f"sha256={expected}"
    assert headers["Content-Type"] == "application/json"
    assert headers["Host"] == hook.url.split("/")[2]
    assert headers["X-Vibe-Attempt"] == "1"
    payload = json.loads(body)
    assert payload == {"id": queued.deliveries[0], "topic": "orders", "seq": 7, "data": {"n": 1}}
    assert headers["X-Vibe-Delivery"] == queued.deliveries[0]
    (record,) = reply.deliveries
    assert (record.outcome, record.final, record.status, record.attempt) == (
        "delivered",
        True,
        200,
        1,
    )
    assert record.origin == "http://" + hook.url.split("/")[2]  # no path, no query
    assert reply.circuits == {subscribed.id: "closed"}
    shown = msgspec.json.encode([subscribed, queued, reply]) + repr(logs).encode()
    assert SECRET.encode() not in shown
    assert b"kind=test" not in shown
    assert any(entry["event"] == "webhook_subscribed" for entry in logs)


def test_retried_after_a_500_with_the_same_delivery_id(make_system, tmp_path, hook):
    hook.statuses = [500]
    system = hooks(tmp_path, make_system, allow=LOCAL)
    system.ask("hooks", Subscribe(topic="t", url=hook.url, secret=SECRET))
    system.ask("hooks", Deliver(topic="t", data="x"))
    (first, second) = hook.received(2)
    assert first[1] == second[1]  # same body, same delivery id
    assert first[0]["X-Vibe-Delivery"] == second[0]["X-Vibe-Delivery"]
    assert (first[0]["X-Vibe-Attempt"], second[0]["X-Vibe-Attempt"]) == ("1", "2")
    records = final_records(system).deliveries
    assert [(r.attempt, r.outcome, r.status, r.final) for r in records] == [
        (1, "http_error", 500, False),
        (2, "delivered", 200, True),
    ]
    assert records[0].retry_in == 0.05


def test_retries_are_spread_by_the_jitter(make_system, tmp_path, hook):
    hook.default = 503
    system = hooks(tmp_path, make_system, allow=LOCAL, max_attempts=3, backoff_jitter=0.5,
                   breaker_threshold=10)  # fmt: skip
    system.ask("hooks", Subscribe(topic="t", url=hook.url, secret=SECRET))
    system.ask("hooks", Deliver(topic="t"))
    first, second, last = final_records(system).deliveries
    assert 0.05 <= first.retry_in <= 0.075 and 0.1 <= second.retry_in <= 0.15
    assert last.retry_in is None


def test_retries_stop_after_max_attempts_and_4xx_is_not_retried(make_system, tmp_path, hook):
    hook.default = 503
    system = hooks(tmp_path, make_system, allow=LOCAL, max_attempts=3, breaker_threshold=10)
    sub = system.ask("hooks", Subscribe(topic="t", url=hook.url, secret=SECRET)).id
    system.ask("hooks", Deliver(topic="t"))
    records = final_records(system).deliveries
    assert [(r.attempt, r.final) for r in records] == [(1, False), (2, False), (3, True)]
    assert [r.retry_in for r in records] == [0.05, 0.1, None]
    hook.default = 404
    system.ask("hooks", Deliver(topic="t"))
    records = final_records(system, 2, sub).deliveries
    assert [(r.attempt, r.outcome, r.status, r.final) for r in records[3:]] == [
        (1, "http_error", 404, True)
    ]
    assert len(hook.requests) == 4


def test_circuit_opens_after_consecutive_failures_and_half_opens(make_system, tmp_path, hook):
    hook.default = 500
    system = hooks(
        tmp_path,
        make_system,
        allow=LOCAL,
        max_attempts=1,
        breaker_threshold=2,
        breaker_cooldown=1.0,
    )
    sub = system.ask("hooks", Subscribe(topic="t", url=hook.url, secret=SECRET)).id
    for count in (1, 2):
        system.ask("hooks", Deliver(topic="t"))
        reply = final_records(system, count)
    assert reply.circuits == {sub: "open"}
    system.ask("hooks", Deliver(topic="t"))
    records = final_records(system, 3).deliveries
    assert (records[-1].outcome, records[-1].error) == ("circuit_open", "circuit open")
    assert len(hook.requests) == 2  # nothing sent while open
    wait_until(
        lambda: system.ask("hooks", Deliveries()).circuits == {sub: "half_open"},
        5.0,
        "the cool-down",
    )
    hook.default = 200
    system.ask("hooks", Deliver(topic="t"))
    reply = final_records(system, 4)
    assert reply.deliveries[-1].outcome == "delivered"
    assert reply.circuits == {sub: "closed"}


class Pinned(Webhooks):
    """Resolves ``hooks.invalid`` (a name no real DNS answers) to the test server."""

    calls: list[str] = []
    answers: dict[str, list[str]] = {}

    @staticmethod
    def resolver(host, port, type=0, **_: Any):
        Pinned.calls.append(host)
        answers = Pinned.answers[host]
        ip = answers.pop(0) if len(answers) > 1 else answers[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]


def test_request_goes_to_the_checked_address_with_the_original_host(make_system, tmp_path, hook):
    Pinned.calls, Pinned.answers = [], {"hooks.invalid": ["127.0.0.1"]}
    port = hook.url.split("/")[2].split(":")[1]
    url = f"http://hooks.invalid:{port}/hook"
    system = hooks(tmp_path, make_system, agent=Pinned, allow=LOCAL)
    system.ask("hooks", Subscribe(topic="t", url=url, secret=SECRET))
    system.ask("hooks", Deliver(topic="t"))
    ((headers, _),) = hook.received(1)
    assert headers["Host"] == f"hooks.invalid:{port}"
    assert Pinned.calls == ["hooks.invalid", "hooks.invalid"]  # the check, then the delivery


def test_dns_rebinding_to_loopback_is_refused_at_delivery(make_system, tmp_path, hook):
    Pinned.calls, Pinned.answers = [], {"hooks.invalid": ["93.184.216.34", "127.0.0.1"]}
    port = hook.url.split("/")[2].split(":")[1]
    system = hooks(tmp_path, make_system, agent=Pinned)
    url = f"http://hooks.invalid:{port}/hook"
    assert isinstance(
        system.ask("hooks", Subscribe(topic="t", url=url, secret=SECRET)), Subscribed
    )  # public when checked
    system.ask("hooks", Deliver(topic="t"))
    (record,) = final_records(system).deliveries
    assert (record.outcome, record.final) == ("refused", True)
    assert "hooks.invalid resolves to 127.0.0.1, a loopback address" in record.error
    assert hook.requests == []


def test_invalid_subscriptions_and_unsubscribe(make_system, tmp_path, hook):
    system = hooks(tmp_path, make_system, allow=LOCAL)
    ref = system.ref("hooks")
    for bad in (
        Subscribe(topic="t", url="ftp://example.com/", secret=SECRET),
        Subscribe(topic="t", url="http://u:p@example.com/", secret=SECRET),
        Subscribe(topic="t", url=hook.url, secret=""),
        Subscribe(topic="", url=hook.url, secret=SECRET),
    ):
        reply = ref.ask_future(bad).wait()
        assert isinstance(reply, InvalidWebhook) and reply.http_status == 422
    missing = ref.ask_future(Unsubscribe(id="nope")).wait()
    assert isinstance(missing, UnknownSubscription) and missing.http_status == 404
    sub = system.ask("hooks", Subscribe(topic="t", url=hook.url, secret=SECRET)).id
    assert system.ask("hooks", Unsubscribe(id=sub)) == Unsubscribed(id=sub)
    assert system.ask("hooks", Deliver(topic="t")) == Queued(deliveries=[])
    assert system.ask("hooks", Deliveries()).circuits == {}


def test_a_slow_endpoint_does_not_stall_the_mailbox(make_system, tmp_path, hook):
    hook.hold = threading.Event()
    system = hooks(tmp_path, make_system, allow=LOCAL)
    system.ask("hooks", Subscribe(topic="t", url=hook.url, secret=SECRET))
    system.ask("hooks", Deliver(topic="t"))
    hook.received(1)  # the request is in flight and held by the server
    assert system.ask("hooks", Ping(), timeout=1.0).incarnation == 1
    assert system.ask("hooks", Deliveries(), timeout=1.0).deliveries == []
    hook.hold.set()
    assert final_records(system).deliveries[0].outcome == "delivered"


def test_subscriptions_survive_a_restart_but_history_does_not(make_system, tmp_path, hook, store):
    system = hooks(tmp_path, make_system, allow=LOCAL, store=store)
    sub = system.ask("hooks", Subscribe(topic="t", url=hook.url, secret=SECRET)).id
    system.ask("hooks", Deliver(topic="t"))
    final_records(system)
    if not store:
        assert stat.S_IMODE(os.stat(tmp_path / "hooks.db").st_mode) == 0o600
    system.inject_fault("hooks", "crash")
    assert system.ask("hooks", Ping()).incarnation == 2
    wait_until(lambda: not worker_threads(1), 5.0, "the first incarnation's threads to end")
    assert len(worker_threads(2)) == 4
    reply = system.ask("hooks", Deliveries())
    assert reply.deliveries == [] and reply.circuits == {sub: "closed"}
    assert len(system.ask("hooks", Deliver(topic="t")).deliveries) == 1
    assert final_records(system).deliveries[0].subscription == sub
    assert len(hook.received(2)) == 2


def test_without_persistence_a_restart_forgets_subscriptions(make_system, tmp_path, hook):
    system = hooks(tmp_path, make_system, allow=LOCAL, persist=False)
    system.ask("hooks", Subscribe(topic="t", url=hook.url, secret=SECRET))
    system.inject_fault("hooks", "crash")
    assert system.ask("hooks", Ping()).incarnation == 2
    assert system.ask("hooks", Deliver(topic="t")) == Queued(deliveries=[])
    assert not (tmp_path / "webhooks").exists() and not (tmp_path / "hooks.db").exists()


def test_a_check_pending_at_a_crash_is_answered_and_threads_stop_on_shutdown(
    make_system, tmp_path, hook
):
    gate, entered = threading.Event(), threading.Event()

    class Slow(Webhooks):
        @staticmethod
        def resolver(host, port, type=0, **_: Any):
            entered.set()
            gate.wait(5)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    system = hooks(tmp_path, make_system, agent=Slow, allow=LOCAL, workers=1)
    pending = system.ref("hooks").ask_future(
        Subscribe(topic="t", url="http://slow.invalid/", secret=SECRET)
    )
    assert entered.wait(5)  # the check is running on the delivery thread
    system.inject_fault("hooks", "crash")
    with pytest.raises(UnavailableError, match="during the check"):
        pending.result()
    gate.set()
    assert system.ask("hooks", Ping()).incarnation == 2
    system.shutdown()
    wait_until(lambda: not worker_threads(), 5.0, "webhook threads to stop")


def test_max_pending_drops_deliveries_and_refuses_subscriptions(make_system, tmp_path, hook):
    hook.hold = threading.Event()
    system = hooks(tmp_path, make_system, allow=LOCAL, max_pending=1)
    sub = system.ask("hooks", Subscribe(topic="t", url=hook.url, secret=SECRET)).id
    first = system.ask("hooks", Deliver(topic="t"))
    hook.received(1)
    second = system.ask("hooks", Deliver(topic="t"))
    assert (len(first.deliveries), second) == (1, Queued(deliveries=[], dropped=1))
    busy = system.ref("hooks").ask_future(Subscribe(topic="u", url=hook.url, secret=SECRET))
    assert isinstance(busy.wait(), WebhooksBusy)
    (dropped,) = system.ask("hooks", Deliveries(id=sub)).deliveries
    assert (dropped.outcome, dropped.final, dropped.attempt) == ("dropped", True, 0)
    hook.hold.set()
    assert final_records(system, 2).deliveries[-1].outcome == "delivered"


def test_unsubscribe_cancels_a_scheduled_retry(make_system, tmp_path, hook):
    hook.default = 500
    system = hooks(tmp_path, make_system, allow=LOCAL, backoff_initial=0.3)
    sub = system.ask("hooks", Subscribe(topic="t", url=hook.url, secret=SECRET)).id
    system.ask("hooks", Deliver(topic="t"))
    wait_until(lambda: system.ask("hooks", Deliveries()).deliveries, 5.0, "the first attempt")
    system.ask("hooks", Unsubscribe(id=sub))
    records = final_records(system).deliveries
    assert [(r.outcome, r.final) for r in records] == [
        ("http_error", False),
        ("cancelled", True),
    ]
    assert len(hook.requests) == 1


def test_connection_errors_are_retried_then_fail(make_system, tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    system = hooks(tmp_path, make_system, allow=LOCAL, max_attempts=2)
    url = f"http://127.0.0.1:{port}/"
    system.ask("hooks", Subscribe(topic="t", url=url, secret=SECRET))
    system.ask("hooks", Deliver(topic="t"))
    records = final_records(system).deliveries
    assert [(r.outcome, r.final) for r in records] == [
        ("network_error", False),
        ("network_error", True),
    ]
    assert records[0].error.startswith("ConnectError")


# -- through pubsub ---------------------------------------------------------------------------


def test_an_event_published_on_pubsub_is_delivered(make_system, tmp_path, hook):
    pubsub_spec = WorkerSpec(name="pubsub", agent=PubSub, config=PubSubConfig())
    hooks_spec = WorkerSpec(
        name="hooks", agent=Webhooks, config=WebhooksConfig(allow=LOCAL, backoff_initial=0.05)
    )
    system = make_system([pubsub_spec, hooks_spec], data_dir=str(tmp_path))

    def followers(topic: str) -> int:
        topics = system.ask("pubsub", Topics()).topics
        return sum(t.subscribers for t in topics if t.topic == topic)

    sub = system.ask("hooks", Subscribe(topic="orders", url=hook.url, secret=SECRET)).id
    wait_until(lambda: followers("orders") == 1, 5.0, "webhooks following 'orders'")
    published = system.ask("pubsub", PubSubPublish(topic="orders", data={"n": 1}))
    assert (published.subscribers, published.seq) == (1, 1)
    ((headers, body),) = hook.received(1)
    payload = json.loads(body)
    assert (payload["topic"], payload["seq"], payload["data"]) == ("orders", 1, {"n": 1})
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Vibe-Signature"] == f"sha256={expected}"
    assert final_records(system).deliveries[0].outcome == "delivered"
    # A restart keeps it subscribed (it subscribes again at start); the last unsubscribe ends it.
    system.inject_fault("hooks", "crash")
    wait_until(lambda: system.cell("hooks").incarnation == 2, 5.0, "hooks restarted")
    system.ask("hooks", Ping())
    assert followers("orders") == 1
    system.ask("hooks", Unsubscribe(id=sub))
    wait_until(lambda: followers("orders") == 0, 5.0, "webhooks no longer following")


def test_without_pubsub_a_warning_and_deliver_still_works(make_system, tmp_path, hook):
    with capture_logs() as logs:
        system = hooks(tmp_path, make_system, allow=LOCAL)
        system.ask("hooks", Subscribe(topic="orders", url=hook.url, secret=SECRET))
        wait_until(
            lambda: any(e["event"] == "webhooks_pubsub_unavailable" for e in logs), 5.0, "warning"
        )
    (warning,) = [e for e in logs if e["event"] == "webhooks_pubsub_unavailable"]
    assert (warning["log_level"], warning["pubsub"], warning["topic"]) == (
        "warning",
        "pubsub",
        "orders",
    )
    assert warning["error"] == "Unavailable"
    assert len(system.ask("hooks", Deliver(topic="orders", data=1)).deliveries) == 1
    hook.received(1)
