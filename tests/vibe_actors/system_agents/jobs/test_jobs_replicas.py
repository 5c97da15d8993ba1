"""Jobs coordinators on one PostgreSQL database (as gateway replicas would be): a job runs
on one replica at a time (claims with ``FOR UPDATE SKIP LOCKED``, leases), whichever
replica it was submitted to, and a replica that stops mid-job leaves it to another once its
lease expires, the interrupted attempt counted once (at least once, as on one replica)."""

from __future__ import annotations

from collections import Counter

from tests.conftest import wait_until
from tests.vibe_actors.system_agents.jobs.job_kinds_for_tests import FileGate
from tests.vibe_actors.system_agents.jobs.test_jobs import (
    sample,
    specs,
    status,
    submit,
    wait_job,
)

FAST = {"lease": 1.0, "max_concurrency": 2}


def test_jobs_submitted_to_any_replica_run_once(make_system, tmp_path, postgres_url):
    replicas = [
        make_system(specs(pool=2, **FAST), data_dir=str(tmp_path / f"r{i}"), store=postgres_url)
        for i in range(2)
    ]
    gate = FileGate(tmp_path / "gate")
    gate.open()
    jobs = [submit(replicas[n % 2], "gated", args=gate.args()) for n in range(12)]
    for job_id in jobs:
        done = wait_job(replicas[0], job_id, timeout=30.0)
        assert done.attempts == 1, done
    assert sorted(Counter(gate.started).items()) == sorted((job_id, 1) for job_id in jobs)
    for replica in replicas:
        assert sample(replica, "vibe_jobs_queued") == 0


def test_a_stopped_replicas_job_runs_again_on_another_after_its_lease(
    make_system, tmp_path, postgres_url
):
    first = make_system(specs(pool=1, **FAST), data_dir=str(tmp_path / "a"), store=postgres_url)
    gate = FileGate(tmp_path / "gate")
    job_id = submit(first, "gated", args=gate.args())
    wait_until(lambda: gate.started == [job_id], 30.0, "the first attempt to start")
    assert status(first, job_id).attempts == 1
    second = make_system(specs(pool=1, **FAST), data_dir=str(tmp_path / "b"), store=postgres_url)
    first.shutdown()  # its coordinator stops renewing the lease; the attempt is lost
    gate.open()
    done = wait_job(second, job_id, timeout=30.0)
    assert done.attempts == 2 and done.state == "succeeded"  # the lost attempt counted once
    assert gate.started == [job_id, job_id]
