"""What tracing costs (issue 21): tell and ask with tracing off, against main, and on.

Three variants of one counter agent, each in its own child process pinned to
core 0, interleaved round by round so that drift on a shared machine hits all
three alike:

* ``main``: the baseline, the code of a git ref (default ``main``) exported with
  ``git archive`` into a temporary directory: no tracing code at all;
* ``off``: this checkout, tracing never configured (the cost of the flag checks);
* ``on``: this checkout, tracing on with OpenTelemetry's SDK, sampling
  ``--ratio`` (default 1%, parent-based), spans batched to an in-memory exporter;
  the sends are made outside any trace (the cost of tracing being on);
* ``traced``: as ``on``, each send in a root span of its own (as an HTTP request
  starts one), ``--ratio`` of them sampled: the root span's cost included.

    taskset -c 0 .venv/bin/python -m benchmarks.tracing [--quick] [--ref main] [--json PATH]

``--quick`` (CI's smoke check, asserting no timing) compares against ``HEAD``.

The result is the ratios (off/main, on/main, traced/main): of the best figures, and the
median of each round's ratio (paired); absolute numbers are noise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHILD = ROOT / "benchmarks" / "_tracing_child.py"
PIN = ["taskset", "-c", "0"]
VARIANTS = ("off", "on", "traced")


def export_ref(ref: str, into: Path) -> Path:
    """The tree of git ``ref`` written under ``into`` (git archive: no worktree, no checkout
    touched)."""
    archive = into / "baseline.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "archive", ref], cwd=ROOT, stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "src", filter="data")
    return into / "src"


def run_child(src: Path, mode: str, sizes: tuple[int, int, int], ratio: float) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONDONTWRITEBYTECODE": "1"}
    env["OTEL_TRACES_SAMPLER_ARG"] = str(ratio)
    command = [*PIN, sys.executable, str(CHILD), mode, *map(str, sizes)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(
    quick: bool, ref: str, ratio: float, rounds: int, only: tuple[str, ...] = VARIANTS
) -> dict[str, Any]:
    sizes = (2_000, 200, 1) if quick else (200_000, 20_000, 3)
    rounds = 1 if quick else rounds
    ref = "HEAD" if quick else ref  # quick only proves it runs: any checkout has HEAD
    best: dict[str, dict[str, float]] = {}
    rounds_seen: list[dict[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="vibe-bench-tracing-") as tmp:
        baseline = export_ref(ref, Path(tmp))
        every = {
            "main": (baseline, "plain"),
            "off": (ROOT, "plain"),
            "on": (ROOT, "on"),
            "traced": (ROOT, "traced"),
        }
        variants = {name: every[name] for name in ("main", *only)}
        for number in range(rounds):
            rounds_seen.append({})
            for name, (src, mode) in variants.items():
                figures = run_child(src, mode, sizes, ratio)
                rounds_seen[-1][name] = figures
                print(f"round {number + 1} {name}: {figures}", flush=True)
                mine = best.setdefault(name, {"tell_per_s": 0.0, "ask_per_s": 0.0, "spans": 0})
                for key in ("tell_per_s", "ask_per_s"):
                    mine[key] = max(mine[key], figures[key])
                mine["spans"] = figures["spans"]
    ratios = {
        f"{variant}/main {op}": best[variant][op] / best["main"][op]
        for variant in only
        for op in ("tell_per_s", "ask_per_s")
    }
    # Paired: each round's variant against that round's main, then the median over rounds
    # (drift on a shared machine moves a round's figures together).
    paired = {
        f"{variant}/main {op}": statistics.median(
            r[variant][op] / r["main"][op] for r in rounds_seen
        )
        for variant in only
        for op in ("tell_per_s", "ask_per_s")
    }
    return {
        "ref": ref,
        "ratio": ratio,
        "rounds": rounds_seen,
        "best": best,
        "ratios_of_best": ratios,
        "ratios_paired_median": paired,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="prove it runs; no timing")
    parser.add_argument("--ref", default="main", help="the baseline's git ref")
    parser.add_argument("--ratio", type=float, default=0.01, help="sampling ratio when on")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument(
        "--only", nargs="+", choices=VARIANTS, default=VARIANTS, help="variants besides main"
    )
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    results = run(args.quick, args.ref, args.ratio, args.rounds, tuple(args.only))
    for variant, figures in results["best"].items():
        print(
            f"{variant:>5}: tell {figures['tell_per_s']:>10,.0f}/s  "
            f"ask {figures['ask_per_s']:>8,.0f}/s  spans {figures['spans']}"
        )
    for name, value in results["ratios_of_best"].items():
        paired = results["ratios_paired_median"][name]
        print(f"{name}: {value:.3f} (best of each), {paired:.3f} (median of paired rounds)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
