"""Item 4: process crash.

SIGKILL the gateway while clients append to the ledger, put to state and
submit jobs, with two durable reminders pending; start it again on the same
data directory. Then: every acknowledged append and put reads back and every
chain verifies; every accepted job is known and finishes (queued and
interrupted jobs resume); the reminder that fell due while the process was
down fires once at start, the other fires on time afterwards.

Requests in flight at the kill get transport errors (the process is gone):
those are not acknowledged and not checked; every answer that did arrive
must be well-formed.
"""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from tests.conftest import wait_until
from tests.reliability.conftest import Load, missing_writes, run_writers, stop_writers, variant

#: Errors a request may get when the server process is killed under it.
KILLED = ("ConnectError", "ReadError", "RemoteProtocolError", "WriteError")


def _schedule(gateway, name: str, at: float) -> None:
    message = {"type": "Append", "stream": "reminders", "data": {"reminder": name}}
    body = {"name": name, "target": "ledger", "message": message, "at": at}
    gateway.ask("scheduler", "Schedule", body)


def _fired(gateway) -> list[str]:
    records = gateway.ask("ledger", "Read", {"stream": "reminders"})["records"]
    return [r["data"]["reminder"] for r in records]


def _job_states(gateway, jobs: list[str]) -> dict[str, str]:
    states: dict[str, str] = {}
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        for job_id in jobs:
            response = client.post("/v1/agents/jobs/Status", json={"job_id": job_id})
            states[job_id] = (
                response.json()["state"]
                if response.status_code == 200
                else str(response.status_code)
            )
    return states


@pytest.mark.timeout(300)
@pytest.mark.parametrize("seconds", variant(4, 15))
def test_sigkill_during_writes_loses_nothing_acknowledged(
    gateways, tmp_path, seconds, record_property
):
    data = tmp_path / "data"
    gateway = gateways(data_dir=data)
    kill_at = time.time() + seconds
    _schedule(gateway, "missed-while-down", kill_at + 1.0)
    load = Load()
    stop, writers = run_writers(gateway.url, 3, ("append", "put"), load)
    # Jobs that hold both workers past the kill, so a queue is still waiting behind them.
    for _ in range(4):
        body = {"kind": "sleep", "args": {"seconds": seconds / 2 + 1}}
        load.jobs.append(gateway.ask("jobs", "Submit", body)["job_id"])
    kinds = ("submit", "append", "put", "append", "put")
    stop, submitters = run_writers(gateway.url, 1, kinds, load, stop, 3)
    wait_until(lambda: time.time() >= kill_at, seconds + 5, "the kill time")
    gateway.signal(signal.SIGKILL)
    assert gateway.wait(30) == -signal.SIGKILL
    stop_writers(stop, writers + submitters)
    unexpected = [v for v in load.violations if not v.endswith(KILLED)]
    assert unexpected == [], unexpected[:10]

    # Down past the first reminder's time, on purpose: it must fire once at start.
    wait_until(lambda: time.time() >= kill_at + 1.5, 30, "the first reminder's time")
    restarted = time.time()
    gateway = gateways(data_dir=data)
    _schedule(gateway, "after-restart", time.time() + 2.0)

    assert missing_writes(gateway, load) == []
    wait_until(lambda: len(_fired(gateway)) >= 2, 30, "both reminders to fire")
    assert sorted(_fired(gateway)) == ["after-restart", "missed-while-down"]  # once each
    queued = sum(1 for s in _job_states(gateway, load.jobs).values() if s != "succeeded")
    wait_until(
        lambda: set(_job_states(gateway, load.jobs).values()) == {"succeeded"},
        120,
        f"the {len(load.jobs)} accepted jobs to finish",
    )
    figures = {
        "load_s": seconds,
        "acknowledged": load.acknowledged,
        "jobs_accepted": len(load.jobs),
        "jobs_unfinished_at_restart": queued,
        "transport_errors_from_kill": len(load.violations),
        "recovery_s": round(time.time() - restarted, 1),
        "lost": 0,
    }
    record_property("figures", figures)
    print("process crash figures:", figures)
