"""State crash safety with a real process: every acknowledged Put survives SIGKILL."""

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

from vibe_actors import WorkerSpec
from vibe_actors.agents.state import Entry, Get, Keys, State

CHILD = Path(__file__).with_name("state_crash_child.py")
ROOT = Path(__file__).resolve().parents[4]
ACKS_BEFORE_KILL = 200


def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)  # EOF


def _collect_acks(
    process: subprocess.Popen, lines: queue.Queue, deadline: float, acked_lines: list[str]
) -> None:
    """Wait for ``ACKS_BEFORE_KILL`` acks into ``acked_lines`` (or fail at ``deadline``)."""
    seen = 0
    while seen < ACKS_BEFORE_KILL:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"only {seen} acks before the deadline")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            pytest.fail(f"child exited with {process.wait(5)} after {seen} acks")
        seen += 1
        acked_lines.append(line)


@pytest.mark.timeout(120)
def test_acknowledged_puts_survive_sigkill(make_system, tmp_path):
    data_dir = tmp_path / "data"
    errors = (tmp_path / "child.stderr").open("wb")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, str(CHILD), str(data_dir), "4"],
        stdout=subprocess.PIPE,
        stderr=errors,
        cwd=ROOT,
        env=env,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True)
    reader.start()
    acked_lines: list[str] = []
    try:
        _collect_acks(process, lines, time.monotonic() + 60.0, acked_lines)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        errors.close()
    reader.join(10)
    assert not reader.is_alive()
    while (line := lines.get_nowait()) is not None:  # acks printed before the kill landed
        acked_lines.append(line)
    acked: dict[str, int] = {}
    for line in acked_lines:
        if not line.endswith("\n"):
            continue  # cut short by the kill: never acknowledged to anyone
        key, version = line.split()
        acked[key] = max(acked.get(key, 0), int(version))
    assert len(acked_lines) >= ACKS_BEFORE_KILL and len(acked) == 12

    system = make_system([WorkerSpec(name="state", agent=State)], data_dir=str(data_dir))
    stored_keys = system.ask("state", Keys(limit=1000)).keys
    assert set(acked) <= set(stored_keys)
    for key in stored_keys:
        entry = system.ask("state", Get(key=key))
        assert isinstance(entry, Entry)
        assert entry.version >= acked.get(key, 1), key
        # Version n always holds the n-th value written, acknowledged or not.
        assert entry.value == {"key": key, "n": entry.version}
