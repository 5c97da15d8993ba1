"""Child process of test_jobs_processes: runs one long job, then waits to be SIGKILLed.

Usage: ``python jobs_orphan_child.py DATA_DIR PIDS_DIR``. Starts a system with
one job worker and submits a ``pid_then_sleep`` job (an hour, with an hour's
timeout) that leaves its process's pid in ``PIDS_DIR``; prints its own pid,
then blocks until it is killed.
"""

from __future__ import annotations

import sys
import threading

import structlog

from vibe_actors import ActorSystem, SystemConfig, WorkerSpec
from vibe_actors.agents.jobs import Jobs, JobsConfig, JobWorker, Submit

KINDS = {
    "pid_then_sleep": "tests.vibe_actors.system_agents.jobs.job_kinds_processes:pid_then_sleep"
}


def main(data_dir: str, pids: str) -> None:
    # This process is an edge: logs go to stderr so stdout carries only the pid.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    specs = [
        WorkerSpec(name="job-workers", agent=JobWorker),
        WorkerSpec(name="jobs", agent=Jobs, config=JobsConfig(kinds=KINDS, workers="job-workers")),
    ]
    system = ActorSystem(specs, SystemConfig(data_dir=data_dir)).start()
    args = {"pids": pids, "seconds": 3600}
    system.ask("jobs", Submit(kind="pid_then_sleep", args=args, timeout=3600, retries=0))
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
