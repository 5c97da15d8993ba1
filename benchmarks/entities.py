"""Entities: a million in one process, activation, the hop against a plain agent, durable writes.

Every part runs in a fresh child process pinned to core 0 (``taskset -c 0``), so memory
figures do not mix and one part's garbage does not slow the next::

    .venv/bin/python -m benchmarks.entities [--quick] [--json PATH]

Parts, each with its baseline measured in the same run:

* ``million``: ``tell`` one tiny message to N distinct ids of an in-memory kind (state: a
  one-int Struct), then one ``ask`` per shard (FIFO per shard: every tell was handled). RSS
  (``/proc/self/statm``) before and after, per entity, and the state's own size measured
  apart (tracemalloc over 10 000 states). Then every entity is passivated by idle time
  (``ManualClock`` advanced past ``passivate_after``; waited until ``active == 0``) and the
  RSS read again: after ``gc.collect()``, and after glibc's ``malloc_trim(0)``; the live
  Python blocks (``sys.getallocatedblocks``) say whether the objects were freed.
  Full: N = 1 000 000 (and N = the Pykka N, for the ratio); quick: 20 000.
* ``pykka``: the baseline of ``million``, one ``pykka.ThreadingActor`` per id, started and
  sent one message each, up to ``PYKKA_N`` actors or ``PYKKA_SECONDS`` (whichever first).
* ``activation``: 100 000 new ids. Rate: ``tell`` to each new id, then an ask per shard.
  First-message latency: ``system.entity(kind, id).ask(msg)`` to a never-seen id, timed
  with ``perf_counter`` around the call in the caller's thread (building the ref, the
  activation, the handler, the reply). Baselines in the same process: the same ask to
  the same ids once active, and the same ask to a plain agent.
* ``hop``: one active entity against one plain agent, same message and same handler
  work: ``tell`` throughput (n tells then an ask), sequential ``ask`` latency and
  pipelined asks (1000 in flight), best of 5 rounds, alternating.
* ``durable``: 64 threads, each asking a state-changing message of its own id in a loop
  (one ask in flight per thread), with the default 8 shards and with 1 shard, against
  64 threads doing the same writes directly:
  one SQLite transaction per write (each thread its own connection, opened by the
  runtime's own ``open_database``: WAL, ``synchronous=FULL``; the same upsert of the
  same msgpack-encoded state; writers queue on a lock in the process, the best case
  for one-transaction-per-write, as in ``benchmarks.ledger``). Reports the commits the
  shards made (``Shard.durable_commits``): writes per commit is the group size. Three
  alternating rounds (every shard count, then the baseline); the ratio is the median of
  the rounds' ratios.
* ``ray``: Ray actor-per-id (one Ray actor per id, a process each) for a small N, only
  when ``ray`` is importable (the ray extra); its processes inherit the child's core.

``--quick`` only proves that every part still runs (CI); it asserts no timing.
"""

from __future__ import annotations

import ctypes
import gc
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pykka

import vibe_actors as va
from vibe_actors._entity_kind import shard_of
from vibe_actors._entity_store import _UPSERT, SCHEMA
from vibe_actors.store._sqlite import open_database, transaction
from vibe_actors.testing import ManualClock

from benchmarks._common import Writer, drive_writers, main_for, percentiles
from benchmarks.core import Count, Inc, VibeCounter, configure_logging

perf = time.perf_counter

SHARDS = 8
PYKKA_N = 20_000
PYKKA_SECONDS = 120.0
RAY_N = 16
IN_FLIGHT = 1000
KIND = "counters"
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


# -- what is measured ----------------------------------------------------------------


class Tiny(msgspec.Struct):
    """The smallest useful state: one int."""

    n: int = 0


class CounterEntity(va.Entity[Tiny]):
    """The entity twin of ``benchmarks.core.VibeCounter``: same message, same reply."""

    @va.handler
    def inc(self, msg: Inc) -> Count:
        state = self.state
        state.n += 1
        return Count(n=state.n)


class PykkaPerId(pykka.ThreadingActor):
    use_daemon_thread = True

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def on_receive(self, message: Any) -> Any:
        self.n += 1
        return self.n


class Deposit(va.Message):
    amount: int


class Balance(va.Message):
    balance: int


class Account(msgspec.Struct):
    balance: int = 0
    deposits: int = 0


