"""Markdown sections of docs/benchmarks.md, one per benchmark (used by benchmarks/report.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["section_tables"]


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]


def _core(r: dict[str, Any]) -> list[str]:
    rows = [
        [name, f"{s['tell_per_s']:,.0f}", f"{s['pipelined_ask_per_s']:,.0f}",
         f"{s['ask']['p50_us']:.1f}", f"{s['ask']['p99_us']:.1f}", f"{s['ask']['p999_us']:.1f}"]
        for name, s in ((n, r[n]) for n in ("vibe_actors", "pykka", "simplequeue"))
    ]  # fmt: skip
    restart = r["vibe_actors"]["restart"]
    return [
        "One sender, one counter; pipelined asks with 1000 in flight; sequential ask latency.",
        "",
        *_table(
            ["system", "tell/s", "pipelined ask/s", "ask p50 us", "ask p99 us", "ask p99.9 us"],
            rows,
        ),  # fmt: skip
        *_table(["ratio", "value"], [[k, f"{v:.2f}x"] for k, v in r["ratios"].items()]),
        f"Crash-to-serving (one counter alone): p50 {restart['p50_us']:.0f} us, "
        f"p99 {restart['p99_us']:.0f} us.",
        "",
    ]


def _load(r: dict[str, Any]) -> list[str]:
    rows = []
    for name in ("vibe_actors", "pykka"):
        for fraction, p in r[name]["points"].items():
            rows.append([name, f"{float(fraction):.0%}", f"{p['offered_per_s']:,.0f}",
                         f"{p['achieved_per_s']:,.0f}", f"{p['p50_us']:.0f}",
                         f"{p['p99_us']:.0f}", f"{p['p999_us']:.0f}"])  # fmt: skip
    v, p = r["vibe_actors"], r["pykka"]
    return [
        "Asks on a fixed schedule (open loop) at fractions of each system's own capacity, measured",
        "first in the same run through the same harness; latency from the *intended* send time.",
        "At low load the figures are mostly the harness itself (a sender, the actor and a",
        "collector thread sharing one core): compare the curves' shape and the two systems.",
        "",
        f"Capacity: vibe_actors {v['capacity_per_s']:,.0f} asks/s, Pykka "
        f"{p['capacity_per_s']:,.0f} asks/s ({r['ratios']['capacity_vs_pykka']:.2f}x). "
        f"Knee (last load whose p99 is within {r['knee_factor']:.0f}x the p99 at 10%): "
        f"vibe_actors {v['knee_fraction']:.0%}, Pykka {p['knee_fraction']:.0%}.",
        "",
        *_table(
            ["system", "load", "offered/s", "achieved/s", "p50 us", "p99 us", "p99.9 us"], rows
        ),  # fmt: skip
    ]


def _scale(r: dict[str, Any]) -> list[str]:
    rows = []
    for n in r["agents"]:
        v, p = r["vibe_actors"][str(n)], r["pykka"][str(n)]
        rows.append([f"{n:,}", f"{v['rss_per_agent_kib']:.1f}", f"{p['rss_per_agent_kib']:.1f}",
                     f"{v['start_ms']:.0f}", f"{p['start_ms']:.0f}", f"{v['stop_ms']:.0f}",
                     f"{p['stop_ms']:.0f}", f"{v['pipelined_ask_per_s']:,.0f}",
                     f"{p['pipelined_ask_per_s']:,.0f}",
                     f"{v['pipelined_ask_per_s'] / p['pipelined_ask_per_s']:.2f}x"])  # fmt: skip
    lines = [
        "Each point in a fresh process pinned to core 0. RSS per idle agent = (RSS after starting N",
        "idle counters - RSS before) / N. Throughput: pipelined asks (1000 in flight) round-robin",
        "over the N agents, so at large N nearly every ask wakes a different thread.",
        "",
        *_table(
            [
                "agents",
                "KiB/agent vibe",
                "KiB/agent Pykka",
                "start ms vibe",
                "start ms Pykka",
                "stop ms vibe",
                "stop ms Pykka",
                "asks/s vibe",
                "asks/s Pykka",
                "asks ratio",
            ],
            rows,
        ),  # fmt: skip
        "### PubSub fan-out",
        "",
    ]
    pubsub = r["pubsub"]
    if "skipped" in pubsub:
        return [*lines, f"Skipped: {pubsub['skipped']}.", ""]
    rows = [[n, f"{f['deliveries_per_s']:,.0f}", f"{f['by_hand_deliveries_per_s']:,.0f}",
             f"{f['vs_by_hand']:.2f}x", f"{f['publish']['p50_us']:.0f}",
             f"{f['publish']['p99_us']:.0f}"] for n, f in pubsub.items()]  # fmt: skip
    return [
        *lines,
        "One publisher asks `Publish` in a row; deliveries/s until every subscriber handled every",
        "event. Baseline: the same `Event` sent by hand to each subscriber with `ask_future`.",
        "",
        *_table(
            [
                "subscribers",
                "deliveries/s",
                "by hand/s",
                "ratio",
                "publish p50 us",
                "publish p99 us",
            ],
            rows,
        ),  # fmt: skip
    ]


def _supervision(r: dict[str, Any]) -> list[str]:
    rows = [[s, f"{r[s]['p50_us']:.0f}", f"{r[s]['p99_us']:.0f}", f"{r[s]['p999_us']:.0f}",
             str(r[s]["n"]), f"{r[s]['shutdown_ms']:.1f}"]
            for s in ("one_for_one", "one_for_all", "rest_for_one")]  # fmt: skip
    cold = r["pykka_cold_start"]
    return [
        f"{r['siblings']} counters under one supervisor; the middle one crashes; time from the",
        "crashing tell to the first reply of a new incarnation of the last child restarted.",
        "Backoff off, intensity unlimited.",
        "",
        *_table(["strategy", "p50 us", "p99 us", "p99.9 us", "rounds", "shutdown ms"], rows),
        f"Baseline: a bare Pykka actor's cold start to its first reply, p50 {cold['p50_us']:.0f} us,"
        f" p99 {cold['p99_us']:.0f} us; stopping {r['siblings']} bare Pykka actors "
        f"{r['pykka_shutdown_ms']:.1f} ms.",
        "",
    ]


def _codec(r: dict[str, Any]) -> list[str]:
    rows = []
    for name, m in r.items():
        for ours, base in (("msgpack", "pickle"), ("json", "stdjson")):
            for op in ("encode", "decode"):
                rows.append([name, op, f"{ours} {m[f'{ours}_{op}_ns']:.0f}",
                             f"{base} {m[f'{base}_{op}_ns']:.0f}",
                             f"{m['ratios'][f'{base}_{op}_vs_{ours}']:.1f}x"])  # fmt: skip
    return [
        "ns per message, best of repeats. Ours decode into the typed, validated message; pickle",
        "round-trips the same object; the json module handles the equivalent dict.",
        "",
        *_table(["message", "op", "vibe_actors (msgspec)", "baseline", "baseline / ours"], rows),
    ]


def _peer(r: dict[str, Any]) -> list[str]:
    rows = []
    for name in ("vibe_threads", "vibe_asyncio", "xoscar"):
        s = r[name]
        if "skipped" in s:
            rows.append([name, "skipped", s["skipped"], ""])
        else:
            rows.append([name, f"{s['pipelined_ask_per_s']:,.0f}", f"{s['ask']['p50_us']:.1f}",
                         f"{s['ask']['p99_us']:.1f}"])  # fmt: skip
    ratios = [[k, f"{v:.2f}x"] for k, v in r.get("ratios", {}).items()]
    return [
        "xoscar's in-process actor pool (`n_process=0`) against vibe_actors called from threads",
        "and from asyncio (`ask_async` + `gather`, xoscar's own calling convention).",
        "",
        *_table(["system", "pipelined ask/s", "ask p50 us", "ask p99 us"], rows),
        *(_table(["ratio", "value"], ratios) if ratios else []),
    ]


def _ledger(r: dict[str, Any]) -> list[str]:
    rows = [[w, v, f"{r[w][v]['per_s']:,.0f}", f"{r[w][v]['p50_ms']:.2f}",
             f"{r[w][v]['p99_ms']:.2f}", f"{r[w][v]['mean_batch']:.1f}"]
            for w in r["ratios"] for v in ("group", "one_tx", "raw")]  # fmt: skip
    ratios = [[w, f"{x['group_vs_one_tx']:.1f}x", f"{x['group_vs_raw']:.1f}x"]
              for w, x in r["ratios"].items()]  # fmt: skip
    verdict = "met" if r.get("target_met") else "missed"
    return [
        "Durable appends (fsync at commit) from N writer threads (benchmarks/ledger.py).",
        "",
        *_table(["writers", "variant", "appends/s", "p50 ms", "p99 ms", "mean batch"], rows),
        *_table(["writers", "group / one_tx", "group / raw sqlite"], ratios),
        f"Ledger's own target (group commit >= 10x one transaction per append at 64 writers): "
        f"{verdict}.",
        "",
    ]


def _store(r: dict[str, Any]) -> list[str]:
    rows = [[agent, variant, f"{x['per_s']:,.0f}", f"{x['p50_ms']:.2f}", f"{x['p99_ms']:.2f}"]
            for agent in ("ledger", "state", "entities") if agent in r
            for variant, x in r[agent].items()]  # fmt: skip
    return [
        "64 writer threads, each write durable before its reply (benchmarks/store.py): the",
        "agent on its SQLite file (the baseline) and on a PostgreSQL database on a Unix socket;",
        "`postgresql_x2`: two replicas (32 writers each): the ledgers append to the same streams,",
        "the durable entity kinds (8 shards) write an id per writer (version-fenced, no conflict).",
        "",
        *_table(["agent", "store", "writes/s", "p50 ms", "p99 ms"], rows),
        *_table(["ratio", "value"], [[k, f"{v:.2f}x"] for k, v in r["ratios"].items()]),
    ]


def _gateway(r: dict[str, Any]) -> list[str]:
    pykka = r.get("pykka")  # results from before 2026-12-05 have no Pykka reference
    rows = []
    for c in r["ratio"]:
        row = [c, f"{r['bare'][c]['rps']:,.0f}"]
        if pykka is not None:
            row += [f"{pykka[c]['rps']:,.0f}", f"{r['pykka_ratio'][c]:.0%}"]
        row += [f"{r['gateway'][c]['rps']:,.0f}", f"{r['ratio'][c]:.0%}",
                f"{r['gateway'][c]['p50_ms']:.2f}", f"{r['gateway'][c]['p99_ms']:.2f}"]  # fmt: skip
        rows.append(row)
    head = ["connections", "bare rps"]
    if pykka is not None:
        head += ["Pykka bridge rps", "bridge / bare"]
    head += ["gateway rps", "gateway / bare", "gw p50 ms", "gw p99 ms"]
    reference = (
        " and, as the reference for the actor hop alone, the smallest ASGI app asking a plain"
        " Pykka actor (decode, ask, encode)"
        if pykka is not None
        else ""
    )
    return [
        "POST /v1/agents/registry/Ping against a bare ASGI hello-world under the same uvicorn "
        f"settings{reference}; servers on core 0, wrk on core 1.",
        "",
        *_table(head, rows),
    ]


def _boot(r: dict[str, Any]) -> list[str]:
    slow = ", ".join(f"{name} {us / 1000:.0f} ms" for name, us in r["slowest_imports_us"][:5])
    return [
        f"Process start to every agent of `{r['wiring']}` ready: median {r['boot_median_ms']:.0f}"
        f" ms, against a bare interpreter start of {r['bare_median_ms']:.0f} ms "
        f"({r['boot_vs_bare']:.1f}x). Slowest imports (cumulative): {slow}.",
        "",
    ]


def _blocks(per_entity: float) -> str:
    """Objects left per entity: noise around 0 is 0 (no "-0.00")."""
    return "0.00" if abs(per_entity) < 0.005 else f"{per_entity:.2f}"


def _entities(r: dict[str, Any]) -> list[str]:
    m, pk, small, a, h, d = (
        r["million"], r["pykka"], r["million_at_pykka_n"], r["activation"], r["hop"], r["durable"]
    )  # fmt: skip
    kib = 1024
    memory = [
        ["entities (in memory)", f"{m['n']:,}", f"{m['handled_per_s']:,.0f}",
         f"{m['rss_per_entity_bytes']:,.0f}", f"{(m['rss_after_kib'] - m['rss_before_kib']) / kib:,.0f}"],
        ["entities (in memory)", f"{small['n']:,}", f"{small['handled_per_s']:,.0f}",
         f"{small['rss_per_entity_bytes']:,.0f}",
         f"{(small['rss_after_kib'] - small['rss_before_kib']) / kib:,.1f}"],
        [f"Pykka actor per id (stopped by {pk['stopped_by']})", f"{pk['n']:,}",
         f"{pk['activated_per_s']:,.0f}", f"{pk['rss_per_actor_bytes']:,.0f}",
         f"{(pk['rss_after_kib'] - pk['rss_before_kib']) / kib:,.0f}"],
    ]  # fmt: skip
    ray = r["ray"]
    if "skipped" not in ray:
        pss = ray["pss_per_actor_kib"] or ray["rss_per_actor_kib"]
        memory.append(["Ray actor per id (a process each; PSS)", f"{ray['n']:,}",
                       f"{ray['activated_per_s']:,.1f}", f"{pss * kib:,.0f}",
                       f"{pss * ray['n'] / kib:,.0f}"])  # fmt: skip
    latency = [
        [name, f"{x['p50_us']:.1f}", f"{x['p99_us']:.1f}", f"{x['p999_us']:.1f}"]
        for name, x in (("ask to a new id (activation)", a["first_message"]),
                        ("the same ask, the entity active", a["active_entity"]),
                        ("the same ask to a plain agent", a["plain_agent"]))
    ]  # fmt: skip
    hop = [
        [name, f"{h[key]['tell_per_s']:,.0f}", f"{h[key]['ask_per_s']:,.0f}",
         f"{h[key]['ask']['p50_us']:.1f}", f"{h[key]['pipelined_ask_per_s']:,.0f}"]
        for name, key in (("active entity", "entity"), ("plain agent", "agent"))
    ]  # fmt: skip
    ratios = h["ratios"]
    hop.append(["entity / agent", f"{ratios['tell_entity_vs_agent']:.2f}x",
                f"{ratios['ask_entity_vs_agent']:.2f}x",
                f"{1 / ratios['ask_p50_agent_over_entity']:.2f}x",
                f"{ratios['pipelined_ask_entity_vs_agent']:.2f}x"])  # fmt: skip
    durable = []
    for shards in d["shards"]:
        e = d[f"entities_{shards}"]
        durable.append([f"entities, {shards} shard{'s' if shards > 1 else ''}",
                        f"{e['writes_per_s']:,.0f}", f"{e['p50_ms']:.2f}", f"{e['p99_ms']:.2f}",
                        f"{e['commits']:,}", f"{e['writes_per_commit']:.1f}",
                        f"{d['ratios'][f'shards_{shards}_vs_one_tx']:.1f}x"])  # fmt: skip
    o = d["one_tx"]
    durable.append(["one transaction per write", f"{o['writes_per_s']:,.0f}", f"{o['p50_ms']:.2f}",
                    f"{o['p99_ms']:.2f}", f"{o['writes']:,}", "1.0", "1.0x"])  # fmt: skip
    ray_line = (
        f"Ray was not measured: {ray['skipped']}."
        if "skipped" in ray
        else f"Ray actor per id: {ray['n']} actors pinned with the driver to core 0, `ray.init` "
        f"{ray['init_s']:.1f} s, an ask to an active Ray actor p50 {ray['ask']['p50_us']:,.0f} us "
        f"({r['ratios']['ray_ask_p50_over_entity']:.0f}x an active entity's)."
    )
    return [
        "Each part in a fresh process pinned to core 0 (`benchmarks/entities.py`). Entities: a "
        "kind of 8 shards, a state of one int, the message `Inc` and its reply `Count` of the "
        "core benchmark.",
        "",
        "**A million entities in one process, and actor-per-id.** Tell one message to each of N "
        "new ids, then one ask per shard; RSS (`/proc/self/statm`) after minus before, over N "
        "(the id string, the instance, its state and its slot in the shard's table).",
        "",
        *_table(["system", "ids", "activated/s", "RSS B per id", "RSS growth MiB"], memory),
        f"The state alone is {m['state_bytes']:.0f} B (tracemalloc), so an idle entity costs "
        f"{m['rss_per_entity_beyond_state_bytes']:.0f} B beyond its state "
        f"({m['python_blocks_per_entity']:.1f} Python objects). {ray_line}",
        "",
        f"**Passivating them returns the memory.** All {m['passivated_idle']:,} passivated by idle "
        f"time (a ManualClock advanced past `passivate_after`) in {m['passivate_s']:.1f} s. RSS: "
        f"{m['rss_before_kib'] / kib:,.0f} MiB before, {m['rss_after_kib'] / kib:,.0f} MiB with "
        f"them, {m['rss_passivated_kib'] / kib:,.0f} MiB after passivation and `gc.collect()`, "
        f"{m['rss_trimmed_kib'] / kib:,.0f} MiB after glibc's `malloc_trim(0)` "
        f"({m['rss_returned_fraction']:.0%} of the growth returned); Python objects left per "
        f"entity: {_blocks(m['python_blocks_left_per_entity'])}.",
        "",
        f"**Activation of {a['n']:,} new ids**: {a['tell_activations_per_s']:,.0f}/s by tell (then "
        f"an ask per shard), {a['pipelined_ask_activations_per_s']:,.0f}/s by pipelined ask (1000 "
        f"in flight); inside the shard an activation takes {a['activation_mean_us_in_shard']:.1f}"
        " us on average. Latency (us) of a sequential ask timed in the caller's thread around "
        "`system.entity(kind, id).ask(msg)`:",
        "",
        *_table(["ask", "p50 us", "p99 us", "p99.9 us"], latency),
        "**Hop: one active entity against one plain agent**, same message, same handler work, "
        "best of 5 alternating rounds (tell: n tells then an ask; ask/s: 1 / mean latency of "
        "sequential asks).",
        "",
        *_table(["target", "tell/s", "ask/s", "ask p50 us", "pipelined ask/s"], hop),
        f"**Durable writes**: {d['writers']} threads, each asking a state-changing message of its "
        f"own id in a loop ({d['seconds']:.0f} s per variant), against the same writes done "
        "directly, one SQLite transaction each with the runtime's settings (WAL, "
        "`synchronous=FULL`), the writers queueing on a lock in the process.",
        "",
        *_table(
            ["variant", "writes/s", "p50 ms", "p99 ms", "commits", "writes/commit", "ratio"],
            durable,
        ),  # fmt: skip
    ]


SECTIONS: dict[str, tuple[str, Callable[[dict[str, Any]], list[str]]]] = {
    "core": ("Core: tell, ask, pipelined ask", _core),
    "load": ("Open-loop latency under load", _load),
    "scale": ("Scale: agents, memory, start/stop, fan-out", _scale),
    "supervision": ("Supervision: crash-to-serving by strategy", _supervision),
    "codec": ("Codec", _codec),
    "peer": ("Peer: xoscar", _peer),
    "ledger": ("Durable ledger appends", _ledger),
    "store": ("Shared store: PostgreSQL against SQLite", _store),
    "gateway": ("Gateway against bare ASGI", _gateway),
    "boot": ("Boot of the default wiring", _boot),
    "entities": ("Entities", _entities),
}


def section_tables(suite: dict[str, Any], plots: dict[str, str]) -> list[str]:
    lines: list[str] = []
    for name, (title, render) in SECTIONS.items():
        entry = suite.get(name)
        if entry is None:
            continue
        lines += [f"## {title}", ""]
        if entry["status"] == "skipped":
            lines += [f"Skipped: {entry['reason']}.", ""]
        elif entry["status"] == "failed":
            lines += [f"FAILED in this run: {entry['error']}.", ""]
        else:
            lines += render(entry["results"])
            if name in plots:
                lines += [f"![{title}]({plots[name]})", ""]
    return lines
