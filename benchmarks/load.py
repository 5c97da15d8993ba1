"""Open-loop latency under load: asks at fixed arrival rates, vibe_actors against bare Pykka.

Run pinned to one core, like every single-process comparison::

    taskset -c 0 .venv/bin/python -m benchmarks.load [--quick] [--json PATH]

For each system the capacity is measured first, in the same run and through
the same harness (a sender thread, the actor, a collector thread waiting on
the replies in order). Then asks are sent on a fixed schedule at 10, 50, 80
and 95% of that capacity, and every latency is taken from the ask's
*intended* send time, not the time the sender got round to it: a sender that
falls behind cannot hide the queueing (no coordinated omission). The knee is
the highest offered load whose p99 stays within ``KNEE_FACTOR`` times the p99
at 10% load.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

from benchmarks._common import main_for, percentiles
from benchmarks.core import Variant, pykka_variant, vibe_variant

perf = time.perf_counter

FRACTIONS = (0.1, 0.5, 0.8, 0.95)
KNEE_FACTOR = 3.0
SLEEP_SLACK = 100e-6


def _collector(variant: Variant, pending: queue.SimpleQueue[Any], latencies: list[float]) -> None:
    wait, get = variant.ask_wait, pending.get
    while True:
        item = get()
        if item is None:
            return
        intended, future = item
        wait(future)
        latencies.append(perf() - intended)


def open_loop(variant: Variant, rate: float | None, count: int) -> dict[str, Any]:
    """Send ``count`` asks at ``rate`` per second (None: all at once); latencies from intent."""
    pending: queue.SimpleQueue[Any] = queue.SimpleQueue()
    latencies: list[float] = []
    collector = threading.Thread(target=_collector, args=(variant, pending, latencies))
    collector.start()
    start_ask, put = variant.ask_start, pending.put
    began = perf()
    sent = 0
    while sent < count:
        now = perf()
        due = count if rate is None else min(count, int((now - began) * rate) + 1)
        if due <= sent:
            # A sleep overshoots by ~50 us: sleep only the bulk of a long gap, then
            # yield (sleep(0) releases the GIL) until the send is due.
            gap = began + sent / rate - now  # type: ignore[operator]
            time.sleep(gap - SLEEP_SLACK if gap > 2 * SLEEP_SLACK else 0)
            continue
        while sent < due:  # behind schedule: catch up, stamped with the intended times
            put((began if rate is None else began + sent / rate, start_ask()))
            sent += 1
    put(None)
    collector.join()
    elapsed = perf() - began
    result = percentiles(latencies)
    result["offered_per_s"] = rate if rate is not None else None
    result["achieved_per_s"] = count / elapsed
    return result


def measure(variant: Variant, quick: bool) -> dict[str, Any]:
    seconds = 0.1 if quick else 2.0
    open_loop(variant, None, 2000)  # warm-up
    capacity_count = 5_000 if quick else 100_000
    capacity = max(
        open_loop(variant, None, capacity_count)["achieved_per_s"] for _ in range(1 if quick else 3)
    )
    points = {}
    for fraction in FRACTIONS:
        rate = capacity * fraction
        points[str(fraction)] = open_loop(variant, rate, max(100, int(rate * seconds)))
    base_p99 = points[str(FRACTIONS[0])]["p99_us"]
    knee = FRACTIONS[0]
    for fraction in FRACTIONS:
        if points[str(fraction)]["p99_us"] <= KNEE_FACTOR * base_p99:
            knee = fraction
        else:
            break
    return {"capacity_per_s": capacity, "points": points, "knee_fraction": knee}


def run(quick: bool) -> dict[str, Any]:
    vibe, _system = vibe_variant()
    pykka = pykka_variant()
    results: dict[str, Any] = {"fractions": list(FRACTIONS), "knee_factor": KNEE_FACTOR}
    try:
        for variant in (vibe, pykka):
            results[variant.name] = measure(variant, quick)
    finally:
        vibe.stop()
        pykka.stop()
    results["ratios"] = {
        "capacity_vs_pykka": results["vibe_actors"]["capacity_per_s"]
        / results["pykka"]["capacity_per_s"],
        **{
            f"p99_vs_pykka_at_{fraction}": results["vibe_actors"]["points"][str(fraction)]["p99_us"]
            / results["pykka"]["points"][str(fraction)]["p99_us"]
            for fraction in FRACTIONS
        },
    }
    return results


def report(results: dict[str, Any]) -> str:
    lines = []
    for name in ("vibe_actors", "pykka"):
        r = results[name]
        lines.append(
            f"{name}: capacity {r['capacity_per_s']:,.0f} asks/s, knee at {r['knee_fraction']:.0%}"
        )
        for fraction, p in r["points"].items():
            lines.append(
                f"  {float(fraction):>4.0%} offered {p['offered_per_s']:>10,.0f}/s achieved "
                f"{p['achieved_per_s']:>10,.0f}/s  p50 {p['p50_us']:>9.1f}  p99 {p['p99_us']:>9.1f}"
                f"  p99.9 {p['p999_us']:>9.1f} us"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main_for(__doc__, run, report)