class AccountEntity(va.Entity[Account]):
    @va.handler
    def deposit(self, msg: Deposit) -> Balance:
        state = self.state
        state.balance += msg.amount
        state.deposits += 1
        return Balance(balance=state.balance)


def kind_spec(**entity: Any) -> va.WorkerSpec:
    agent = entity.pop("agent", CounterEntity)
    entity.setdefault("shards", SHARDS)
    return va.WorkerSpec(name=KIND, agent=agent, entity=va.EntitySpec(**entity))


def rss_kib() -> int:
    with open("/proc/self/statm", encoding="utf-8") as statm:
        return int(statm.read().split()[1]) * PAGE_KIB


def pid_memory_kib(pid: int) -> tuple[int, int | None]:
    """(RSS, PSS) of process ``pid`` in KiB (PSS None where smaps_rollup is missing)."""
    with open(f"/proc/{pid}/statm", encoding="utf-8") as statm:
        rss = int(statm.read().split()[1]) * PAGE_KIB
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as smaps:
            for line in smaps:
                if line.startswith("Pss:"):
                    return rss, int(line.split()[1])
    except OSError:
        pass
    return rss, None


def malloc_trim() -> bool:
    """glibc's ``malloc_trim(0)``: give the heap's free pages back; False if unavailable."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.malloc_trim(0))


def state_bytes(state_type: type, n: int = 10_000) -> float:
    """What one ``state_type()`` costs in Python's allocator (tracemalloc), per instance."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    states = [state_type() for _ in range(n)]
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    list_bytes = sys.getsizeof(states)
    del states
    return (used - list_bytes) / n


