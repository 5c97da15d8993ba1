"""Jobs: what a job asks through ``ctx.system`` is sent on behalf of its submitter."""

from __future__ import annotations

import sqlite3

from vibe_actors import Caller, PoolSpec, SupervisorSpec, WorkerSpec
from vibe_actors.agents.jobs import Accepted, Jobs, JobsConfig, Submit
from vibe_actors.agents.jobs._worker import JobWorker
from vibe_actors.agents.policy import Policy, PolicyConfig, Rule
from vibe_actors.store._sqlite import database_path

from tests.conftest import worker
from tests.vibe_actors.system_agents.jobs.test_jobs_processes import wait_job

KINDS = {"ping": "vibe_actors.agents.job_kinds:ping"}
#: mallory may submit jobs, and ping "open"; not "closed".
RULES = [
    Rule(principal="mallory", agent="jobs", message="*"),
    Rule(principal="mallory", agent="open", message="Ping"),
]


def tree() -> SupervisorSpec:
    return SupervisorSpec(
        name="root",
        children=(
            WorkerSpec(
                name="policy",
                agent=Policy,
                config=PolicyConfig(enabled=True, rules=RULES, persist=False),
            ),
            worker("open"),
            worker("closed"),
            WorkerSpec(name="job-workers", agent=JobWorker, pool=PoolSpec(size=1)),
            WorkerSpec(
                name="jobs",
                agent=Jobs,
                config=JobsConfig(kinds=KINDS, default_retries=0),
                depends_on=("job-workers",),
            ),
        ),
    )


def submit(system, caller, agent: str) -> str:
    reply = system.ref("jobs").ask(Submit(kind="ping", args={"agent": agent}), caller=caller)
    assert isinstance(reply, Accepted)
    return reply.job_id


def test_a_job_asks_only_what_its_submitter_may_ask(make_system, tmp_path):
    system = make_system(tree(), data_dir=str(tmp_path))
    mallory = Caller("mallory")
    assert wait_job(system, submit(system, mallory, "open")).result["agent"] == "open"
    refused = wait_job(system, submit(system, mallory, "closed"), "failed")
    assert "Forbidden" in refused.error and "'mallory' may not send Ping to closed" in (
        refused.error
    )
    # Trusted code (no caller) submits a job that may ask anything.
    assert wait_job(system, submit(system, None, "closed")).result["agent"] == "closed"
    with sqlite3.connect(database_path(tmp_path, "jobs")) as db:
        callers = sorted((c or "") for (c,) in db.execute("SELECT caller FROM jobs").fetchall())
    assert callers == ["", '{"principal":"mallory"}', '{"principal":"mallory"}']
