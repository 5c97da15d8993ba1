"""Jobs: protocol, retries and backoff, timeouts, worker crashes, cancel, restarts, bounds."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibe_actors import (
    AgentCrashed,
    AskError,
    Ping,
    PoolSpec,
    StartFailed,
    UnavailableError,
    WorkerSpec,
    handler,
)
from vibe_actors.agents.jobs import (
    Accepted,
    AlreadyFinished,
    Cancel,
    InvalidJob,
    JobList,
    JobNotFound,
    Jobs,
    JobsConfig,
    JobStatus,
    JobWorker,
    List,
    Status,
    Submit,
    UnknownKind,
)
from vibe_actors.agents.jobs._store import FINISHED, JobStore, NewJob
from vibe_actors.agents.jobs._wire import load_callable, resolve_struct
from vibe_actors.agents.jobs._worker import Run, RunResult
from vibe_actors.store._sqlite import database_path

from tests.conftest import wait_until
from tests.vibe_actors.system_agents.jobs.job_kinds_for_tests import FileGate

HERE = "tests.vibe_actors.system_agents.jobs.job_kinds_for_tests"
KINDS = {
    "echo": "vibe_actors.agents.job_kinds:echo",
    "flaky": f"{HERE}:flaky",
    "gated": f"{HERE}:gated",
    "hang_first": f"{HERE}:hang_first",
    "bad_result": f"{HERE}:bad_result",
}


@pytest.fixture
def gate(make_system, tmp_path):
    # Depends on make_system so that its teardown (opening the gate) runs before the shutdown.
    opened = FileGate(tmp_path / "gate")
    yield opened
    opened.open()


class CrashOnFirstAttempt(JobWorker):
    """A worker whose handler raises (a worker crash) on a job's first attempt."""

    @handler
    def run(self, msg: Run) -> RunResult:
        if msg.args.get("crash_worker") and msg.attempt == 1:
            raise RuntimeError("worker crashed mid-job")
        return super().run(msg)


def specs(pool: int = 2, worker: type = JobWorker, **config) -> list[WorkerSpec]:
    config.setdefault("kinds", KINDS)
    config.setdefault("backoff_initial", 0.01)
    return [
        WorkerSpec(name="job-workers", agent=worker, pool=PoolSpec(size=pool)),
        WorkerSpec(
            name="jobs", agent=Jobs, config=JobsConfig(**config), depends_on=("job-workers",)
        ),
    ]


def submit(system, kind: str, **fields) -> str:
    accepted = system.ref("jobs").ask(Submit(kind=kind, **fields))
    assert isinstance(accepted, Accepted)
    return accepted.job_id


def status(system, job_id: str) -> JobStatus:
    return system.ref("jobs").ask(Status(job_id=job_id))


def wait_job(system, job_id: str, *states: str, timeout: float = 10.0) -> JobStatus:
    states = states or ("succeeded",)
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while (current := status(system, job_id)).state not in states:
        assert time.monotonic() < deadline, f"job {job_id} still {current} after {timeout}s"
        pause.wait(0.005)
    return current


def sample(system, name: str, **labels) -> float | None:
    return system.registry.get_sample_value(name, labels)


# -- protocol -------------------------------------------------------------------------


def test_a_submitted_job_runs_and_its_status_says_how(make_system, tmp_path, store):
    system = make_system(specs(), data_dir=str(tmp_path), store=store)
    job_id = submit(system, "echo", args={"a": [1, 2], "b": {"c": None}})
    done = wait_job(system, job_id)
    assert (done.job_id, done.kind, done.attempts, done.error) == (job_id, "echo", 1, None)
    assert done.result == {"a": [1, 2], "b": {"c": None}}
    assert done.finished_at is not None and done.finished_at >= done.submitted_at
    listed = system.ref("jobs").ask(List(state="succeeded"))
    assert isinstance(listed, JobList) and [j.job_id for j in listed.jobs] == [job_id]
    assert system.ref("jobs").ask(List(state="queued")).jobs == []
    assert sample(system, "vibe_jobs_total", kind="echo", outcome="succeeded") == 1
    assert sample(system, "vibe_job_duration_seconds_count", kind="echo") == 1
    wait_until(lambda: sample(system, "vibe_jobs_running") == 0, what="running gauge at 0")
    assert sample(system, "vibe_jobs_queued") == 0


