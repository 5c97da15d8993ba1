"""Jobs crash safety with a real process: every acknowledged job runs after SIGKILL."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from vibe_actors.agents.jobs import Status

from tests.vibe_actors.system_agents.jobs.jobs_crash_child import QUICK, SLOW, SLOW_SECONDS, specs

CHILD = Path(__file__).with_name("jobs_crash_child.py")
ROOT = Path(__file__).resolve().parents[4]


def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)  # EOF


def _acks_until_all(process: subprocess.Popen, lines: queue.Queue, deadline: float) -> list[str]:
    acked: list[str] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"only {len(acked)} acks before the deadline")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            pytest.fail(f"child exited with {process.wait(5)} after {len(acked)} acks")
        if line == "ALL\n":
            return acked
        acked.append(line)


@pytest.mark.timeout(120)
def test_every_acknowledged_job_runs_after_sigkill(make_system, tmp_path):
    data_dir = tmp_path / "data"
    errors = (tmp_path / "child.stderr").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(CHILD), str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=errors,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True)
    reader.start()
    try:
        acked_lines = _acks_until_all(process, lines, time.monotonic() + 60.0)
    finally:
        process.send_signal(signal.SIGKILL)  # the slow jobs are running: killed mid-job
        process.wait(timeout=10)
        errors.close()
    reader.join(10)
    assert len(acked_lines) == SLOW + QUICK
    acked = {job_id: float(seconds) for job_id, seconds in map(str.split, acked_lines)}

    system = make_system(specs(), data_dir=str(data_dir))
    deadline = time.monotonic() + 60.0
    pause = threading.Event()
    pending = set(acked)
    while pending:
        assert time.monotonic() < deadline, f"{len(pending)} acknowledged jobs never finished"
        pending = {j for j in pending if system.ask("jobs", Status(job_id=j)).state != "succeeded"}
        pause.wait(0.05)
    finals = {job_id: system.ask("jobs", Status(job_id=job_id)) for job_id in acked}
    assert all(s.result == {"seconds": acked[j]} for j, s in finals.items())
    # The slow jobs were running when the process died: that attempt counted, one more ran.
    slow = [s for j, s in finals.items() if acked[j] == SLOW_SECONDS]
    assert [s.attempts for s in slow] == [2] * SLOW
