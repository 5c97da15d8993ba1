"""Core runtime benchmark: vibe_actors against bare Pykka and a raw SimpleQueue handoff.

Run pinned to one core, like every variant (``make bench`` does)::

    taskset -c 0 .venv/bin/python -m benchmarks.core [--quick] [--json PATH]

Absolute numbers are noise on a shared machine; the ratios between variants
measured in the same run are the result. ``--quick`` only proves that every
benchmark still runs (CI); it asserts no timing.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pykka
import structlog

import vibe_actors as va

perf = time.perf_counter


# -- the three systems under test -------------------------------------------------


class Inc(va.Message):
    pass


class Count(va.Message):
    n: int


class Crash(va.Message):
    pass


class VibeCounter(va.Agent):
    def on_start(self) -> None:
        self.n = 0

    @va.handler
    def inc(self, msg: Inc) -> Count:
        self.n += 1
        return Count(n=self.n)

    @va.handler
    def crash(self, msg: Crash) -> None:
        raise RuntimeError("benchmark crash")


class PykkaCounter(pykka.ThreadingActor):
    use_daemon_thread = True

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def on_receive(self, message: Any) -> Any:
        self.n += 1
        return self.n


class RawCounter:
    """Two threads and a SimpleQueue: the physical limit of a thread actor in CPython."""

    def __init__(self) -> None:
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.n = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        get = self.inbox.get
        while True:
            item = get()
            if item is None:
                return
            self.n += 1
            reply = item[1]
            if reply is not None:
                reply[0] = self.n
                reply[1].release()

    def tell(self, message: Any) -> None:
        self.inbox.put((message, None))

    def ask_start(self, message: Any) -> list[Any]:
        lock = threading.Lock()
        lock.acquire()
        slot = [None, lock]
        self.inbox.put((message, slot))
        return slot

    @staticmethod
    def ask_wait(slot: list[Any]) -> Any:
        slot[1].acquire()
        return slot[0]

    def stop(self) -> None:
        self.inbox.put(None)
        self.thread.join()


class Variant:
    """One system's tell / ask / pipelined-ask operations over one counter."""

    def __init__(
        self,
        name: str,
        tell: Callable[[], None],
        ask: Callable[[], Any],
        ask_start: Callable[[], Any],
        ask_wait: Callable[[Any], Any],
        stop: Callable[[], None],
    ) -> None:
        self.name, self.tell, self.ask = name, tell, ask
        self.ask_start, self.ask_wait, self.stop = ask_start, ask_wait, stop


def vibe_variant() -> tuple[Variant, va.ActorSystem]:
    tree = va.SupervisorSpec(
        name="root",
        intensity=1_000_000,
        period=1.0,
        backoff=va.BackoffSpec(min=0.0, max=0.0, random_factor=0.0),
        children=(va.WorkerSpec(name="counter", agent=VibeCounter),),
    )
    system = va.ActorSystem(tree, va.SystemConfig(ask_timeout=60.0)).start()
    ref = system.ref("counter")
    msg = Inc()
    variant = Variant(
        "vibe_actors",
        tell=lambda: ref.tell(msg),
        ask=lambda: ref.ask(msg),
        ask_start=lambda: ref.ask_future(msg),
        ask_wait=lambda f: f.wait(),
        stop=system.shutdown,
    )
    return variant, system


def pykka_variant() -> Variant:
    ref = PykkaCounter.start()
    return Variant(
        "pykka",
        tell=lambda: ref.tell("inc"),
        ask=lambda: ref.ask("inc"),
        ask_start=lambda: ref.ask("inc", block=False),
        ask_wait=lambda f: f.get(),
        stop=ref.stop,
    )


def raw_variant() -> Variant:
    raw = RawCounter()
    return Variant(
        "simplequeue",
        tell=lambda: raw.tell("inc"),
        ask=lambda: raw.ask_wait(raw.ask_start("inc")),
        ask_start=lambda: raw.ask_start("inc"),
        ask_wait=raw.ask_wait,
        stop=raw.stop,
    )


# -- measurements -----------------------------------------------------------------


def tell_throughput(v: Variant, n: int) -> float:
    tell = v.tell
    start = perf()
    for _ in range(n):
        tell()
    v.ask()  # the ask is handled after every tell: all n are done
    return n / (perf() - start)


