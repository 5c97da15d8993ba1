"""Ledger benchmark: durable appends/s with group commit, one transaction per append, raw SQLite.

Run pinned to one core, like every benchmark::

    taskset -c 0 .venv/bin/python -m benchmarks.ledger [--quick] [--json PATH]

Every variant makes each append durable before acknowledging it (WAL,
``synchronous=FULL``, fsync at commit), from 1, 8 and 64 writer threads that
each append synchronously in a loop, in a fresh data directory:

* ``group``: the ledger agent with group commit (its default);
* ``one_tx``: the ledger agent with ``group_commit=False``;
* ``raw``: plain ``sqlite3`` inserts, one commit each, every thread with its
  own connection (no actor, no hash chain: the floor of "one fsync per append"),
  writers queueing on a lock in the process rather than in SQLite's busy handler.

The ratios between variants in the same run are the result (absolute numbers
depend on the disk's fsync latency). ``--quick`` only proves that it runs.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import vibe_actors as va
from vibe_actors.agents.ledger import Append, Ledger, LedgerConfig

from benchmarks._common import Writer, drive_writers, main_for
from benchmarks.core import machine

perf = time.perf_counter

WRITERS = (1, 8, 64)
VARIANTS = ("group", "one_tx", "raw")
PAYLOAD = "x" * 64

#: One append for writer ``index``: returns when it is durable.
Appender = Callable[[int, int], Any]


def drive(writers: int, seconds: float, make_appender: Callable[[int], Appender]) -> dict[str, Any]:
    """``writers`` threads append until the deadline; durable appends/s and latencies."""

    def writer(index: int) -> Writer:
        append = make_appender(index)
        return (lambda n: append(index, n)), None

    result = drive_writers(writers, seconds, writer)
    result["appends"] = result.pop("writes")
    return result


def run_ledger(writers: int, seconds: float, group_commit: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as data_dir:
        spec = va.WorkerSpec(
            name="ledger", agent=Ledger, config=LedgerConfig(group_commit=group_commit)
        )
        system = va.ActorSystem([spec], va.SystemConfig(data_dir=data_dir, ask_timeout=60.0))
        system.start()
        try:
            ref = system.ref("ledger")

            def appender(index: int) -> Appender:
                stream = f"w{index % 8}"
                return lambda i, n: ref.ask(
                    Append(stream=stream, data={"writer": i, "n": n, "payload": PAYLOAD})
                )

            result = drive(writers, seconds, appender)
            batches = system.registry.get_sample_value("vibe_ledger_commit_batch_size_count")
            result["mean_batch"] = result["appends"] / batches if batches else 0.0
        finally:
            system.shutdown(timeout=10.0)
    return result


RAW_SCHEMA = "CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY, stream TEXT, data BLOB)"


def run_raw(writers: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-raw-") as data_dir:
        path = Path(data_dir) / "raw.db"
        setup = sqlite3.connect(path, isolation_level=None)
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute(RAW_SCHEMA)
        connections: list[sqlite3.Connection] = []
        lock = threading.Lock()
        # SQLite admits one writer at a time; queueing on a lock here instead of in
        # SQLite's busy handler (which sleeps up to 100 ms per retry) is the best case
        # for raw inserts: every commit follows the previous one at once.
        write_lock = threading.Lock()

        def appender(index: int) -> Appender:
            # Used by this writer only; closed by the main thread once the writers are done.
            db = sqlite3.connect(path, isolation_level=None, timeout=60.0, check_same_thread=False)
            db.execute("PRAGMA synchronous=FULL")
            with lock:
                connections.append(db)
            stream = f"w{index % 8}"
            blob = json.dumps({"writer": index, "payload": PAYLOAD}).encode()

            def append(i: int, n: int) -> None:
                with write_lock:
                    db.execute("BEGIN IMMEDIATE")
                    db.execute("INSERT INTO records (stream, data) VALUES (?, ?)", (stream, blob))
                    db.execute("COMMIT")

            return append

        try:
            result = drive(writers, seconds, appender)
        finally:
            for db in connections:
                db.close()
            setup.close()
    result["mean_batch"] = 1.0
    return result


def run(quick: bool) -> dict[str, Any]:
    seconds = 0.25 if quick else 2.0
    results: dict[str, Any] = {}
    run_ledger(1, 0.1, True)  # warm-up: imports, first database
    for writers in WRITERS:
        results[str(writers)] = {
            "group": run_ledger(writers, seconds, group_commit=True),
            "one_tx": run_ledger(writers, seconds, group_commit=False),
            "raw": run_raw(writers, seconds),
        }
    results["ratios"] = {
        str(w): {
            "group_vs_one_tx": results[str(w)]["group"]["per_s"]
            / results[str(w)]["one_tx"]["per_s"],
            "group_vs_raw": results[str(w)]["group"]["per_s"] / results[str(w)]["raw"]["per_s"],
        }
        for w in WRITERS
    }
    results["target_group_vs_one_tx_at_64"] = 10.0
    results["target_met"] = results["ratios"]["64"]["group_vs_one_tx"] >= 10.0
    return results


def report(results: dict[str, Any]) -> str:
    lines = [
        f"{'writers':>7} {'variant':<7} {'appends/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'batch':>6}"
    ]
    for writers in WRITERS:
        for variant in VARIANTS:
            r = results[str(writers)][variant]
            lines.append(
                f"{writers:>7} {variant:<7} {r['per_s']:>11,.0f} {r['p50_ms']:>8.2f} "
                f"{r['p99_ms']:>8.2f} {r['mean_batch']:>6.1f}"
            )
    for writers, ratio in results["ratios"].items():
        lines.append(
            f"{writers:>3} writers: group/one_tx {ratio['group_vs_one_tx']:.1f}x, "
            f"group/raw {ratio['group_vs_raw']:.1f}x"
        )
    verdict = "met" if results["target_met"] else "MISSED"
    lines.append(f"target group/one_tx >= 10x at 64 writers: {verdict}")
    return "\n".join(lines)


def main() -> None:
    main_for(__doc__, run, report)
    print(f"machine: {machine()}")


if __name__ == "__main__":
    main()
