"""Jobs run in worker processes: a job past its timeout is killed and frees its worker;
no job process outlives its worker (stop, crash, SIGKILL of the parent); every number
of a Submit that reaches SQLite is bounded; a failed batch commit answers its askers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest
from structlog.testing import capture_logs

from vibe_actors import AskError, PoolSpec, WorkerSpec
from vibe_actors.agents.jobs import (
    Accepted,
    InvalidJob,
    Jobs,
    JobsConfig,
    JobsNotSaved,
    JobStatus,
    JobWorker,
    List,
    Status,
    Submit,
)
from vibe_actors.agents.jobs._store import JobStore
from vibe_actors.store._sqlite import StoreError

from tests.conftest import wait_until
from tests.gateway.conftest import serving

ROOT = Path(__file__).resolve().parents[4]
#: The documented bounds (jobs.MAX_RETRIES, jobs.MAX_TIMEOUT), spelled out: they are the contract.
MAX_RETRIES, MAX_TIMEOUT = 100, 86_400.0
HERE = "tests.vibe_actors.system_agents.jobs.job_kinds_processes"
KINDS = {
    "echo": "vibe_actors.agents.job_kinds:echo",
    "sleep": "vibe_actors.agents.job_kinds:sleep",
    "fail": "vibe_actors.agents.job_kinds:fail",
    "whoami": f"{HERE}:whoami",
    "pid_then_sleep": f"{HERE}:pid_then_sleep",
    "exit_process": f"{HERE}:exit_process",
}


def specs(pool: int = 2, **config) -> list[WorkerSpec]:
    config.setdefault("kinds", KINDS)
    return [
        WorkerSpec(name="job-workers", agent=JobWorker, pool=PoolSpec(size=pool)),
        WorkerSpec(
            name="jobs", agent=Jobs, config=JobsConfig(**config), depends_on=("job-workers",)
        ),
    ]


def submit(system, kind: str, **fields) -> str:
    accepted = system.ref("jobs").ask(Submit(kind=kind, **fields))
    assert isinstance(accepted, Accepted)
    return accepted.job_id


def wait_job(system, job_id: str, *states: str, timeout: float = 10.0) -> JobStatus:
    """The job once it is in one of ``states`` (default succeeded); fails past ``timeout``."""
    states = states or ("succeeded",)
    found: list[JobStatus] = []

    def arrived() -> bool:
        found.append(system.ref("jobs").ask(Status(job_id=job_id)))
        return found[-1].state in states

    wait_until(arrived, timeout, f"job {job_id} in {states}")
    return found[-1]


def sample(system, name: str, **labels) -> float | None:
    return system.registry.get_sample_value(name, labels)


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie has ended: only its reaping is left)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def reaped(pid: int) -> bool:
    """Ended and waited for: no trace of ``pid`` is left."""
    return not Path(f"/proc/{pid}").exists()


def job_children() -> set[int]:
    """This process's children that run job processes (any state, zombies included)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended while we looked
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and b"jobs._child" in cmdline:
            found.add(int(entry.name))
    return found


def process_of(system, worker: str) -> int | None:
    """The worker's job process id, None while it has none or is between incarnations."""
    agent = system.cell(worker).agent
    return None if agent is None else agent.job_process_id


def pids_left(directory: Path, count: int, timeout: float = 20.0) -> dict[str, int]:
    """job_id -> pid once ``count`` pid_then_sleep jobs have written theirs."""

    def written() -> list[Path]:
        return [p for p in directory.iterdir() if p.suffix != ".tmp"]

    wait_until(lambda: len(written()) == count, timeout, f"{count} job pids")
    return {path.name: int(path.read_text()) for path in written()}


# -- timeouts free the pool ----------------------------------------------------------------


def test_two_hour_long_jobs_past_a_1s_timeout_free_both_workers_at_once(make_system, tmp_path):
    system = make_system(specs(pool=2, max_concurrency=2), data_dir=str(tmp_path))
    sleepers = [
        submit(system, "sleep", args={"seconds": 3600}, timeout=1.0, retries=0) for _ in range(2)
    ]
    echo = submit(system, "echo", args={"after": "the sleepers"})  # queued: both workers busy
    submitted = time.monotonic()
    done = wait_job(system, echo, timeout=1.0 + 3.0)  # fails on a pool held for an hour
    freed_after = time.monotonic() - submitted
    assert done.result == {"after": "the sleepers"}
    for job_id in sleepers:
        timed_out = wait_job(system, job_id, "failed", timeout=1.0)
        assert (timed_out.attempts, timed_out.error) == (1, "timed out after 1s")
    assert sample(system, "vibe_job_processes_killed_total", reason="timeout") == 2
    print(f"echo done {freed_after:.3f}s after submission behind two 1s-timeout sleepers")


