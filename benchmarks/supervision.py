"""Supervision: crash-to-serving latency by restart strategy, and shutdown time.

Run pinned to one core, like every single-process comparison::

    taskset -c 0 .venv/bin/python -m benchmarks.supervision [--quick] [--json PATH]

Each strategy supervises ``SIBLINGS`` counters; the middle one crashes.
Crash-to-serving runs from the crashing tell to the first reply from a *new*
incarnation of the last child the strategy restarts (the crashed one for
one_for_one, the last sibling for one_for_all and rest_for_one). A counter
answers ``n=1`` only from a fresh incarnation, so a reply from an incarnation
that was not stopped yet is recognised and the ask repeated. Restart backoff
is off (``min=max=0``) and intensity unlimited: the benchmark measures the
runtime's restart path, not the policy's waiting.

The in-run baseline is the cold start of one bare Pykka actor up to its first
reply: what a thread actor costs to bring up from nothing. Shutdown is the
time for ``ActorSystem.shutdown`` of the tree, against stopping as many
bare Pykka actors.
"""

from __future__ import annotations

import time
from typing import Any

import vibe_actors as va

from benchmarks._common import main_for, percentiles
from benchmarks.core import Crash, Inc, PykkaCounter, VibeCounter

perf = time.perf_counter

SIBLINGS = 13
STRATEGIES = (va.Strategy.ONE_FOR_ONE, va.Strategy.ONE_FOR_ALL, va.Strategy.REST_FOR_ONE)


def tree(strategy: va.Strategy) -> va.SupervisorSpec:
    return va.SupervisorSpec(
        name="root",
        strategy=strategy,
        intensity=1_000_000,
        period=1.0,
        backoff=va.BackoffSpec(min=0.0, max=0.0, random_factor=0.0),
        children=tuple(va.WorkerSpec(name=f"c{i}", agent=VibeCounter) for i in range(SIBLINGS)),
    )


def ask_fresh(ref: va.Ref) -> int:
    """Ask until a fresh incarnation (n == 1) answers; returns the number of asks."""
    asks = 1
    while ref.ask(Inc()).n != 1:
        asks += 1
    return asks


def crash_to_serving(strategy: va.Strategy, rounds: int) -> dict[str, Any]:
    system = va.ActorSystem(tree(strategy), va.SystemConfig(ask_timeout=30.0)).start()
    try:
        crashed = system.ref(f"c{SIBLINGS // 2}")
        last = crashed if strategy is va.Strategy.ONE_FOR_ONE else system.ref(f"c{SIBLINGS - 1}")
        samples, extra_asks = [], 0
        for _ in range(rounds + 5):  # the first 5 are warm-up
            for i in range(SIBLINGS):  # every incarnation has answered once: n == 1 is fresh
                system.ref(f"c{i}").ask(Inc())
            start = perf()
            crashed.tell(Crash())
            extra_asks += ask_fresh(last) - 1
            samples.append(perf() - start)
        restarts = system.cell(last.name).incarnation - 1
    finally:
        began = perf()
        system.shutdown()
        shutdown_s = perf() - began
    result = percentiles(samples[5:])
    result.update(restarts=restarts, stale_replies=extra_asks, shutdown_ms=shutdown_s * 1e3)
    return result


def pykka_cold_start(rounds: int) -> dict[str, Any]:
    samples = []
    for _ in range(rounds):
        start = perf()
        ref = PykkaCounter.start()
        ref.ask("inc")
        samples.append(perf() - start)
        ref.stop()
    return percentiles(samples)


def pykka_shutdown() -> float:
    refs = [PykkaCounter.start() for _ in range(SIBLINGS)]
    for ref in refs:
        ref.ask("inc")
    began = perf()
    for ref in reversed(refs):
        ref.stop()
    return (perf() - began) * 1e3


def run(quick: bool) -> dict[str, Any]:
    rounds = {"one_for_one": 50, "one_for_all": 10, "rest_for_one": 10} if quick else {
        "one_for_one": 2000, "one_for_all": 300, "rest_for_one": 500}  # fmt: skip
    results: dict[str, Any] = {"siblings": SIBLINGS}
    for strategy in STRATEGIES:
        results[strategy.value] = crash_to_serving(strategy, rounds[strategy.value])
    results["pykka_cold_start"] = pykka_cold_start(50 if quick else 1000)
    results["pykka_shutdown_ms"] = min(pykka_shutdown() for _ in range(3))
    base = results["pykka_cold_start"]["p50_us"]
    results["ratios"] = {
        f"{s.value}_p50_vs_pykka_cold_start": results[s.value]["p50_us"] / base for s in STRATEGIES
    }
    return results


def report(results: dict[str, Any]) -> str:
    lines = [f"crash-to-serving over {results['siblings']} siblings (us):"]
    for strategy in STRATEGIES:
        r = results[strategy.value]
        lines.append(
            f"  {strategy.value:<13} p50 {r['p50_us']:>8.0f}  p99 {r['p99_us']:>8.0f}  "
            f"p99.9 {r['p999_us']:>8.0f}  (stale replies {r['stale_replies']}, "
            f"shutdown {r['shutdown_ms']:.1f} ms)"
        )
    cold = results["pykka_cold_start"]
    lines.append(
        f"  pykka cold start + first reply: p50 {cold['p50_us']:.0f}  p99 {cold['p99_us']:.0f}; "
        f"stop {results['siblings']} pykka actors: {results['pykka_shutdown_ms']:.1f} ms"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main_for(__doc__, run, report)
