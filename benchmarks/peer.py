"""A peer: ping-pong and pipelined asks on xoscar's in-process actor pool, against vibe_actors.

Run pinned to one core, like every single-process comparison::

    taskset -c 0 .venv/bin/python -m benchmarks.peer [--quick] [--json PATH]

xoscar (``pip install xoscar``, the ``bench`` extra; never a runtime
dependency) is the fairest in-process Python peer: an asyncio actor pool
(``create_actor_pool(n_process=0)``), actors called from the same process.
The same shapes as benchmarks/core.py on the same counter: sequential asks
(ping-pong latency) and pipelined asks with ``IN_FLIGHT`` outstanding.
vibe_actors is measured both ways a caller can use it: from threads
(``ask`` / ``ask_future``) and from asyncio (``ask_async`` with ``gather``,
the same calling convention as xoscar). If xoscar is not installed the peer
half is skipped and says why.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import time
from typing import Any

from benchmarks._common import main_for, percentiles
from benchmarks.core import Inc, ask_latency, pipelined_ask, vibe_variant

perf = time.perf_counter

IN_FLIGHT = 1000


async def _async_shapes(call: Any, asks: int, pipelined: int) -> dict[str, Any]:
    """Sequential latency and pipelined throughput of the coroutine factory ``call``."""
    for _ in range(200):  # warm-up
        await call()
    samples = []
    for _ in range(asks):
        start = perf()
        await call()
        samples.append(perf() - start)
    best = 0.0
    for _ in range(3):
        start = perf()
        for _ in range(pipelined // IN_FLIGHT):
            await asyncio.gather(*[call() for _ in range(IN_FLIGHT)])
        best = max(best, pipelined / (perf() - start))
    return {"ask": percentiles(samples), "pipelined_ask_per_s": best}


async def _xoscar(asks: int, pipelined: int) -> dict[str, Any]:
    import xoscar as xo  # the bench extra; checked with find_spec before

    class Counter(xo.Actor):
        def __init__(self) -> None:
            super().__init__()
            self.n = 0

        def inc(self) -> int:
            self.n += 1
            return self.n

    pool = await xo.create_actor_pool("127.0.0.1", n_process=0)
    async with pool:
        ref = await xo.create_actor(Counter, address=pool.external_address, uid="counter")
        result = await _async_shapes(ref.inc, asks, pipelined)
        await xo.destroy_actor(ref)
    return result


def run(quick: bool) -> dict[str, Any]:
    asks = 200 if quick else 10_000
    pipelined = IN_FLIGHT * (2 if quick else 50)
    results: dict[str, Any] = {"in_flight": IN_FLIGHT}
    vibe, system = vibe_variant()
    try:
        pipelined_ask(vibe, pipelined)  # warm-up
        results["vibe_threads"] = {
            "ask": ask_latency(vibe, asks),
            "pipelined_ask_per_s": max(pipelined_ask(vibe, pipelined) for _ in range(3)),
        }
        ref, msg = system.ref("counter"), Inc()
        results["vibe_asyncio"] = asyncio.run(
            _async_shapes(lambda: ref.ask_async(msg), asks, pipelined)
        )
    finally:
        vibe.stop()
    if importlib.util.find_spec("xoscar") is None:
        results["xoscar"] = {"skipped": "xoscar is not installed (pip install '.[bench]')"}
        return results
    results["xoscar"] = asyncio.run(_xoscar(asks, pipelined))
    results["xoscar"]["version"] = importlib.metadata.version("xoscar")
    xo_r = results["xoscar"]
    results["ratios"] = {
        f"{name}_pipelined_vs_xoscar": results[name]["pipelined_ask_per_s"]
        / xo_r["pipelined_ask_per_s"]
        for name in ("vibe_threads", "vibe_asyncio")
    } | {
        f"{name}_ask_p50_vs_xoscar": results[name]["ask"]["p50_us"] / xo_r["ask"]["p50_us"]
        for name in ("vibe_threads", "vibe_asyncio")
    }
    return results


def report(results: dict[str, Any]) -> str:
    lines = [f"{'system':<13} {'pipelined ask/s':>16} {'ask p50 us':>11} {'ask p99 us':>11}"]
    for name in ("vibe_threads", "vibe_asyncio", "xoscar"):
        r = results[name]
        if "skipped" in r:
            lines.append(f"{name:<13} skipped: {r['skipped']}")
            continue
        lines.append(
            f"{name:<13} {r['pipelined_ask_per_s']:>16,.0f} {r['ask']['p50_us']:>11.1f} "
            f"{r['ask']['p99_us']:>11.1f}"
        )
    lines.extend(f"{key}: {value:.2f}x" for key, value in results.get("ratios", {}).items())
    return "\n".join(lines)


if __name__ == "__main__":
    main_for(__doc__, run, report)