def test_a_timed_out_job_process_is_killed_reaped_and_replaced(make_system, tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    system = make_system(specs(pool=2, max_concurrency=2), data_dir=str(tmp_path))
    args = {"pids": str(pids), "seconds": 3600}
    ids = [submit(system, "pid_then_sleep", args=args, timeout=1.0, retries=0) for _ in range(2)]
    killed = set(pids_left(pids, 2).values())
    assert os.getpid() not in killed  # the jobs ran in processes of their own
    for job_id in ids:
        assert wait_job(system, job_id, "failed", timeout=5.0).error == "timed out after 1s"
    wait_until(lambda: not any(map(running, killed)), 3.0, "the timed-out processes ended")
    assert all(map(reaped, killed))  # waited for by their worker: no zombie left
    replacements = {process_of(system, f"job-workers.{n}") for n in (1, 2)}
    assert None not in replacements and not replacements & killed
    assert all(map(running, replacements))  # type: ignore[arg-type]
    assert [system.cell(f"job-workers.{n}").incarnation for n in (1, 2)] == [1, 1]


# -- what a job process does, and what ends it ------------------------------------------------


def test_jobs_run_in_a_child_that_a_raising_job_does_not_end(make_system, tmp_path):
    system = make_system(specs(pool=1, default_retries=0), data_dir=str(tmp_path))
    first = wait_job(system, submit(system, "whoami")).result
    assert first["ppid"] == os.getpid() and first["pid"] != os.getpid()
    failed = wait_job(system, submit(system, "fail", args={"message": "drill"}), "failed")
    assert (failed.attempts, failed.error) == (1, "RuntimeError: drill")
    assert wait_job(system, submit(system, "whoami")).result == first  # the same process
    assert system.cell("job-workers.1").incarnation == 1


def test_a_job_that_ends_its_process_is_a_failed_attempt_and_the_process_is_replaced(
    make_system, tmp_path
):
    system = make_system(specs(pool=1, default_retries=0), data_dir=str(tmp_path))
    before = wait_job(system, submit(system, "whoami")).result["pid"]
    assert before != os.getpid()  # (else the next job would end the test run itself)
    died = wait_job(system, submit(system, "exit_process", args={"code": 3}), "failed")
    assert died.error == "the job process exited with code 3 during the attempt"
    after = wait_job(system, submit(system, "whoami")).result["pid"]
    assert after != before and reaped(before)
    assert sample(system, "vibe_job_processes_died_total") == 1


def test_stopping_the_system_ends_every_job_process_even_mid_job(make_system, tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    system = make_system(specs(pool=3), data_dir=str(tmp_path))
    assert wait_job(system, submit(system, "whoami")).result["pid"] != os.getpid()
    busy = submit(system, "pid_then_sleep", args={"pids": str(pids), "seconds": 3600},
                  timeout=3600)  # fmt: skip
    (mid_job,) = pids_left(pids, 1).values()
    owned = {process_of(system, f"job-workers.{n}") for n in (1, 2, 3)}
    assert mid_job in owned and len(owned) == 3 and owned <= job_children()
    started = time.monotonic()
    assert system.shutdown(timeout=10.0) is True  # no worker abandoned
    assert time.monotonic() - started < 5.0
    assert not any(map(running, owned)) and all(map(reaped, owned))
    assert job_children() == set()
    assert busy  # submitted and running when the system stopped


def test_a_crashed_worker_stops_its_job_process(make_system, tmp_path):
    system = make_system(specs(pool=1), data_dir=str(tmp_path))
    first = process_of(system, "job-workers.1")
    assert first is not None and first != os.getpid()
    system.inject_fault("job-workers.1", "crash")
    wait_until(lambda: system.cell("job-workers.1").incarnation == 2
               and process_of(system, "job-workers.1") not in (None, first),
               5.0, "the worker restarted with a new process")  # fmt: skip
    wait_until(lambda: reaped(first), 3.0, "the crashed incarnation's process reaped")
    assert wait_job(system, submit(system, "echo", args={"n": 1})).result == {"n": 1}


@pytest.mark.timeout(60)
def test_a_job_process_does_not_outlive_a_sigkilled_parent(tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    errors = (tmp_path / "child.stderr").open("wb")
    parent = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("jobs_orphan_child.py")),
         str(tmp_path / "data"), str(pids)],
        stdout=subprocess.DEVNULL, stderr=errors, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        (job_pid,) = pids_left(pids, 1, timeout=30.0).values()
        assert job_pid != parent.pid  # the job runs in a process of its own
        assert running(job_pid)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        errors.close()
    # The child notices its parent is gone (its watchdog, or EOF) and exits; it was
    # reparented, so reaping it is its new parent's business: ended is what counts.
    wait_until(lambda: not running(job_pid), 5.0, "the orphaned job process to exit")


# -- bounds: every number that reaches SQLite --------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "echo", "retries": 2**70},
        {"kind": "echo", "retries": MAX_RETRIES + 1},
        {"kind": "echo", "timeout": MAX_TIMEOUT * 2},
        {"kind": "echo", "timeout": 1e300},
    ],
)
def test_out_of_range_submit_numbers_are_validation_errors(body):
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(msgspec.json.encode({"type": "Submit", **body}), type=Submit)
    with pytest.raises(ValueError):
        Submit(**body)