def test_unknown_kind_and_unknown_job_are_typed_errors(make_system, tmp_path, store):
    system = make_system(specs(), data_dir=str(tmp_path), store=store)
    jobs = system.ref("jobs")
    with pytest.raises(AskError) as raised:
        jobs.ask(Submit(kind="nope"))
    assert isinstance(raised.value.reply, UnknownKind) and raised.value.reply.http_status == 422
    for message in (Status(job_id="missing"), Cancel(job_id="missing")):
        with pytest.raises(AskError) as raised:
            jobs.ask(message)
        assert isinstance(raised.value.reply, JobNotFound) and raised.value.reply.http_status == 404
    assert jobs.ask(List()).jobs == []  # nothing was stored


def test_messages_validate_their_fields():
    with pytest.raises(ValueError, match="retries"):
        Submit(kind="echo", retries=-1)
    with pytest.raises(ValueError, match="timeout"):
        Submit(kind="echo", timeout=0)
    with pytest.raises(ValueError, match="limit"):
        List(limit=0)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"type": "List", "state": "sleeping"}', type=List)
    with pytest.raises(ValueError, match="import string"):
        JobsConfig(kinds={"x": "no_colon_here"})
    with pytest.raises(ValueError, match="backoff"):
        JobsConfig(backoff_initial=5, backoff_max=1)


def test_the_worker_protocol_is_not_public():
    # Run names any importable function: it must never be routable from outside.
    assert JobWorker.message_types() == (Ping,)


# -- execution: retries, failures, timeouts, crashes -----------------------------------------


def test_failed_attempts_are_retried_with_backoff_until_success(make_system, tmp_path, store):
    system = make_system(
        specs(backoff_initial=0.05, backoff_max=1.0), data_dir=str(tmp_path), store=store
    )
    started = time.monotonic()
    job_id = submit(system, "flaky", args={"fail": 2}, retries=3)
    done = wait_job(system, job_id)
    assert time.monotonic() - started >= 0.05 + 0.1  # two backoffs: 0.05 then 0.1
    assert (done.attempts, done.result, done.error) == (3, {"attempt": 3}, None)
    assert sample(system, "vibe_jobs_total", kind="flaky", outcome="retried") == 2
    assert sample(system, "vibe_jobs_total", kind="flaky", outcome="succeeded") == 1


def test_exhausted_retries_fail_with_the_last_error_and_the_worker_lives(
    make_system, tmp_path, store
):
    system = make_system(specs(pool=1, default_retries=2), data_dir=str(tmp_path), store=store)
    job_id = submit(system, "flaky", args={"fail": 10})
    done = wait_job(system, job_id, "failed")
    assert (done.attempts, done.error, done.result) == (3, "RuntimeError: attempt 3 fails", None)
    assert sample(system, "vibe_jobs_total", kind="flaky", outcome="failed") == 1
    assert system.cell("job-workers.1").incarnation == 1  # a job's exception is data


def test_a_result_that_is_not_json_is_a_failure(make_system, tmp_path, store):
    system = make_system(specs(), data_dir=str(tmp_path), store=store)
    done = wait_job(system, submit(system, "bad_result", retries=0), "failed")
    assert done.attempts == 1 and "not JSON-serializable" in (done.error or "")