def probe_ids(shards: int, prefix: str = "probe-") -> list[str]:
    """One id per shard (to end a run of tells with one ask each)."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < shards:
        found.setdefault(shard_of(f"{prefix}{i}", shards), f"{prefix}{i}")
        i += 1
    return [found[s] for s in range(shards)]


def drain(system: va.ActorSystem, shards: int = SHARDS) -> None:
    """Returns once every shard has handled what was sent to it before."""
    msg = Inc()
    for entity_id in probe_ids(shards):
        system.entity(KIND, entity_id).ask(msg)


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> float:
    """Polls ``condition`` (10 ms) until true; returns the wait, raises after ``seconds``."""
    began = perf()
    while not condition():
        if perf() - began > seconds:
            raise TimeoutError(f"{what}: not within {seconds} s")
        time.sleep(0.01)
    return perf() - began


# -- parts (each in its own child process) ---------------------------------------------


def part_million(n: int) -> dict[str, Any]:
    """N in-memory entities: tell rate, RSS per entity, then passivation and RSS after."""
    clock = ManualClock(start=0.0)
    idle_after = 60.0
    config = va.SystemConfig(ask_timeout=600.0, start_timeout=60.0)
    # max_active over N: every entity stays active (it is split evenly over the shards).
    spec = kind_spec(passivate_after=idle_after, max_active=2 * n + 2 * SHARDS)
    system = va.ActorSystem([spec], config, clock=clock).start()
    try:
        drain(system)  # warm-up: the shards' first activation, the ref path
        gc.collect()
        rss_before, blocks_before = rss_kib(), sys.getallocatedblocks()
        entity, msg = system.entity, Inc()
        began = perf()
        for i in range(n):  # each id a new string, kept by its shard: charged to the entity
            entity(KIND, str(i)).tell(msg)
        sent = perf() - began
        drain(system)
        handled = perf() - began
        gc.collect()
        rss_after, blocks_after = rss_kib(), sys.getallocatedblocks()
        info = system.entity_info(KIND)
        active = info.active
        assert active >= n, f"only {active} of {n} entities active"
        # Passivate them all by idle time: the sweep runs every passivate_after / 2.
        began = perf()
        clock.advance(idle_after / 2)
        clock.advance(idle_after / 2)
        clock.advance(idle_after / 2)
        waited = wait_until(
            lambda: system.entity_info(KIND).active == 0, 600.0, "passivating every entity"
        )
        passivate_s = perf() - began
        gc.collect()
        rss_passivated, blocks_passivated = rss_kib(), sys.getallocatedblocks()
        trimmed = malloc_trim()
        rss_trimmed = rss_kib()
        idle = system.entity_info(KIND).passivations.get("idle", 0)
    finally:
        system.shutdown(timeout=60.0)
    state = state_bytes(Tiny)
    per_entity = (rss_after - rss_before) * 1024 / n
    return {
        "n": n,
        "shards": SHARDS,
        "tell_per_s": n / sent,
        "handled_per_s": n / handled,
        "active": active,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "rss_per_entity_bytes": per_entity,
        "state_bytes": state,
        "rss_per_entity_beyond_state_bytes": per_entity - state,
        "python_blocks_per_entity": (blocks_after - blocks_before) / n,
        "passivated_idle": idle,
        "passivate_s": passivate_s,
        "passivate_wait_s": waited,
        "rss_passivated_kib": rss_passivated,
        "rss_trimmed_kib": rss_trimmed,
        "malloc_trim_released": trimmed,
        "python_blocks_left_per_entity": (blocks_passivated - blocks_before) / n,
        "rss_returned_fraction": (rss_after - rss_trimmed) / max(1, rss_after - rss_before),
    }


def part_pykka(limit: int, seconds: float) -> dict[str, Any]:
    """Pykka actor-per-id: start one actor per id and send it one message, up to a bound."""
    PykkaPerId.start().stop()  # warm-up
    gc.collect()
    before = rss_kib()
    refs = []
    stopped_by = "count"
    began = perf()
    for _ in range(limit):
        ref = PykkaPerId.start()
        ref.tell("inc")
        refs.append(ref)
        if perf() - began > seconds:
            stopped_by = f"time ({seconds:.0f} s)"
            break
    for ref in refs:  # handled = answering
        ref.ask("inc")
    elapsed = perf() - began
    gc.collect()
    after = rss_kib()
    n = len(refs)
    began = perf()
    pykka.ActorRegistry.stop_all()
    stop_s = perf() - began
    return {
        "n": n,
        "limit": limit,
        "stopped_by": stopped_by,
        "activated_per_s": n / elapsed,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "rss_per_actor_bytes": (after - before) * 1024 / n,
        "stop_s": stop_s,
    }


def part_activation(n: int) -> dict[str, Any]:
    """Activation rate (tells to new ids) and first-message latency (asks to new ids)."""
    config = va.SystemConfig(ask_timeout=120.0)
    children = (kind_spec(passivate_after=0), va.WorkerSpec(name="agent", agent=VibeCounter))
    system = va.ActorSystem(list(children), config).start()
    try:
        msg, entity = Inc(), system.entity
        drain(system)
        for i in range(2000):  # warm-up: activation path and ask path
            entity(KIND, f"warm{i}").ask(msg)
        # Rate: tells to n new ids, then an ask per shard.
        ids = [f"t{i}" for i in range(n)]
        began = perf()
        for entity_id in ids:
            entity(KIND, entity_id).tell(msg)
        drain(system)
        tell_rate = n / (perf() - began)
        # Rate: pipelined asks to n new ids (IN_FLIGHT outstanding).
        ids = [f"p{i}" for i in range(n)]
        began = perf()
        for start in range(0, n, IN_FLIGHT):
            futures = [entity(KIND, e).ask_future(msg) for e in ids[start : start + IN_FLIGHT]]
            for future in futures:
                future.wait()
        pipelined_rate = n / (perf() - began)
        # First-message latency: a sequential ask to a never-seen id, then the same ask to
        # the same id once active, then to a plain agent (same message, same reply).
        ids = [f"a{i}" for i in range(n)]
        first: list[float] = []
        for entity_id in ids:
            t0 = perf()
            entity(KIND, entity_id).ask(msg)
            first.append(perf() - t0)
        active: list[float] = []
        for entity_id in ids:
            t0 = perf()
            entity(KIND, entity_id).ask(msg)
            active.append(perf() - t0)
        agent = system.ref("agent")
        plain: list[float] = []
        for _ in range(n):
            t0 = perf()
            agent.ask(msg)
            plain.append(perf() - t0)
        stats = system.routes.entity_kind(KIND).stats
        activations = sum(stats.activations)
        inside_us = sum(stats.activation_seconds) / activations * 1e6
    finally:
        system.shutdown(timeout=60.0)
    result = {
        "n": n,
        "tell_activations_per_s": tell_rate,
        "pipelined_ask_activations_per_s": pipelined_rate,
        "first_message": percentiles(first),
        "active_entity": percentiles(active),
        "plain_agent": percentiles(plain),
        "activation_mean_us_in_shard": inside_us,
    }
    result["activation_cost_p50_us"] = (
        result["first_message"]["p50_us"] - result["active_entity"]["p50_us"]
    )
    return result


class _Target:
    def __init__(self, name: str, ref: va.Ref[Any]) -> None:
        self.name, self.ref = name, ref


def _tell_rate(ref: va.Ref[Any], n: int) -> float:
    tell, msg = ref.tell, Inc()
    began = perf()
    for _ in range(n):
        tell(msg)
    ref.ask(msg)
    return n / (perf() - began)


def _ask_samples(ref: va.Ref[Any], n: int) -> list[float]:
    ask, msg, samples = ref.ask, Inc(), []
    for _ in range(n):
        t0 = perf()
        ask(msg)
        samples.append(perf() - t0)
    return samples


def _pipelined(ref: va.Ref[Any], n: int) -> float:
    start, msg = ref.ask_future, Inc()
    began = perf()
    for _ in range(n // IN_FLIGHT):
        futures = [start(msg) for _ in range(IN_FLIGHT)]
        for future in futures:
            future.wait()
    return n // IN_FLIGHT * IN_FLIGHT / (perf() - began)


def part_hop(tells: int, asks: int, repeats: int) -> dict[str, Any]:
    """One active entity against one plain agent: tell, ask, pipelined ask."""
    config = va.SystemConfig(ask_timeout=120.0)
    children = (kind_spec(passivate_after=0), va.WorkerSpec(name="agent", agent=VibeCounter))
    system = va.ActorSystem(list(children), config).start()
    targets = [
        _Target("entity", system.entity(KIND, "hot")),
        _Target("agent", system.ref("agent")),
    ]
    results: dict[str, dict[str, Any]] = {t.name: {} for t in targets}
    try:
        for t in targets:  # warm-up (and the entity's activation)
            _tell_rate(t.ref, 10_000)
            _pipelined(t.ref, 2 * IN_FLIGHT)
        tell_best = dict.fromkeys(results, 0.0)
        pipelined_best = dict.fromkeys(results, 0.0)
        samples: dict[str, list[float]] = {name: [] for name in results}
        ask_best = dict.fromkeys(results, 0.0)
        for _ in range(repeats):  # alternate, so drift on the shared core hits both alike
            for t in targets:
                tell_best[t.name] = max(tell_best[t.name], _tell_rate(t.ref, tells))
                pipelined_best[t.name] = max(
                    pipelined_best[t.name], _pipelined(t.ref, 20 * IN_FLIGHT)
                )
                round_samples = _ask_samples(t.ref, asks)
                ask_best[t.name] = max(ask_best[t.name], len(round_samples) / sum(round_samples))
                samples[t.name] += round_samples
    finally:
        system.shutdown(timeout=60.0)
    for name, r in results.items():
        r["tell_per_s"] = tell_best[name]
        r["pipelined_ask_per_s"] = pipelined_best[name]
        r["ask"] = percentiles(samples[name])
        r["ask_per_s"] = ask_best[name]  # sequential asks: 1 / mean latency, best round
    e, a = results["entity"], results["agent"]
    results["ratios"] = {
        "tell_entity_vs_agent": e["tell_per_s"] / a["tell_per_s"],
        "ask_entity_vs_agent": e["ask_per_s"] / a["ask_per_s"],
        "ask_p50_agent_over_entity": a["ask"]["p50_us"] / e["ask"]["p50_us"],
        "pipelined_ask_entity_vs_agent": e["pipelined_ask_per_s"] / a["pipelined_ask_per_s"],
    }
    return results


def part_durable(
    writers: int, seconds: float, shard_counts: list[int], rounds: int = 3
) -> dict[str, Any]:
    """Durable entity writes from ``writers`` threads, per shard count, against one
    transaction per write, in ``rounds`` alternating rounds in the same process.

    Each round measures every shard count and then the baseline, so a ratio
    compares runs seconds apart; the ratio reported is the median of the
    rounds' ratios (the shared machine's load drifts over a run), and the
    figures shown are those of the median round.
    """
    results: dict[str, Any] = {"writers": writers, "seconds": seconds, "shards": shard_counts}
    per_round: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-entities-") as data_dir:
        for round_no in range(rounds):
            measured = {
                shards: _durable_entities(
                    Path(data_dir) / f"r{round_no}-shards{shards}", writers, seconds, shards
                )
                for shards in shard_counts
            }
            base = _one_tx(Path(data_dir) / f"r{round_no}-baseline.db", writers, seconds)
            per_round.append({"entities": measured, "one_tx": base})
    results["rounds"] = [
        {n: r["entities"][n]["writes_per_s"] / r["one_tx"]["writes_per_s"] for n in shard_counts}
        for r in per_round
    ]
    results["ratios"] = {}
    for n in shard_counts:
        ordered = sorted(range(rounds), key=lambda i: results["rounds"][i][n])
        middle = ordered[rounds // 2]
        results[f"entities_{n}"] = per_round[middle]["entities"][n]
        results["ratios"][f"shards_{n}_vs_one_tx"] = results["rounds"][middle][n]
    first = shard_counts[0]
    middle = sorted(range(rounds), key=lambda i: results["rounds"][i][first])[rounds // 2]
    results["one_tx"] = per_round[middle]["one_tx"]
    return results


def _durable_entities(data_dir: Path, writers: int, seconds: float, shards: int) -> dict[str, Any]:
    config = va.SystemConfig(data_dir=str(data_dir), ask_timeout=120.0)
    spec = kind_spec(
        agent=AccountEntity, shards=shards, passivate_after=0, state=va.EntityState.DURABLE
    )
    system = va.ActorSystem([spec], config).start()
    try:
        deposit = Deposit(amount=1)
        for i in range(writers):  # activate them first: the loop measures writes only
            system.entity(KIND, f"acct{i}").ask(deposit)
        stats = system.routes.entity_kind(KIND).stats  # the kind's writer counts its commits
        commits_before = stats.commits

        def entity_writer(index: int) -> Writer:
            ask = system.entity(KIND, f"acct{index}").ask
            return (lambda n: ask(deposit)), None

        result = _driven(writers, seconds, entity_writer)
        result["commits"] = stats.commits - commits_before
    finally:
        system.shutdown(timeout=60.0)
    result["writes_per_commit"] = result["writes"] / max(1, result["commits"])
    return result


def _one_tx(path: Path, writers: int, seconds: float) -> dict[str, Any]:
    """The same writes, one SQLite transaction each, the runtime's settings."""
    encode = msgspec.msgpack.Encoder().encode
    open_database(path, SCHEMA).close()  # created once, so the writers race on nothing
    write_lock = threading.Lock()

    def writer(index: int) -> Writer:
        db = open_database(path, SCHEMA)  # in the writer's thread: SQLite's thread check
        entity_id, state = f"acct{index}", Account()

        def write(n: int) -> None:
            state.balance += 1
            state.deposits += 1
            with write_lock, transaction(db, path) as tx:
                tx.execute(_UPSERT, (entity_id, encode(state)))

        return write, db.close

    return _driven(writers, seconds, writer)


