"""Child process of test_jobs_crash: submits jobs, prints each acknowledged one, waits to die.

Usage: ``python jobs_crash_child.py DATA_DIR``. Submits ``SLOW`` long jobs,
then ``QUICK`` short ones from several threads (so acks come from group
commits), printing ``job_id seconds`` for each ``Accepted`` and flushing.
Once every job is acknowledged and the long ones are running it prints
``ALL`` and blocks until it is killed.
"""

from __future__ import annotations

import sys
import threading

import structlog

from vibe_actors import ActorSystem, PoolSpec, SystemConfig, WorkerSpec
from vibe_actors.agents.jobs import Accepted, Jobs, JobsConfig, JobWorker, List, Submit

SLOW, SLOW_SECONDS = 4, 3.0
QUICK, QUICK_SECONDS, SUBMITTERS = 46, 0.05, 4
KINDS = {"slow": "tests.vibe_actors.system_agents.jobs.job_kinds_for_tests:slow"}


def specs() -> list[WorkerSpec]:
    return [
        WorkerSpec(name="job-workers", agent=JobWorker, pool=PoolSpec(size=SLOW)),
        WorkerSpec(name="jobs", agent=Jobs, config=JobsConfig(kinds=KINDS, max_concurrency=SLOW)),
    ]


def main(data_dir: str) -> None:
    # This process is an edge: logs go to stderr so stdout carries only acks.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    system = ActorSystem(specs(), SystemConfig(data_dir=data_dir)).start()
    out = threading.Lock()

    def submit(seconds: float) -> None:
        reply = system.ask("jobs", Submit(kind="slow", args={"seconds": seconds}), timeout=30.0)
        assert isinstance(reply, Accepted), reply
        with out:
            sys.stdout.write(f"{reply.job_id} {seconds}\n")
            sys.stdout.flush()

    for _ in range(SLOW):
        submit(SLOW_SECONDS)

    def quick(count: int) -> None:
        for _ in range(count):
            submit(QUICK_SECONDS)

    threads = [
        threading.Thread(target=quick, args=(QUICK // SUBMITTERS + (n < QUICK % SUBMITTERS),))
        for n in range(SUBMITTERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pause = threading.Event()
    while len(system.ask("jobs", List(state="running")).jobs) < SLOW:
        pause.wait(0.01)
    sys.stdout.write("ALL\n")
    sys.stdout.flush()
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1])