def test_a_timed_out_attempt_is_retried_on_another_worker(make_system, tmp_path, store):
    system = make_system(specs(pool=2), data_dir=str(tmp_path), store=store)
    job_id = submit(system, "hang_first", timeout=0.2, retries=1)
    done = wait_job(system, job_id)
    assert (done.attempts, done.result) == (2, {"attempt": 2})
    assert sample(system, "vibe_jobs_total", kind="hang_first", outcome="retried") == 1
    # The first attempt's process was killed: its worker answered its probe and works again.
    ids = [submit(system, "echo", args={"n": n}) for n in range(4)]
    assert all(wait_job(system, i).state == "succeeded" for i in ids)


def test_a_timed_out_attempt_that_exhausts_retries_says_it_timed_out(make_system, tmp_path, store):
    system = make_system(specs(pool=1), data_dir=str(tmp_path), store=store)
    done = wait_job(system, submit(system, "hang_first", timeout=0.1, retries=0), "failed")
    assert done.error == "timed out after 0.1s"


def test_a_worker_crash_mid_job_is_a_failed_attempt_and_retried(make_system, tmp_path, store):
    system = make_system(
        specs(pool=1, worker=CrashOnFirstAttempt), data_dir=str(tmp_path), store=store
    )
    job_id = submit(system, "echo", args={"crash_worker": True})
    done = wait_job(system, job_id)
    assert done.attempts == 2 and done.result == {"crash_worker": True}
    assert system.cell("job-workers.1").incarnation == 2  # the supervisor restarted it
    assert sample(system, "vibe_jobs_total", kind="echo", outcome="retried") == 1


def test_agent_crashed_error_text_names_the_worker():
    from vibe_actors.agents.jobs._internal import describe as _describe

    text = _describe(AgentCrashed(agent="job-workers.1", error="RuntimeError: boom"))
    assert text == "AgentCrashed from job-workers.1: error=RuntimeError: boom"


# -- bounds and cancellation -----------------------------------------------------------------


def test_at_most_max_concurrency_jobs_run_at_once(make_system, tmp_path, store, gate):
    system = make_system(specs(pool=4, max_concurrency=2), data_dir=str(tmp_path), store=store)
    ids = [submit(system, "gated", args=gate.args(n=n)) for n in range(6)]
    wait_until(lambda: len(gate.started) == 2, what="two jobs running")
    running = system.ref("jobs").ask(List(state="running")).jobs
    assert sorted(j.job_id for j in running) == sorted(ids[:2])
    assert sample(system, "vibe_jobs_running") == 2 and sample(system, "vibe_jobs_queued") == 4
    gate.open()
    assert [wait_job(system, i).result for i in ids] == [{"n": n} for n in range(6)]
    assert gate.most == 2
    # First submitted, first dispatched (the running list above); the start order of
    # later ones also depends on which worker's process finished starting first.
    assert sorted(gate.started) == sorted(ids)


def test_cancel_queued_running_and_finished_jobs(make_system, tmp_path, store, gate):
    system = make_system(specs(pool=1, max_concurrency=1), data_dir=str(tmp_path), store=store)
    jobs = system.ref("jobs")
    running = submit(system, "gated", args=gate.args(n=1))
    queued = submit(system, "gated", args=gate.args(n=2))
    wait_until(lambda: gate.started == [running], what="the first job running")
    assert jobs.ask(Cancel(job_id=queued)).state == "cancelled"
    cancelled = jobs.ask(Cancel(job_id=running))
    assert (cancelled.state, cancelled.attempts, cancelled.result) == ("cancelled", 1, None)
    gate.open()  # the running attempt ends; its result is discarded
    after = submit(system, "echo", args={"after": True})
    assert wait_job(system, after).result == {"after": True}
    assert gate.started == [running]  # the queued job never ran
    assert status(system, running).state == "cancelled" and status(system, running).result is None
    with pytest.raises(AskError) as raised:
        jobs.ask(Cancel(job_id=running))
    assert isinstance(raised.value.reply, AlreadyFinished) and raised.value.reply.http_status == 409
    with pytest.raises(AskError) as raised:
        jobs.ask(Cancel(job_id=after))
    assert raised.value.reply.state == "succeeded"
    assert sample(system, "vibe_jobs_total", kind="gated", outcome="cancelled") == 2