def _driven(writers: int, seconds: float, make_writer: Callable[[int], Writer]) -> dict[str, Any]:
    """:func:`drive_writers`, its figures named as this benchmark's report reads them."""
    result = drive_writers(writers, seconds, make_writer)
    result["writes_per_s"] = result.pop("per_s")
    return result


def part_ray(n: int) -> dict[str, Any]:
    """Ray actor-per-id: N actors (a worker process each), first call each, then asks."""
    import ray  # the ray extra: run() checks it is importable

    @ray.remote(num_cpus=0)
    class RayPerId:
        def __init__(self) -> None:
            self.n = 0

        def inc(self) -> int:
            self.n += 1
            return self.n

        def pid(self) -> int:
            return os.getpid()

    temp = tempfile.mkdtemp(prefix="vr-ent-", dir="/tmp")
    began = perf()
    ray.init(
        namespace="vibe-bench-entities",
        num_cpus=1,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=temp,
        log_to_driver=False,
    )
    init_s = perf() - began
    try:
        warm = RayPerId.remote()
        ray.get(warm.inc.remote())
        began = perf()
        actors = [RayPerId.remote() for _ in range(n)]
        ray.get([a.inc.remote() for a in actors])
        activation_s = perf() - began
        pids = ray.get([a.pid.remote() for a in actors])
        memory = [pid_memory_kib(pid) for pid in pids]
        samples = []
        for i in range(max(200, 20 * n)):
            actor = actors[i % n]
            t0 = perf()
            ray.get(actor.inc.remote())
            samples.append(perf() - t0)
    finally:
        ray.shutdown()
    pss = [p for _, p in memory if p is not None]
    return {
        "n": n,
        "init_s": init_s,
        "activated_per_s": n / activation_s,
        "activation_s": activation_s,
        "rss_per_actor_kib": sum(r for r, _ in memory) / n,
        "pss_per_actor_kib": sum(pss) / len(pss) if pss else None,
        "ask": percentiles(samples),
    }


