"""Scale: throughput and memory with 1..10 000 agents, start/stop time, pubsub fan-out.

Every point runs in a fresh child process pinned to core 0, so memory figures
do not mix and a point's garbage does not slow the next::

    .venv/bin/python -m benchmarks.scale [--quick] [--json PATH]

Per agent count N, vibe_actors and (as the in-run baseline) bare Pykka:

* RSS per idle agent: the process's RSS (``VmRSS``) after N idle counters
  started, minus before, over N; measured after a one-agent warm-up system,
  so imports and lazily built machinery are not charged to the agents;
* start time of the N agents (the whole tree confirmed started), and stop time;
* throughput: pipelined asks (``IN_FLIGHT`` outstanding), round-robin over
  the N agents.

PubSub fan-out (vibe_actors.agents.pubsub) to 1..1000 subscribers, against
the same fan-out by hand; skipped, saying so, if that module is missing.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pykka

import vibe_actors as va

from benchmarks._common import main_for
from benchmarks.core import Inc, PykkaCounter, VibeCounter, configure_logging

perf = time.perf_counter

AGENTS = (1, 10, 100, 1_000, 10_000)
SUBSCRIBERS = (1, 10, 100, 1_000)
IN_FLIGHT = 1000


def rss_kib() -> int:
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def round_robin(
    start: Callable[[int], Any], wait: Callable[[Any], Any], n: int, total: int
) -> float:
    begin = perf()
    done = 0
    while done < total:
        futures = [start((done + i) % n) for i in range(IN_FLIGHT)]
        for future in futures:
            wait(future)
        done += IN_FLIGHT
    return done / (perf() - begin)


def _vibe_tree(n: int) -> va.SupervisorSpec:
    return va.SupervisorSpec(
        name="root",
        children=tuple(va.WorkerSpec(name=f"a{i}", agent=VibeCounter) for i in range(n)),
    )


def child_vibe(n: int, total: int) -> dict[str, Any]:
    config = va.SystemConfig(ask_timeout=120.0, start_timeout=120.0)
    va.ActorSystem(_vibe_tree(1), config).start().shutdown()  # warm-up
    gc.collect()
    before = rss_kib()
    began = perf()
    system = va.ActorSystem(_vibe_tree(n), config).start()
    start_s = perf() - began
    gc.collect()
    after = rss_kib()
    refs, msg = [system.ref(f"a{i}") for i in range(n)], Inc()
    round_robin(lambda i: refs[i].ask_future(msg), lambda f: f.wait(), n, IN_FLIGHT)  # warm-up
    per_s = round_robin(lambda i: refs[i].ask_future(msg), lambda f: f.wait(), n, total)
    began = perf()
    system.shutdown()
    stop_s = perf() - began
    return _figures(n, before, after, start_s, stop_s, per_s)


def child_pykka(n: int, total: int) -> dict[str, Any]:
    PykkaCounter.start().stop()  # warm-up
    gc.collect()
    before = rss_kib()
    began = perf()
    refs = [PykkaCounter.start() for _ in range(n)]
    for ref in refs:  # started = answering
        ref.ask("inc")
    start_s = perf() - began
    gc.collect()
    after = rss_kib()
    per_s = round_robin(lambda i: refs[i].ask("inc", block=False), lambda f: f.get(), n, total)
    began = perf()
    pykka.ActorRegistry.stop_all()
    stop_s = perf() - began
    return _figures(n, before, after, start_s, stop_s, per_s)


def _figures(
    n: int, before: int, after: int, start_s: float, stop_s: float, per_s: float
) -> dict[str, Any]:
    return {
        "agents": n,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "rss_per_agent_kib": (after - before) / n,
        "start_ms": start_s * 1e3,
        "stop_ms": stop_s * 1e3,
        "pipelined_ask_per_s": per_s,
    }


def in_child(*args: str) -> dict[str, Any]:
    """Run ``benchmarks.scale --child ARGS`` pinned to core 0; its JSON line is the result."""
    out = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-m", "benchmarks.scale", "--child", *args],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"scale child {args} failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool) -> dict[str, Any]:
    total = str(IN_FLIGHT * (5 if quick else 50))
    agents = AGENTS[:4] if quick else AGENTS
    results: dict[str, Any] = {"agents": list(agents), "in_flight": IN_FLIGHT}
    for system in ("vibe_actors", "pykka"):
        results[system] = {str(n): in_child(system, str(n), total) for n in agents}
    results["ratios"] = {
        f"{key}_vs_pykka_at_{n}": results["vibe_actors"][str(n)][key]
        / results["pykka"][str(n)][key]
        for n in agents
        for key in ("pipelined_ask_per_s", "rss_per_agent_kib", "start_ms")
    }
    if importlib.util.find_spec("vibe_actors.agents.pubsub") is None:
        results["pubsub"] = {"skipped": "vibe_actors.agents.pubsub does not exist yet"}
    else:
        subscribers = SUBSCRIBERS[:3] if quick else SUBSCRIBERS
        events = 5 if quick else 50_000
        results["pubsub"] = {
            str(n): in_child("pubsub", str(n), str(min(1000, max(10, events // n))))
            for n in subscribers
        }
    return results


def report(results: dict[str, Any]) -> str:
    lines = [
        f"{'system':<12} {'agents':>7} {'KiB/agent':>10} {'start ms':>9} {'stop ms':>9} "
        f"{'asks/s':>10}"
    ]
    for system in ("vibe_actors", "pykka"):
        for r in results[system].values():
            lines.append(
                f"{system:<12} {r['agents']:>7} {r['rss_per_agent_kib']:>10.1f} "
                f"{r['start_ms']:>9.1f} {r['stop_ms']:>9.1f} {r['pipelined_ask_per_s']:>10,.0f}"
            )
    pubsub = results["pubsub"]
    if "skipped" in pubsub:
        lines.append(f"pubsub fan-out skipped: {pubsub['skipped']}")
    else:
        for n, r in pubsub.items():
            lines.append(
                f"pubsub -> {n:>4} subscribers: {r['deliveries_per_s']:>10,.0f} deliveries/s "
                f"(by hand {r['by_hand_deliveries_per_s']:,.0f}/s, {r['vs_by_hand']:.2f}x); "
                f"publish p50 {r['publish']['p50_us']:.0f} us"
            )
    return "\n".join(lines)


def child_main(args: list[str]) -> None:
    configure_logging()
    kind, n, count = args[0], int(args[1]), int(args[2])
    if kind == "pubsub":
        from benchmarks._fanout import fanout  # only when pubsub exists: checked by run()

        result = fanout(n, count)
    else:
        result = (child_vibe if kind == "vibe_actors" else child_pykka)(n, count)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        main_for(__doc__, run, report)