def test_cancel_during_a_retry_backoff(make_system, tmp_path, store):
    system = make_system(
        specs(backoff_initial=30.0, backoff_max=30.0), data_dir=str(tmp_path), store=store
    )
    job_id = submit(system, "flaky", args={"fail": 5})
    wait_until(lambda: status(system, job_id).error is not None, what="first attempt failed")
    cancelled = system.ref("jobs").ask(Cancel(job_id=job_id))
    assert (cancelled.state, cancelled.attempts) == ("cancelled", 1)
    assert cancelled.error == "RuntimeError: attempt 1 fails"
    assert sample(system, "vibe_jobs_queued") == 0


# -- restarts and the store ------------------------------------------------------------------


def test_a_coordinator_restart_requeues_running_jobs_and_resumes_queued_ones(
    make_system, tmp_path, gate
):
    system = make_system(specs(pool=1, max_concurrency=1), data_dir=str(tmp_path))
    ids = [submit(system, "gated", args=gate.args(n=n)) for n in range(3)]
    wait_until(lambda: gate.started == ids[:1], what="the first job running")
    system.inject_fault("jobs", "crash")
    wait_until(
        lambda: system.cell("jobs").incarnation == 2 and system.status("jobs") == "running",
        what="jobs restarted",
    )
    gate.open()
    results = [wait_job(system, i) for i in ids]
    assert [r.attempts for r in results] == [2, 1, 1]  # the interrupted attempt counts
    assert [r.result for r in results] == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_queued_jobs_survive_a_system_restart(make_system, tmp_path, store):
    # The first system has no workers at all: its jobs stay queued.
    first = make_system(specs(workers="nobody"), data_dir=str(tmp_path), store=store)
    ids = [submit(first, "echo", args={"n": n}) for n in range(3)]
    assert {status(first, i).state for i in ids} == {"queued"}
    first.shutdown(timeout=5.0)
    second = make_system(specs(), data_dir=str(tmp_path), store=store)
    assert [wait_job(second, i).result for i in ids] == [{"n": n} for n in range(3)]


def test_recovery_requeues_running_jobs_and_fails_those_without_attempts_left(tmp_path):
    store = JobStore(tmp_path / "jobs.db")
    store.insert([NewJob("a", "echo", b"{}", 1, 1.0), NewJob("b", "echo", b"{}", 0, 1.0)])
    assert (store.start_attempt("a"), store.start_attempt("b")) == (1, 1)
    assert store.recover() == (1, 1)
    a, b = store.get("a"), store.get("b")
    assert (a.state, a.attempts, b.state, b.attempts) == ("queued", 1, "failed", 1)
    assert "interrupted" in (b.error or "") and b.finished_at is not None
    assert store.ids("queued") == ["a"]
    store.close()


def test_only_the_latest_finished_jobs_are_kept(tmp_path):
    store = JobStore(tmp_path / "jobs.db")
    store.insert(NewJob(str(n), "echo", b"{}", 0, 1.0) for n in range(5))
    for n in range(4):
        store.finish(str(n), "succeeded", b"null", None)
    assert store.prune(2) == 2
    assert sorted(row.id for row in store.listing(None, 10)) == ["2", "3", "4"]
    store.close()