PARTS: dict[str, Callable[..., dict[str, Any]]] = {
    "million": lambda n: part_million(int(n)),
    "pykka": lambda n, s: part_pykka(int(n), float(s)),
    "activation": lambda n: part_activation(int(n)),
    "hop": lambda t, a, r: part_hop(int(t), int(a), int(r)),
    "durable": lambda w, s, n, r: part_durable(
        int(w), float(s), [int(x) for x in n.split(",")], int(r)
    ),
    "ray": lambda n: part_ray(int(n)),
}


def in_child(*args: str, timeout: float = 900) -> dict[str, Any]:
    """Run ``benchmarks.entities --child ARGS`` pinned to core 0; its JSON line is the result."""
    command = ["taskset", "-c", "0", sys.executable, "-m", "benchmarks.entities", "--child"]
    print(f"-- entities {' '.join(args)}", file=sys.stderr, flush=True)
    out = subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"entities child {args} failed ({out.returncode}): {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run(quick: bool) -> dict[str, Any]:
    big = 20_000 if quick else 1_000_000
    pykka_n = 1_000 if quick else PYKKA_N
    results: dict[str, Any] = {"quick": quick}
    results["million"] = in_child("million", str(big))
    results["pykka"] = in_child("pykka", str(pykka_n), str(PYKKA_SECONDS))
    reached = results["pykka"]["n"]
    results["million_at_pykka_n"] = in_child("million", str(reached))
    results["activation"] = in_child("activation", str(5_000 if quick else 100_000))
    results["hop"] = in_child(
        "hop", *(("20000", "2000", "1") if quick else ("300000", "20000", "5"))
    )
    results["durable"] = in_child("durable", "64", "1" if quick else "5", f"{SHARDS},1", "3")
    if importlib.util.find_spec("ray") is None:
        results["ray"] = {
            "skipped": "ray is not installed (the ray extra: make .venv/.installed-ray)"
        }
    else:
        results["ray"] = in_child("ray", "2" if quick else str(RAY_N), timeout=600)
    small, pk = results["million_at_pykka_n"], results["pykka"]
    results["ratios"] = {
        "pykka_rss_per_id_over_entity": pk["rss_per_actor_bytes"] / small["rss_per_entity_bytes"],
        "entity_activation_rate_over_pykka": small["handled_per_s"] / pk["activated_per_s"],
        **results["hop"]["ratios"],
        **{f"durable_{k}": v for k, v in results["durable"]["ratios"].items()},
    }
    ray = results["ray"]
    if "skipped" not in ray:
        results["ratios"]["ray_pss_per_id_over_entity"] = (
            (ray["pss_per_actor_kib"] or ray["rss_per_actor_kib"])
            * 1024
            / small["rss_per_entity_bytes"]
        )
        results["ratios"]["ray_ask_p50_over_entity"] = (
            ray["ask"]["p50_us"] / results["hop"]["entity"]["ask"]["p50_us"]
        )
    results["targets"] = targets(results)
    return results


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets: name, figure (shown), met."""
    m, a, ratios = r["million"], r["activation"], r["ratios"]
    rows = [
        (f"RSS per idle entity beyond its state < 1 KiB (at {m['n']:,})",
         f"{m['rss_per_entity_beyond_state_bytes']:.0f} B", m["rss_per_entity_beyond_state_bytes"] < 1024),
        ("activation rate >= 100 000/s (tell to new ids)",
         f"{a['tell_activations_per_s']:,.0f}/s", a["tell_activations_per_s"] >= 100_000),
        ("first-message latency p50 < 20 us (ask to a new id)",
         f"{a['first_message']['p50_us']:.1f} us", a["first_message"]["p50_us"] < 20),
        ("ask to an active entity >= 0.8x a plain agent",
         f"{ratios['ask_entity_vs_agent']:.2f}x", ratios["ask_entity_vs_agent"] >= 0.8),
        ("tell to an active entity >= 0.8x a plain agent",
         f"{ratios['tell_entity_vs_agent']:.2f}x", ratios["tell_entity_vs_agent"] >= 0.8),
    ]  # fmt: skip
    for shards in r["durable"]["shards"]:
        ratio = ratios[f"durable_shards_{shards}_vs_one_tx"]
        rows.append((f"durable writes (64 askers, {shards} shard{'s' if shards > 1 else ''}) "
                     ">= 10x one transaction per write", f"{ratio:.1f}x", ratio >= 10))  # fmt: skip
    return [{"target": t, "figure": f, "met": bool(ok)} for t, f, ok in rows]


def report(r: dict[str, Any]) -> str:
    m, pk, small, a, h, d = (
        r["million"], r["pykka"], r["million_at_pykka_n"], r["activation"], r["hop"], r["durable"]
    )  # fmt: skip
    lines = [
        f"{m['n']:,} in-memory entities: tell {m['tell_per_s']:,.0f}/s, all handled "
        f"{m['handled_per_s']:,.0f}/s; RSS {m['rss_before_kib']:,} -> {m['rss_after_kib']:,} KiB "
        f"= {m['rss_per_entity_bytes']:.0f} B/entity (state {m['state_bytes']:.0f} B, "
        f"{m['python_blocks_per_entity']:.1f} Python blocks/entity)",
        f"passivated {m['passivated_idle']:,} in {m['passivate_s']:.1f} s; RSS after "
        f"{m['rss_passivated_kib']:,} KiB, after malloc_trim {m['rss_trimmed_kib']:,} KiB "
        f"({m['rss_returned_fraction']:.0%} of the growth returned); Python blocks left "
        f"{m['python_blocks_left_per_entity']:.2f}/entity",
        f"Pykka actor-per-id: {pk['n']:,} actors (limit {pk['limit']:,}, stopped by "
        f"{pk['stopped_by']}), {pk['activated_per_s']:,.0f}/s, {pk['rss_per_actor_bytes']:,.0f} "
        f"B/actor; entities at the same N: {small['handled_per_s']:,.0f}/s, "
        f"{small['rss_per_entity_bytes']:,.0f} B/entity",
        f"activation of {a['n']:,} ids: tell {a['tell_activations_per_s']:,.0f}/s, pipelined ask "
        f"{a['pipelined_ask_activations_per_s']:,.0f}/s; first-message ask p50 "
        f"{a['first_message']['p50_us']:.1f} us (active {a['active_entity']['p50_us']:.1f} us, "
        f"plain agent {a['plain_agent']['p50_us']:.1f} us); in-shard activation mean "
        f"{a['activation_mean_us_in_shard']:.1f} us",
    ]
    for name in ("entity", "agent"):
        x = h[name]
        lines.append(
            f"hop {name:<6}: tell {x['tell_per_s']:,.0f}/s, ask {x['ask_per_s']:,.0f}/s "
            f"(p50 {x['ask']['p50_us']:.1f} us, p99 {x['ask']['p99_us']:.1f} us), pipelined "
            f"{x['pipelined_ask_per_s']:,.0f}/s"
        )
    o = d["one_tx"]
    for shards in d["shards"]:
        e = d[f"entities_{shards}"]
        lines.append(
            f"durable, {d['writers']} threads, {shards} shards: {e['writes_per_s']:,.0f} writes/s"
            f" (p50 {e['p50_ms']:.2f} ms, p99 {e['p99_ms']:.2f} ms, {e['commits']:,} commits, "
            f"{e['writes_per_commit']:.1f} writes/commit)"
        )
    lines.append(
        f"durable baseline, one transaction per write: {o['writes_per_s']:,.0f} writes/s "
        f"(p50 {o['p50_ms']:.2f} ms, p99 {o['p99_ms']:.2f} ms)"
    )
    ray = r["ray"]
    if "skipped" in ray:
        lines.append(f"ray: not measured: {ray['skipped']}")
    else:
        lines.append(
            f"ray actor-per-id: {ray['n']} actors, {ray['activated_per_s']:.1f}/s, RSS "
            f"{ray['rss_per_actor_kib']:,.0f} KiB/actor (PSS {ray['pss_per_actor_kib'] or 0:,.0f}),"
            f" ask p50 {ray['ask']['p50_us']:.0f} us"
        )
    lines += [f"{k}: {v:.2f}x" for k, v in r["ratios"].items()]
    lines += [f"target: {t['target']}: {t['figure']} {'met' if t['met'] else 'MISSED'}"
              for t in r["targets"]]  # fmt: skip
    return "\n".join(lines)


def child_main(args: list[str]) -> None:
    configure_logging()
    part, rest = args[0], args[1:]
    print(json.dumps(PARTS[part](*rest)), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        main_for(__doc__, run, report)
