"""A full disk over HTTP: 503 problem+json naming the file with Retry-After, readiness false."""

from __future__ import annotations

from vibe_actors import PoolSpec, SupervisorSpec, WorkerSpec
from vibe_actors.agents.jobs import Jobs, JobsConfig, JobWorker
from vibe_actors.agents.state import State

from tests.conftest import wait_until
from tests.vibe_actors.system_agents.jobs import test_jobs_full_disk as jobs_disk
from tests.vibe_actors.system_agents.test_full_disk import BIG, fill_disk, free_disk


def test_a_full_disk_is_503_with_retry_after_and_not_ready(gateway, tmp_path):
    probing = type("State", (State,), {"store_retry_interval": 0.05})
    root = SupervisorSpec(name="root", children=(WorkerSpec(name="state", agent=probing),))
    system, client = gateway(root, system_config={"data_dir": str(tmp_path)})
    assert client.post("/v1/agents/state/Put", json={"key": "a", "value": 1}).status_code == 200
    fill_disk(system, "state")
    refused = client.post("/v1/agents/state/Put", json={"key": "b", "value": BIG})
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"].isdigit()
    problem = refused.json()
    assert problem["type"] == "/problems/storage-unavailable"
    assert "state.db" in problem["detail"]
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["failing"] == ["state"]
    assert client.get("/healthz").status_code == 200
    assert client.post("/v1/agents/state/Get", json={"key": "a"}).json()["value"] == 1
    free_disk(system, "state")
    wait_until(lambda: client.get("/readyz").status_code == 200, what="ready again")
    assert client.post("/v1/agents/state/Put", json={"key": "b", "value": BIG}).status_code == 200


def test_a_jobs_submit_on_a_full_disk_is_503_with_retry_after(gateway, tmp_path):
    probing = type("Jobs", (Jobs,), {"store_retry_interval": 0.05})
    kinds = {"echo": "vibe_actors.agents.job_kinds:echo"}
    root = SupervisorSpec(
        name="root",
        children=(
            WorkerSpec(name="job-workers", agent=JobWorker, pool=PoolSpec(size=1)),
            WorkerSpec(
                name="jobs", agent=probing, depends_on=("job-workers",),
                config=JobsConfig(kinds=kinds),
            ),
        ),
    )  # fmt: skip
    system, client = gateway(root, system_config={"data_dir": str(tmp_path)})
    jobs_disk.fill_disk(system)
    submit = {"kind": "echo", "args": {"blob": BIG}}
    refused = client.post("/v1/agents/jobs/Submit", json=submit)
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"].isdigit()
    problem = refused.json()
    assert problem["type"] == "/problems/jobs-not-saved"
    assert "jobs.db" in problem["detail"]
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["failing"] == ["jobs"]
    jobs_disk.free_disk(system)
    wait_until(lambda: client.get("/readyz").status_code == 200, what="ready again")
    assert client.post("/v1/agents/jobs/Submit", json=submit).status_code == 200
