"""PNG plots for docs/benchmarks.md (matplotlib, Agg backend): used by benchmarks/report.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: CI and headless machines

import matplotlib.pyplot as plt

__all__ = ["draw_all"]

STYLE = {"vibe_actors": "-", "pykka": "--"}


def _ok(suite: dict[str, Any], name: str) -> dict[str, Any] | None:
    entry = suite.get(name, {})
    return entry["results"] if entry.get("status") == "ok" else None


def latency(r: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for system, style in STYLE.items():
        points = r[system]["points"]
        loads = [float(f) * 100 for f in points]
        for key, label, marker in (("p50_us", "p50", "o"), ("p99_us", "p99", "s"),
                                   ("p999_us", "p99.9", "^")):  # fmt: skip
            ax.plot(loads, [p[key] for p in points.values()], style, marker=marker,
                    label=f"{system} {label}")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("offered load, % of the system's own capacity")
    ax.set_ylabel("latency from intended send, us (log)")
    ax.set_title("Open-loop ask latency against offered load")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scale(r: dict[str, Any], path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    agents = r["agents"]
    for system, style in STYLE.items():
        rows = [r[system][str(n)] for n in agents]
        left.plot(agents, [x["pipelined_ask_per_s"] for x in rows], style, marker="o", label=system)
        right.plot(agents, [x["rss_per_agent_kib"] for x in rows], style, marker="o", label=system)
    left.set(xscale="log", yscale="log", xlabel="agents", ylabel="pipelined asks/s (log)",
             title="Throughput against agent count")  # fmt: skip
    right.axhline(32, color="red", linewidth=0.8, label="target 32 KiB")
    right.set(xscale="log", xlabel="agents", ylabel="KiB RSS per idle agent",
              title="Memory per idle agent")  # fmt: skip
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def restart(r: dict[str, Any], path: Path) -> None:
    strategies = ["one_for_one", "one_for_all", "rest_for_one"]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.38
    xs = range(len(strategies))
    for offset, key, label in ((-width / 2, "p50_us", "p50"), (width / 2, "p99_us", "p99")):
        ax.bar([x + offset for x in xs], [r[s][key] / 1000 for s in strategies], width,
               label=label)  # fmt: skip
    ax.axhline(1.0, color="red", linewidth=0.8, label="target p99 1 ms (one_for_one)")
    ax.set_xticks(list(xs), strategies)
    ax.set_ylabel("crash-to-serving, ms")
    ax.set_title(f"Restart latency by strategy ({r['siblings']} siblings)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_all(suite: dict[str, Any], images: Path) -> dict[str, str]:
    """Draw every plot whose benchmark ran; returns {section name: file name}."""
    drawn = {}
    for name, draw, file in (("load", latency, "latency.png"), ("scale", scale, "scale.png"),
                             ("supervision", restart, "restart.png")):  # fmt: skip
        results = _ok(suite, name)
        if results is not None:
            draw(results, images / file)
            drawn[name] = file
    return drawn
