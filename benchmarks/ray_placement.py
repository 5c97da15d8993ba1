"""Ray placement: ask latency and throughput of a Ray-placed agent, a local one and raw Ray.

Run (starts a local Ray cluster on 127.0.0.1, about 3 s and 0.7 GB)::

    .venv/bin/python -m benchmarks.ray_placement [--quick] [--json PATH]

Needs the ``ray`` extra. In one run, on one counter agent:

* ``local``: the agent in a thread of this process (``ref.ask``);
* ``ray``: the same agent with ``placement: ray`` (``ref.ask`` through the proxy);
* ``raw_ray``: a plain Ray actor with the same counter, ``ray.get(actor.inc.remote())``
  (Ray's own cost, no argument, an int back, no supervision);
* ``raw_ray_msg``: the same plain actor called with the ``Inc`` message and
  answering a ``Count`` (Ray pickles both): the raw call a Ray user would write
  for the same exchange;
* ``host_ray``: our Ray host called directly with msgpack bytes (Ray + our codec,
  no proxy): the proxy's own cost is ``ray`` minus this;
* ``entity_ray``: the same counter as an active entity of a kind placed on Ray
  (one shard): the router, the proxy shard's mailbox and reply lane (entities are
  never asked in the asker's thread), the id crossing with the message.

Shapes: sequential asks (latency percentiles, and the rate one caller gets;
the variants take turns in rounds, so a busy moment of the shared machine
falls on all of them) and pipelined asks (``IN_FLIGHT`` outstanding:
throughput). Then CPU-bound work (``Burn``) on a pool of 1 and of 2 Ray-placed workers with ``num_cpus: 1``:
throughput should grow with the cores Ray has (2 here).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from typing import Any

import vibe_actors.ray as vray  # before Ray: sets its environment (loopback only)
from vibe_actors import (
    ActorSystem,
    EntitySpec,
    PoolSpec,
    SystemConfig,
    WorkerSpec,
    encode_msgpack,
)

from benchmarks._common import main_for, percentiles
from benchmarks._ray_agents import Burn, Counter, CounterEntity, Inc, RawCounter

import ray  # isort: skip - after vibe_actors.ray

perf = time.perf_counter
IN_FLIGHT = 200
TIMEOUT = 60.0


def _sequential(calls: dict[str, Callable[[], Any]], n: int, rounds: int = 6) -> dict[str, Any]:
    """Per variant: percentiles and rate of ``n`` one-at-a-time calls, in alternating rounds."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():  # warm-up
        for _ in range(min(200, n)):
            call()
    per_round = max(1, n // rounds)
    names = list(calls)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            call, out = calls[name], samples[name]
            for _ in range(per_round):
                t0 = perf()
                call()
                out.append(perf() - t0)
    return {name: {"per_s": len(s) / sum(s), **percentiles(s)} for name, s in samples.items()}


def _pipelined(submit: Callable[[], Any], wait: Callable[[list[Any]], None], n: int) -> float:
    start = perf()
    done = 0
    while done < n:
        batch = [submit() for _ in range(min(IN_FLIGHT, n - done))]
        wait(batch)
        done += len(batch)
    return n / (perf() - start)


def _wait_futures(futures: list[Any]) -> None:
    for future in futures:
        future.wait(TIMEOUT)


def _counters(settings: vray.RaySettings, data_dir: str) -> ActorSystem:
    specs = [
        WorkerSpec(name="local", agent=Counter),
        WorkerSpec(name="placed", agent=vray.placed(Counter, settings)),
        WorkerSpec(
            name="counters",
            agent=vray.placed(CounterEntity, settings),
            entity=EntitySpec(shards=1, passivate_after=0),
        ),
    ]
    return ActorSystem(specs, SystemConfig(data_dir=data_dir, ask_timeout=TIMEOUT)).start()


def _asks(system: ActorSystem, n: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    raw = ray.remote(RawCounter).options(max_restarts=0, max_task_retries=0).remote()
    host = ray.get_actor("placed", namespace="vibe-bench")
    inc = encode_msgpack(Inc())
    entity = system.entity("counters", "c")
    calls: dict[str, tuple[Callable[[], Any], Callable[[], Any], Callable[[list[Any]], None]]] = {
        "local": (
            lambda: system.ref("local").ask(Inc(), timeout=TIMEOUT),
            lambda: system.ref("local").ask_future(Inc(), timeout=TIMEOUT),
            _wait_futures,
        ),
        "ray": (
            lambda: system.ref("placed").ask(Inc(), timeout=TIMEOUT),
            lambda: system.ref("placed").ask_future(Inc(), timeout=TIMEOUT),
            _wait_futures,
        ),
        "entity_ray": (
            lambda: entity.ask(Inc(), timeout=TIMEOUT),
            lambda: entity.ask_future(Inc(), timeout=TIMEOUT),
            _wait_futures,
        ),
        "raw_ray": (
            lambda: ray.get(raw.inc.remote(), timeout=TIMEOUT),
            lambda: raw.inc.remote(),
            lambda refs: ray.get(refs, timeout=TIMEOUT),
        ),
        "raw_ray_msg": (
            lambda: ray.get(raw.inc_message.remote(Inc()), timeout=TIMEOUT),
            lambda: raw.inc_message.remote(Inc()),
            lambda refs: ray.get(refs, timeout=TIMEOUT),
        ),
        "host_ray": (
            lambda: ray.get(host.handle.remote(inc), timeout=TIMEOUT),
            lambda: host.handle.remote(inc),
            lambda refs: ray.get(refs, timeout=TIMEOUT),
        ),
    }
    results.update(_sequential({name: call for name, (call, _, _) in calls.items()}, n))
    for name, (_, submit, wait) in calls.items():
        results[name]["pipelined_per_s"] = _pipelined(submit, wait, n * 2)
    ray.kill(raw)
    return results


def _scaling(settings: vray.RaySettings, data_dir: str, jobs: int, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for workers in (1, 2):
        spec = WorkerSpec(
            name=f"burn{workers}",
            agent=vray.placed(Counter, settings),
            pool=PoolSpec(size=workers, routing="round_robin"),
        )
        system = ActorSystem([spec], SystemConfig(data_dir=data_dir, ask_timeout=TIMEOUT)).start()
        try:
            ref = system.ref(f"burn{workers}")
            ref.ask(Burn(rounds=10), timeout=TIMEOUT)  # warm
            start = perf()
            futures = [ref.ask_future(Burn(rounds=rounds), timeout=TIMEOUT) for _ in range(jobs)]
            _wait_futures(futures)
            out[f"workers_{workers}_jobs_per_s"] = jobs / (perf() - start)
        finally:
            system.shutdown(timeout=30)
    out["speedup"] = out["workers_2_jobs_per_s"] / out["workers_1_jobs_per_s"]
    return out


def run(quick: bool) -> dict[str, Any]:
    n, jobs, rounds = (200, 8, 20_000) if quick else (3000, 40, 400_000)
    temp = tempfile.mkdtemp(prefix="vr-bench-", dir="/tmp")
    ray.init(
        namespace="vibe-bench",
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=temp,
    )
    try:
        settings = vray.RaySettings(namespace="vibe-bench")
        system = _counters(settings, temp)
        try:
            results = _asks(system, n)
        finally:
            system.shutdown(timeout=30)
        cpu = vray.RaySettings(namespace="vibe-bench", num_cpus=1)
        results["scaling"] = _scaling(cpu, temp, jobs, rounds)
    finally:
        ray.shutdown()
    placed = results["ray"]
    for baseline in ("raw_ray", "raw_ray_msg"):
        raw = results[baseline]
        results[f"overhead_vs_{baseline}"] = {
            "p50": placed["p50_us"] / raw["p50_us"] - 1,
            "sequential_rate": raw["per_s"] / placed["per_s"] - 1,
            "pipelined_rate": raw["pipelined_per_s"] / placed["pipelined_per_s"] - 1,
        }
    return results


def report(results: dict[str, Any]) -> str:
    lines = [
        "| calls | p50 µs | p99 µs | sequential asks/s | pipelined asks/s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in ("local", "ray", "entity_ray", "host_ray", "raw_ray_msg", "raw_ray"):
        r = results[name]
        lines.append(
            f"| {name} | {r['p50_us']:.0f} | {r['p99_us']:.0f} | {r['per_s']:,.0f} "
            f"| {r['pipelined_per_s']:,.0f} |"
        )
    lines.append("")
    for baseline in ("raw_ray_msg", "raw_ray"):
        o = results[f"overhead_vs_{baseline}"]
        lines.append(
            f"placement: ray over {baseline}: p50 {o['p50']:+.0%}, sequential rate "
            f"{o['sequential_rate']:+.0%}, pipelined rate {o['pipelined_rate']:+.0%}"
        )
    e, r = results["entity_ray"], results["ray"]
    lines.append(
        f"entity on Ray over placement: ray: p50 {e['p50_us'] / r['p50_us'] - 1:+.0%}, "
        f"pipelined rate {e['pipelined_per_s'] / r['pipelined_per_s']:.2f}x"
    )
    s = results["scaling"]
    lines += [
        f"CPU-bound Burn on Ray: 1 worker {s['workers_1_jobs_per_s']:.1f} jobs/s, "
        f"2 workers {s['workers_2_jobs_per_s']:.1f} jobs/s (x{s['speedup']:.2f})",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main_for(__doc__ or "", run, report)