def test_a_corrupt_database_degrades_the_agent_and_the_system_runs(make_system, tmp_path):
    path = database_path(tmp_path, "jobs")
    path.write_bytes(b"definitely not sqlite" * 512)
    system = make_system(specs(), data_dir=str(tmp_path))
    with pytest.raises(UnavailableError) as raised:
        system.ref("jobs").ask(Submit(kind="echo"))
    assert str(path) in raised.value.reply.reason
    assert system.ref("jobs").ask(Ping()).agent == "jobs"
    assert system.cell("jobs").degraded is not None


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("no_such_module_xyz:fn", "cannot import module 'no_such_module_xyz'"),
        (f"{HERE}:missing", "has no attribute 'missing'"),
        (f"{HERE}:NOT_CALLABLE", "is not callable"),
    ],
)
def test_a_bad_kind_fails_the_start_with_a_clear_message(make_system, tmp_path, target, expected):
    with pytest.raises(StartFailed) as raised:
        make_system(specs(kinds={"bad": target}), data_dir=str(tmp_path))
    assert "kind 'bad'" in str(raised.value.__cause__) and expected in str(raised.value.__cause__)


def test_a_kind_whose_module_raises_while_importing_is_a_config_error(tmp_path, monkeypatch):
    # It is reported as "cannot import module" (a ValueError), like a missing module.
    (tmp_path / "jobs_kind_raising_xyz.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match=r"cannot import module 'jobs_kind_raising_xyz' \(boom"):
        load_callable("jobs_kind_raising_xyz:fn")
    with pytest.raises(ValueError, match="is not a type name"):
        resolve_struct("no_colon", may_import=True)
    with pytest.raises(ValueError, match="'jobs_kind_raising_xyz' is not loaded"):
        resolve_struct("jobs_kind_raising_xyz:T", may_import=False)
    with pytest.raises(ValueError, match="is not a message type"):
        resolve_struct(f"{HERE}:flaky", may_import=False)


# -- backoff ---------------------------------------------------------------------------------


def test_the_retry_backoff_has_a_bounded_jitter():
    assert JobsConfig().backoff_jitter == 0.2  # jobs that failed together retry apart
    with pytest.raises(msgspec.ValidationError, match="backoff_jitter"):
        msgspec.convert({"backoff_jitter": 2}, JobsConfig)


# -- the built-in kinds -----------------------------------------------------------------------

BUILTIN = {
    name: f"vibe_actors.agents.job_kinds:{name}"
    for name in ("echo", "sleep", "fail", "ping", "verify_ledger")
}


def test_builtin_kinds_sleep_fail_and_ping(make_system, tmp_path, store):
    system = make_system(
        specs(kinds=BUILTIN, default_retries=0), data_dir=str(tmp_path), store=store
    )
    assert wait_job(system, submit(system, "sleep", args={"seconds": 0.01})).result == {
        "slept": 0.01
    }
    with pytest.raises(AskError) as refused:  # sleep declares its args: checked at Submit
        submit(system, "sleep", args={"seconds": -1})
    assert isinstance(refused.value.reply, InvalidJob)
    assert "Expected `float` >= 0" in refused.value.reply.detail
    failed = wait_job(system, submit(system, "fail", args={"message": "drill"}), "failed")
    assert failed.error == "RuntimeError: drill"
    pong = wait_job(system, submit(system, "ping", args={"agent": "jobs"}))
    assert pong.result == {"agent": "jobs", "incarnation": 1}
    missing = wait_job(system, submit(system, "ping", args={"agent": "ghost"}), "failed")
    assert missing.error.startswith("UnavailableError")


def test_builtin_verify_ledger_verifies_every_stream(make_system, tmp_path):
    from vibe_actors.agents.ledger import Append, Ledger

    system = make_system(
        [WorkerSpec(name="ledger", agent=Ledger), *specs(kinds=BUILTIN, default_retries=0)],
        data_dir=str(tmp_path),
    )
    for stream, count in (("orders", 3), ("audit", 1)):
        for n in range(count):
            system.ref("ledger").ask(Append(stream=stream, data={"n": n}))
    done = wait_job(system, submit(system, "verify_ledger"))
    assert done.result == {
        "ok": True,
        "streams": {
            "audit": {"ok": True, "count": 1, "broken_at": None},
            "orders": {"ok": True, "count": 3, "broken_at": None},
        },
    }
    absent = wait_job(system, submit(system, "verify_ledger", args={"ledger": "nope"}), "failed")
    assert absent.error.startswith("UnavailableError")


def test_a_worker_refuses_settings_that_belong_to_the_coordinator():
    from vibe_actors.agents.jobs import JobWorkerConfig

    with pytest.raises(msgspec.ValidationError, match="kinds"):
        msgspec.convert({"kinds": {"echo": "x:y"}}, JobWorkerConfig)


def test_pipelined_submits_are_committed_in_groups_and_all_run(make_system, tmp_path, store):
    system = make_system(specs(pool=4), data_dir=str(tmp_path), store=store)
    futures = [
        system.ref("jobs").ask_future(Submit(kind="echo", args={"n": n})) for n in range(200)
    ]
    ids = [future.result().job_id for future in futures]
    assert len(set(ids)) == 200
    assert [wait_job(system, i).result for i in ids] == [{"n": n} for n in range(200)]


def test_a_single_worker_agent_can_serve_as_the_pool(make_system, tmp_path, store):
    system = make_system(
        [
            WorkerSpec(name="solo", agent=JobWorker),
            WorkerSpec(name="jobs", agent=Jobs, config=JobsConfig(kinds=KINDS, workers="solo")),
        ],
        data_dir=str(tmp_path),
        store=store,
    )
    ids = [submit(system, "echo", args={"n": n}) for n in range(3)]
    assert [wait_job(system, i).result for i in ids] == [{"n": n} for n in range(3)]


def test_args_that_are_not_json_are_refused(make_system, tmp_path, store):
    system = make_system(specs(), data_dir=str(tmp_path), store=store, serialize_messages=False)
    with pytest.raises(AskError) as raised:
        system.ref("jobs").ask(Submit(kind="echo", args={"x": object()}))
    assert isinstance(raised.value.reply, InvalidJob) and raised.value.reply.http_status == 422


# -- the store's state machine against a model ------------------------------------------------

_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.integers(0, 2)),
        st.tuples(st.just("start"), st.integers(0, 7)),
        st.tuples(st.just("requeue"), st.integers(0, 7)),
        st.tuples(st.just("finish"), st.integers(0, 7), st.sampled_from(sorted(FINISHED))),
        st.tuples(st.just("recover")),
    ),
    max_size=25,
)


