"""The repository's wiring.yaml with agents moved to Ray: the same protocol as local.

Two agents of the default wiring move to Ray here: ``quota`` (in-memory
buckets, only ``self.system.clock``) and the jobs worker pool ``job-workers``
(its private, tagged ``Run``/``RunResult`` cross as msgpack; a job kind that
uses ``ctx.system``, like ``ping``, fails there with ``RemoteFeatureUnavailable``,
as documented). The other eleven need what a Ray-placed agent does
not have (docs/scaling.md): a local SQLite file and ``data_dir`` (ledger, state,
audit, registry, pubsub, webhooks, scheduler, jobs), ``self.system.events`` or
``data_dir`` (policy, schema), timers and the local system's cells
(introspect, watchdog).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

import phoenix
from vibe_actors import AskError, Ping, Pong
from vibe_actors.agents.introspect import describe
from vibe_actors.agents.jobs import (
    Accepted,
    InvalidJob,
    JobStatus,
    Status,
    Submit,
    UnknownKind,
)
from vibe_actors.agents.quota import Acquire, Denied, Granted
from vibe_actors.ray import RaySettings

from tests.conftest import wait_until
from tests.ray.conftest import NAMESPACE

WIRING = Path(__file__).parents[2] / "wiring.yaml"
MOVED = {
    "quota": "vibe_actors.agents.quota:Quota",
    "job-workers": "vibe_actors.agents.jobs:JobWorker",
}


def _wiring_text(placement: str, moved: dict[str, str] = MOVED) -> str:
    text = WIRING.read_text(encoding="utf-8")
    # The default quota has no limits (everything granted): one limit, in both placements.
    limits = "          config:\n            limits: []\n"
    assert text.count(limits) == 1
    text = text.replace(
        limits, "          config:\n            limits: [{principal: '*', rate: 0.001, burst: 2}]\n"
    )
    if placement == "ray":
        for target in moved.values():
            line = f"          agent: {target}\n"
            assert text.count(line) == 1, line
            text = text.replace(line, f"{line}          placement: ray\n")
        text = text.replace("version: 1\n", f"version: 1\nray:\n  namespace: {NAMESPACE}\n", 1)
    return text


@pytest.fixture(params=["local", "ray"])
def wired(request: Any, ray_settings: RaySettings, make_system: Any, tmp_path: Path) -> Any:
    root, config = phoenix.build(phoenix.load_text(_wiring_text(request.param)))
    config = msgspec.structs.replace(config, data_dir=str(tmp_path), serialize_messages=True)
    system = make_system(root, **msgspec.structs.asdict(config))
    return request.param, system


def test_default_wiring_places_the_moved_agent(wired: Any) -> None:
    placement, system = wired
    views = {view.name: view.placement for view in describe(system)}
    moved = {name: views[name] for name in views if name.split(".")[0] in MOVED}
    assert moved and set(moved.values()) == {placement}
    assert {p for n, p in views.items() if n.split(".")[0] not in MOVED} == {"local"}


def test_quota_protocol_in_the_default_wiring(wired: Any) -> None:
    _, system = wired
    ref = system.ref("quota")
    first = ref.ask(Acquire(agent="kv", principal="ann"), timeout=10)
    assert isinstance(first, Granted) and first.remaining == pytest.approx(1.0, abs=0.01)
    assert isinstance(ref.ask(Acquire(agent="kv", principal="ann"), timeout=10), Granted)
    with pytest.raises(AskError) as raised:
        ref.ask(Acquire(agent="kv", principal="ann"), timeout=10)
    assert isinstance(raised.value.reply, Denied) and raised.value.reply.retry_after > 0
    assert isinstance(ref.ask(Acquire(agent="kv", principal="bob"), timeout=10), Granted)
    assert ref.ask(Ping(), timeout=10) == Pong(agent="quota", incarnation=1)


def _finished(system: Any, job_id: str) -> JobStatus:
    seen: list[JobStatus] = []

    def done() -> bool:
        seen.append(system.ref("jobs").ask(Status(job_id=job_id), timeout=10))
        return seen[-1].state in {"succeeded", "failed", "cancelled"}

    wait_until(done, timeout=30, what=f"job {job_id} finished")
    return seen[-1]


def _run(system: Any, kind: str, args: dict[str, Any]) -> JobStatus:
    accepted = system.ref("jobs").ask(Submit(kind=kind, args=args, retries=0), timeout=10)
    assert isinstance(accepted, Accepted)
    return _finished(system, accepted.job_id)


def test_jobs_protocol_with_the_workers_and_quota_placed(wired: Any) -> None:
    placement, system = wired
    payload = {"a": [1, 2.5, "x", None, True], "b": {"c": {}}}
    echoed = _run(system, "echo", payload)
    assert (echoed.state, echoed.result, echoed.attempts) == ("succeeded", payload, 1)
    slept = _run(system, "sleep", {"seconds": 0.05})
    assert (slept.state, slept.result) == ("succeeded", {"slept": 0.05})
    with pytest.raises(AskError) as refused:  # the kind's argument schema, checked at Submit
        system.ref("jobs").ask(Submit(kind="sleep", args={"seconds": -1}), timeout=10)
    assert isinstance(refused.value.reply, InvalidJob)
    with pytest.raises(AskError) as raised:
        system.ref("jobs").ask(Submit(kind="nope"), timeout=10)
    assert isinstance(raised.value.reply, UnknownKind)
    pinged = _run(system, "ping", {"agent": "quota"})  # the job asks quota through ctx.system
    if placement == "local":
        assert (pinged.state, pinged.result) == ("succeeded", {"agent": "quota", "incarnation": 1})
    else:  # a Ray-placed worker has no local system to ask through (docs/scaling.md)
        assert pinged.state == "failed" and "RemoteFeatureUnavailable" in (pinged.error or "")