def ask_latency(v: Variant, n: int) -> dict[str, float]:
    ask = v.ask
    samples = []
    for _ in range(n):
        start = perf()
        ask()
        samples.append(perf() - start)
    samples.sort()
    return {
        "p50_us": samples[len(samples) // 2] * 1e6,
        "p99_us": samples[int(len(samples) * 0.99)] * 1e6,
        "p999_us": samples[min(len(samples) - 1, int(len(samples) * 0.999))] * 1e6,
    }


def pipelined_ask(v: Variant, total: int, in_flight: int = 1000) -> float:
    start_ask, wait = v.ask_start, v.ask_wait
    start = perf()
    done = 0
    while done < total:
        futures = [start_ask() for _ in range(in_flight)]
        for future in futures:
            wait(future)
        done += in_flight
    return done / (perf() - start)


def restart_latency(system: va.ActorSystem, n: int) -> dict[str, float]:
    """Crash-to-serving: from the crashing tell to the new incarnation's first reply."""
    ref = system.ref("counter")
    samples = []
    for _ in range(n):
        start = perf()
        ref.tell(Crash())
        ref.ask(Inc())
        samples.append(perf() - start)
    samples.sort()
    return {
        "p50_us": samples[len(samples) // 2] * 1e6,
        "p99_us": samples[int(len(samples) * 0.99)] * 1e6,
    }


def best_of(repeats: int, fn: Callable[[], float]) -> float:
    return max(fn() for _ in range(repeats))


def run(quick: bool) -> dict[str, Any]:
    scale = 0.02 if quick else 1.0
    tells = int(300_000 * scale)
    asks = int(20_000 * scale)
    pipelined = max(1000, int(200_000 * scale) // 1000 * 1000)
    repeats = 1 if quick else 3
    results: dict[str, Any] = {}
    vibe, system = vibe_variant()
    variants = [vibe, pykka_variant(), raw_variant()]
    try:
        for v in variants:  # warm-up
            tell_throughput(v, min(tells, 10_000))
            pipelined_ask(v, 1000)
        for v in variants:
            results[v.name] = {
                "tell_per_s": best_of(repeats, lambda v=v: tell_throughput(v, tells)),
                "pipelined_ask_per_s": best_of(repeats, lambda v=v: pipelined_ask(v, pipelined)),
                "ask": ask_latency(v, asks),
            }
        results["vibe_actors"]["restart"] = restart_latency(system, 50 if quick else 1000)
    finally:
        for v in variants:
            v.stop()
    vibe_r, pykka_r, raw_r = results["vibe_actors"], results["pykka"], results["simplequeue"]
    results["ratios"] = {
        "tell_vs_pykka": vibe_r["tell_per_s"] / pykka_r["tell_per_s"],
        "tell_vs_simplequeue": vibe_r["tell_per_s"] / raw_r["tell_per_s"],
        "pipelined_ask_vs_pykka": vibe_r["pipelined_ask_per_s"] / pykka_r["pipelined_ask_per_s"],
        "pipelined_ask_vs_simplequeue": vibe_r["pipelined_ask_per_s"]
        / raw_r["pipelined_ask_per_s"],
        "ask_p50_vs_pykka": vibe_r["ask"]["p50_us"] / pykka_r["ask"]["p50_us"],
    }
    return results


def machine() -> dict[str, Any]:
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "pinned_to": affinity,
        "pykka": importlib.metadata.version("pykka"),
        "msgspec": importlib.metadata.version("msgspec"),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return platform.processor() or "unknown"
    return platform.processor() or "unknown"


def report(results: dict[str, Any]) -> str:
    lines = [
        f"{'system':<12} {'tell/s':>12} {'pipelined ask/s':>16} {'ask p50 us':>11} {'ask p99 us':>11}"
    ]
    for name in ("vibe_actors", "pykka", "simplequeue"):
        r = results[name]
        lines.append(
            f"{name:<12} {r['tell_per_s']:>12,.0f} {r['pipelined_ask_per_s']:>16,.0f} "
            f"{r['ask']['p50_us']:>11.1f} {r['ask']['p99_us']:>11.1f}"
        )
    restart = results["vibe_actors"]["restart"]
    lines.append(
        f"crash-to-serving restart: p50 {restart['p50_us']:.0f} us, p99 {restart['p99_us']:.0f} us"
    )
    lines.extend(f"{key}: {value:.2f}x" for key, value in results["ratios"].items())
    return "\n".join(lines)


def configure_logging() -> None:
    """Production-like logging (JSON lines, tracebacks formatted) into /dev/null.

    Crashes and restarts are logged with their traceback, and that cost is part
    of crash-to-serving; the terminal's cost is not.
    """
    sink = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(sink),
    )


def main() -> None:
    # benchmarks._common builds on this module: imported here, once both exist.
    from benchmarks._common import main_for

    main_for(__doc__, run, report)
    print(f"machine: {machine()}")


if __name__ == "__main__":
    main()