def _apply(model: dict[str, list], op: tuple) -> None:
    """The intended transitions: a finished job never changes again."""
    name, *rest = op
    if name == "insert":
        model[str(len(model))] = ["queued", 0, rest[0]]
        return
    if name == "recover":
        for job in model.values():
            if job[0] == "running":
                job[0] = "failed" if job[1] > job[2] else "queued"
        return
    job = model.get(str(rest[0]))
    if job is None:
        return
    if name == "start" and job[0] == "queued":
        job[0], job[1] = "running", job[1] + 1
    elif name == "requeue" and job[0] == "running":
        job[0] = "queued"
    elif name == "finish" and job[0] not in FINISHED:
        job[0] = rest[1]


@settings(max_examples=40, deadline=None)
@given(ops=_OPS)
def test_store_transitions_follow_the_model(ops):
    model: dict[str, list] = {}
    with tempfile.TemporaryDirectory() as directory:
        store = JobStore(Path(directory) / "jobs.db")
        try:
            for op in ops:
                name, *rest = op
                target = str(rest[0]) if rest else ""
                if name == "insert":
                    store.insert([NewJob(str(len(model)), "k", b"{}", rest[0], 1.0)])
                elif name == "start" and store.get(target) is not None:  # no-op unless queued
                    store.start_attempt(target)
                elif name == "requeue":
                    store.requeue(target, "e")
                elif name == "finish":
                    store.finish(target, rest[1], None, None)
                elif name == "recover":
                    store.recover()
                _apply(model, op)
                stored = {row.id: [row.state, row.attempts, row.retries] for row in
                          store.listing(None, 100)}  # fmt: skip
                assert stored == model
        finally:
            store.close()
