"""Helpers shared by the benchmark modules: percentiles, the command line, the JSON file."""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
from collections.abc import Callable
from time import perf_counter as perf
from typing import Any

from benchmarks.core import configure_logging, machine

__all__ = ["Writer", "drive_writers", "main_for", "percentiles"]


#: One writer thread's work: ``write(n)`` does its n-th write (durable when it returns);
#: ``close`` (or None) runs in that thread at its end.
Writer = tuple[Callable[[int], Any], Callable[[], Any] | None]


def drive_writers(
    writers: int, seconds: float, make_writer: Callable[[int], Writer]
) -> dict[str, Any]:
    """``writers`` threads, started together, write in a loop until ``seconds`` passed.

    ``make_writer(index)`` runs in writer ``index``'s own thread (a SQLite
    connection must be opened there). Returns ``writes``, ``per_s`` and the
    latency ``p50_ms``/``p99_ms``. A writer that raises fails the run:
    RuntimeError naming the first error, once every thread ended.
    """
    barrier = threading.Barrier(writers + 1)
    counts = [0] * writers
    latencies: list[list[float]] = [[] for _ in range(writers)]
    stop = [float("inf")]
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            write, close = make_writer(index)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            barrier.abort()
            return
        mine = latencies[index]
        n = 0
        try:
            barrier.wait()  # broken when another writer failed to start
            while (started := perf()) < stop[0]:
                write(n)
                mine.append(perf() - started)
                n += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            if close is not None:
                close()
        counts[index] = n

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(writers)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # reported below, once all ended
        barrier.wait()
    began = perf()
    stop[0] = began + seconds
    for thread in threads:
        thread.join()
    elapsed = perf() - began
    if errors:
        raise RuntimeError(f"{len(errors)} writer(s) failed: {errors[0]!r}")
    figures = percentiles([s for per_thread in latencies for s in per_thread], scale=1e3)
    return {
        "writes": sum(counts),
        "per_s": sum(counts) / elapsed,
        "p50_ms": figures["p50_us"],  # scale 1e3: milliseconds
        "p99_ms": figures["p99_us"],
    }


def percentiles(samples: list[float], scale: float = 1e6) -> dict[str, float]:
    """p50/p99/p99.9 (and the max) of ``samples`` seconds, in microseconds by default."""
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)
    last = len(ordered) - 1

    def at(q: float) -> float:
        return ordered[min(last, int(len(ordered) * q))] * scale

    return {
        "n": len(ordered),
        "p50_us": at(0.5),
        "p99_us": at(0.99),
        "p999_us": at(0.999),
        "max_us": ordered[last] * scale,
    }


def main_for(
    doc: str, run: Callable[[bool], dict[str, Any]], report: Callable[[dict[str, Any]], str]
) -> None:
    """The command line every benchmark module shares: ``[--quick] [--json PATH]``."""
    configure_logging()
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: prove it runs (CI)")
    parser.add_argument("--json", help="write raw figures and the machine to this file")
    args = parser.parse_args()
    results = run(args.quick)
    print(report(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(
                {"machine": machine(), "quick": args.quick, "results": results}, out, indent=2
            )
