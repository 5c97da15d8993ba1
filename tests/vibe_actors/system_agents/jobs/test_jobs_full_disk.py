"""The jobs coordinator on a full disk: it stays up, impaired, runs what it admitted, keeps the
state changes it cannot record and records them, in order, by itself when space returns.

As in ``test_full_disk``, SQLite's ``max_page_count`` makes the coordinator's own
connection refuse to grow its file (SQLITE_FULL, "database or disk is full"); the
results and errors of the jobs here are large, so recording them needs new pages.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibe_actors import Agent, PoolSpec, SupervisorSpec, WorkerSpec
from vibe_actors._signals import InjectedFault
from vibe_actors.agents.jobs import (
    Accepted,
    Cancel,
    Jobs,
    JobsConfig,
    JobsNotSaved,
    JobStatus,
    JobWorker,
    List,
    Submit,
)
from vibe_actors.agents.jobs._store import JobStore, NewJob
from vibe_actors.store._database import StoreError
from vibe_actors.store._health import StorageUnavailable
from vibe_actors.store._sqlite import database_path

from tests.conftest import wait_until
from tests.vibe_actors.system_agents.jobs.job_kinds_for_tests import FileGate
from tests.vibe_actors.system_agents.jobs.test_jobs import HERE, sample, status, wait_job
from tests.vibe_actors.system_agents.test_full_disk import ask, impaired, in_agent_thread

KINDS = {"big": f"{HERE}:gated_big", "echo": "vibe_actors.agents.job_kinds:echo"}
SIZE = 200_000  # a result or an error this long needs new pages whatever the free list holds
#: Probing every 50 ms, as in test_full_disk.
FastJobs = type("Jobs", (Jobs,), {"store_retry_interval": 0.05})


def specs(pool: int, intensity: int = 0) -> SupervisorSpec:
    # Intensity 0: a single crash of the coordinator would make the root give up.
    return SupervisorSpec(
        name="root",
        intensity=intensity,
        period=60.0,
        children=(
            WorkerSpec(name="job-workers", agent=JobWorker, pool=PoolSpec(size=pool)),
            WorkerSpec(
                name="jobs",
                agent=FastJobs,
                depends_on=("job-workers",),
                config=JobsConfig(kinds=KINDS, backoff_initial=0.01, backoff_max=0.01),
            ),
        ),
    )


def _db(agent: Agent) -> Any:
    holder = getattr(agent, "_jobs", None) or agent._engine  # type: ignore[attr-defined]
    return holder.store._db


def _cap(db: Any) -> None:
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")


def fill_disk(system: Any) -> None:
    """From now on the coordinator's database cannot grow (as if the disk were full)."""
    in_agent_thread(system, "jobs", lambda agent: _cap(_db(agent)))


def free_disk(system: Any) -> None:
    in_agent_thread(
        system, "jobs", lambda agent: _db(agent).execute("PRAGMA max_page_count = 1073741823")
    )


