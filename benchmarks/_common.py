"""Helpers shared by the benchmark modules: percentiles, the command line, the JSON file."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from benchmarks.core import configure_logging, machine

__all__ = ["main_for", "percentiles"]


def percentiles(samples: list[float], scale: float = 1e6) -> dict[str, float]:
    """p50/p99/p99.9 (and the max) of ``samples`` seconds, in microseconds by default."""
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)
    last = len(ordered) - 1

    def at(q: float) -> float:
        return ordered[min(last, int(len(ordered) * q))] * scale

    return {
        "n": len(ordered),
        "p50_us": at(0.5),
        "p99_us": at(0.99),
        "p999_us": at(0.999),
        "max_us": ordered[last] * scale,
    }


def main_for(
    doc: str, run: Callable[[bool], dict[str, Any]], report: Callable[[dict[str, Any]], str]
) -> None:
    """The command line every benchmark module shares: ``[--quick] [--json PATH]``."""
    configure_logging()
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: prove it runs (CI)")
    parser.add_argument("--json", help="write raw figures and the machine to this file")
    args = parser.parse_args()
    results = run(args.quick)
    print(report(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(
                {"machine": machine(), "quick": args.quick, "results": results}, out, indent=2
            )