def test_the_bounds_are_in_the_schema():
    props = msgspec.json.schema(Submit)["$defs"]["Submit"]["properties"]
    assert {"type": "integer", "minimum": 0, "maximum": MAX_RETRIES} in props["retries"]["anyOf"]
    assert props["timeout"]["anyOf"][0]["maximum"] == MAX_TIMEOUT
    limit = msgspec.json.schema(List)["$defs"]["List"]["properties"]["limit"]
    assert (limit["minimum"], limit["maximum"]) == (1, 10_000)


def test_the_gateway_answers_422_to_a_huge_retries_and_jobs_keeps_running(make_system, tmp_path):
    system = make_system(specs(), data_dir=str(tmp_path))
    with serving(system) as client:
        huge = client.post("/v1/agents/jobs/Submit", json={"kind": "echo", "retries": 2**70})
        assert huge.status_code == 422, huge.text
        assert "retries" in huge.text
        ok = client.post("/v1/agents/jobs/Submit", json={"kind": "echo", "retries": 1})
        assert ok.status_code == 200, ok.text
        job_id = ok.json()["job_id"]
        too_long = {"kind": "sleep", "args": {"seconds": 3601}}
        refused = client.post("/v1/agents/jobs/Submit", json=too_long)
        assert refused.status_code == 422 and "3600" in refused.text
    assert wait_job(system, job_id).state == "succeeded"
    assert system.cell("jobs").incarnation == 1


def test_sleep_refuses_more_than_its_maximum_at_submit(make_system, tmp_path):
    system = make_system(specs(), data_dir=str(tmp_path))
    for args in ({"seconds": 3600.5}, {"seconds": "long"}, {"second": 1}):
        with pytest.raises(AskError) as raised:
            system.ref("jobs").ask(Submit(kind="sleep", args=args))
        assert isinstance(raised.value.reply, InvalidJob), args
        assert raised.value.reply.http_status == 422
    assert system.ref("jobs").ask(List()).jobs == []  # nothing was stored
    assert wait_job(system, submit(system, "sleep", args={"seconds": 0.01})).result == {
        "slept": 0.01
    }


# -- a failed batch commit ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        StoreError("jobs.db", "commit failed: disk I/O error"),
        OverflowError("Python int too large to convert to SQLite INTEGER"),
    ],
    ids=["store-error", "overflow"],
)
def test_a_failed_batch_commit_answers_each_asker_and_names_their_request_ids(
    make_system, tmp_path, monkeypatch, failure
):
    def fail_insert(store: JobStore, jobs) -> float:
        list(jobs)
        raise failure

    with capture_logs() as logs:
        system = make_system(specs(), data_dir=str(tmp_path))
        monkeypatch.setattr(JobStore, "insert", fail_insert)
        jobs = system.ref("jobs")
        futures = [
            jobs.ask_future(Submit(kind="echo", args={"n": n}), request_id=f"req-{n}")
            for n in range(3)
        ]
        replies = [future.wait(5.0) for future in futures]
    assert all(isinstance(r, JobsNotSaved) and r.http_status == 503 for r in replies), replies
    events = [e for e in logs if e["event"] == "jobs_not_saved"]
    assert sorted(rid for e in events for rid in e["request_ids"]) == ["req-0", "req-1", "req-2"]
    assert sample(system, "vibe_jobs_not_saved_total") == 3
    monkeypatch.undo()
    assert wait_job(system, submit(system, "echo", args={"n": 9})).result == {"n": 9}
    assert system.cell("jobs").incarnation == 1