def in_file(path: Path) -> dict[str, tuple[str, int, int | None, int | None]]:
    """Each job as its file holds it: (state, attempts, len(result), len(error))."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT id, state, attempts, length(result), length(error) FROM jobs")
        return {job_id: (state, n, result, error) for job_id, state, n, result, error in rows}


def submit(system: Any, retries: int = 0, **args: Any) -> str:
    accepted = system.ref("jobs").ask(Submit(kind="big", args=args, retries=retries))
    assert isinstance(accepted, Accepted)
    return accepted.job_id


@pytest.fixture
def gates(make_system, tmp_path):
    # Depends on make_system so that its teardown (opening the gates) runs before the shutdown.
    opened = (FileGate(tmp_path / "gate-1"), FileGate(tmp_path / "gate-2"))
    yield opened
    for gate in opened:
        gate.open()


def test_jobs_ending_on_a_full_disk_keep_the_agent_up_and_are_recorded_later(
    make_system, tmp_path, gates
):
    first, second = gates
    system = make_system(specs(pool=4), data_dir=str(tmp_path))
    path = database_path(tmp_path, "jobs")
    a = submit(system, **first.args(size=SIZE))
    b = submit(system, **first.args(size=SIZE, fail=True))
    c = submit(system, retries=1, **first.args(size=SIZE, fail=True))
    d = submit(system, **second.args())  # stays running: its gate stays closed
    wait_until(lambda: len(first.started) == 3 and second.started == [d], what="4 jobs running")
    fill_disk(system)
    incarnation = system.cell("jobs").incarnation
    first.open()
    # Every state change from now on fails to be recorded; the agent goes on from memory.
    done_a = wait_job(system, a)
    assert done_a.result == {"blob": "x" * SIZE} and done_a.attempts == 1
    done_b = wait_job(system, b, "failed")
    assert done_b.attempts == 1 and done_b.error == "RuntimeError: " + "x" * SIZE
    done_c = wait_job(system, c, "failed")
    assert done_c.attempts == 2 and done_c.error == "RuntimeError: " + "x" * SIZE
    assert system.running and system.cell("jobs").incarnation == incarnation
    assert impaired(system) == ["jobs"]
    assert "durable writes fail" in (system.cell("jobs").impaired or "")
    assert sample(system, "vibe_store_write_failures_total", agent="jobs") >= 1
    listed = system.ref("jobs").ask(List(state="failed")).jobs
    assert [j.job_id for j in listed] == [c, b]  # newest first
    assert [j.job_id for j in system.ref("jobs").ask(List(state="running")).jobs] == [d]
    assert [j.state for j in system.ref("jobs").ask(List()).jobs] == [
        "running", "failed", "failed", "succeeded"
    ]  # fmt: skip
    # Nothing acknowledged is answered that the file does not hold: 503s.
    refused = ask(system, "jobs", Submit(kind="echo", args={"n": 1}))
    assert isinstance(refused, JobsNotSaved) and refused.http_status == 503
    assert str(path) in refused.detail
    not_cancelled = ask(system, "jobs", Cancel(job_id=d))
    assert isinstance(not_cancelled, StorageUnavailable) and not_cancelled.http_status == 503
    assert status(system, d).state == "running"
    # The file still holds the jobs as they were when the disk filled up.
    assert {job[0] for job in in_file(path).values()} == {"running"}
    free_disk(system)
    # No request needed: the probe records what was kept, in order, and the agent is ready.
    wait_until(lambda: not impaired(system), what="jobs ready again")
    assert in_file(path) == {
        a: ("succeeded", 1, len(b'{"blob":""}') + SIZE, None),
        b: ("failed", 1, None, len("RuntimeError: ") + SIZE),
        c: ("failed", 2, None, len("RuntimeError: ") + SIZE),
        d: ("running", 1, None, None),
    }
    cancelled = system.ref("jobs").ask(Cancel(job_id=d))
    assert isinstance(cancelled, JobStatus) and cancelled.state == "cancelled"
    assert in_file(path)[d][0] == "cancelled"
    assert wait_job(system, submit(system, **first.args(size=10))).result == {"blob": "x" * 10}
    assert system.running and system.cell("jobs").incarnation == incarnation


def test_a_crash_while_changes_are_kept_runs_the_job_again(make_system, tmp_path, gates):
    first, _ = gates
    system = make_system(specs(pool=1, intensity=3), data_dir=str(tmp_path))
    job = submit(system, retries=1, **first.args(size=SIZE))
    wait_until(lambda: len(first.started) == 1, what="the job running")
    fill_disk(system)
    first.open()
    wait_job(system, job)
    assert impaired(system) == ["jobs"]
    system._inject("jobs", InjectedFault("crash"))  # its finish was never recorded
    # At least once: the next incarnation requeues it, the recorded attempt counted.
    wait_until(lambda: system.cell("jobs").incarnation == 2, what="jobs restarted")
    again = wait_job(system, job)
    assert again.attempts == 2 and first.started == [job, job]
    assert not impaired(system)


def _leave_running_jobs(path: Path, count: int) -> list[str]:
    """A file as a coordinator that died leaves it: ``count`` jobs running, one queued."""
    store = JobStore(path)
    ids = [f"job-{n:04d}" for n in range(count + 1)]
    args = b'{"n": "' + b"y" * 40 + b'"}'
    store.insert(NewJob(job_id, "echo", args, 3, 10.0) for job_id in ids)
    for job_id in ids[:count]:
        store.start_attempt(job_id)
    store.close()
    return ids


def test_a_start_on_a_full_disk_is_impaired_not_degraded_and_recovers(
    make_system, tmp_path, monkeypatch
):
    path = database_path(tmp_path, "jobs")
    ids = _leave_running_jobs(path, 200)
    recover = JobStore.recover

    def recover_on_a_full_disk(store: JobStore) -> tuple[int, int]:
        _cap(store._db)  # the cap stays on this connection until the test lifts it
        return recover(store)

    monkeypatch.setattr(JobStore, "recover", recover_on_a_full_disk)
    system = make_system(specs(pool=2), data_dir=str(tmp_path))
    monkeypatch.undo()
    cell = system.cell("jobs")
    assert cell.degraded is None and impaired(system) == ["jobs"]
    assert system.running and cell.incarnation == 1
    refused = ask(system, "jobs", Submit(kind="echo"))
    assert isinstance(refused, JobsNotSaved) and refused.http_status == 503
    assert isinstance(ask(system, "jobs", Cancel(job_id=ids[0])), StorageUnavailable)
    assert status(system, ids[-1]).state == "queued"  # reads work
    free_disk(system)
    wait_until(lambda: not impaired(system), what="jobs recovered")
    done = [wait_job(system, job_id) for job_id in ids]
    assert [j.attempts for j in done] == [2] * 200 + [1]  # the interrupted attempt counted
    assert system.cell("jobs").incarnation == 1


# -- the recorder against a model -----------------------------------------------------------

_CHANGES = st.lists(
    st.tuples(
        st.sampled_from(["running", "queued", "succeeded", "failed", "cancelled"]),
        st.integers(0, 5),
        # The store refuses writes from this change on, or takes them (then catches up).
        st.sampled_from(["full", "writable", "catch-up"]),
    ),
    max_size=40,
)


class _Flaky(JobStore):
    """A store whose writes fail while ``full``."""

    full = False

    def record(self, changes: Any) -> None:
        if self.full:
            raise StoreError(self.path, "commit failed: database or disk is full")
        super().record(changes)


@settings(max_examples=60, deadline=None)
@given(changes=_CHANGES, limit=st.integers(1, 7))
def test_kept_changes_show_as_recorded_and_are_recorded_in_order(changes, limit):
    from vibe_actors.agents.jobs._health import Recorder  # new with this behaviour
    from vibe_actors.agents.jobs._store import Transition

    failures: list[str] = []
    with tempfile.TemporaryDirectory() as directory:
        flaky = _Flaky(Path(directory) / "flaky.db")
        model = JobStore(Path(directory) / "model.db")  # every change recorded at once
        try:
            jobs = [NewJob(str(n), "k", b"{}", n % 3, 1.0) for n in range(6)]
            flaky.insert(jobs)
            model.insert(jobs)
            recorder = Recorder(flaky, lambda exc, what: failures.append(what), lambda: None)
            for n, (state, job, disk) in enumerate(changes):
                flaky.full = disk == "full"
                change = Transition(str(job), state, b"1", f"e{n}", float(n))
                recorder.record(change)
                model.record([change])
                if disk == "catch-up":
                    recorder.catch_up()
                    assert recorder.kept == 0
                for shown in (None, "queued", "running", "failed"):
                    assert _seen(recorder.listing(shown, limit)) == _seen(
                        model.listing(shown, limit)
                    )
                assert _seen([recorder.get(str(job))]) == _seen([model.get(str(job))])
            flaky.full = False
            recorder.catch_up()
            assert recorder.kept == 0
            assert _seen(flaky.listing(None, 10)) == _seen(model.listing(None, 10))
        finally:
            flaky.close()
            model.close()
    assert bool(failures) == any(disk == "full" for _, _, disk in changes)


def _seen(rows: list[Any]) -> list[Any]:
    """Rows as a reader sees them, but for when they were submitted (two files, two times)."""
    return [row._replace(submitted_at=0.0) for row in rows]
