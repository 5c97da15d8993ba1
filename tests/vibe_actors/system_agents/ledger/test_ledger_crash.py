"""Crash safety with a real process: SIGKILL mid-append loses no acknowledged record."""

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
from vibe_actors.agents.ledger import Ledger, Read, Verify

ROOT = Path(__file__).resolve().parents[4]
ACKS_WANTED = 200
DEADLINE = 30.0


def read_lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line.rstrip("\n"))
    into.put(None)  # end of output


def collect_acks(child: subprocess.Popen, lines: queue.Queue) -> list[tuple[str, int, str]]:
    """The child's acknowledged appends, until ACKS_WANTED (fails past the deadline)."""
    deadline = time.monotonic() + DEADLINE
    acks: list[tuple[str, int, str]] = []
    ready = False
    while len(acks) < ACKS_WANTED:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"only {len(acks)} acks from the child within {DEADLINE}s")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            pytest.fail(f"the child exited early with {child.wait(5)}: {child.stderr.read()}")
        if line == "ready":
            ready = True
            continue
        assert ready, f"unexpected output before 'ready': {line!r}"
        stream, seq, digest = line.split(" ")
        acks.append((stream, int(seq), digest))
    return acks


@pytest.mark.slow
def test_every_acknowledged_append_survives_sigkill(make_system, tmp_path):
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.vibe_actors.system_agents.ledger.ledger_child",
            str(tmp_path),
            "8",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=read_lines, args=(child.stdout, lines), daemon=True)
    reader.start()
    try:
        acks = collect_acks(child, lines)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        reader.join(10)
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL

    system = make_system([WorkerSpec(name="ledger", agent=Ledger)], data_dir=str(tmp_path))
    ledger = system.ref("ledger")
    for stream in sorted({s for s, _, _ in acks}):
        stored = {}
        after = 0
        while True:
            page = ledger.ask(Read(stream=stream, after=after, limit=1000)).records
            if not page:
                break
            stored.update({r.seq: r.hash for r in page})
            after = page[-1].seq
        assert sorted(stored) == list(range(1, len(stored) + 1)), "seqs have a gap"
        for _, seq, digest in (a for a in acks if a[0] == stream):
            assert stored.get(seq) == digest, f"acknowledged {stream}#{seq} is missing or changed"
        verdict = ledger.ask(Verify(stream=stream))
        assert verdict.ok and verdict.count == len(stored)
