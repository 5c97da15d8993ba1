"""Run the whole benchmark suite, write one results JSON, and generate the report.

    .venv/bin/python -m benchmarks [--quick] [--out DIR] [--no-report]

Each benchmark runs in its own process. Single-process comparisons run under
``taskset -c 0`` (every variant and its baseline in the same process, on the
same core); ``scale`` and ``entities`` pin each of their child processes to core 0; ``boot``
pins both the bare interpreter and the boot to core 0; ``gateway`` pins the
servers to core 0 and wrk to core 1. The full run writes
``benchmarks/results/<date>.json`` and regenerates ``docs/benchmarks.md``
with its plots; ``--quick`` (CI's smoke check: every benchmark still runs,
no timing asserted) writes both into a temporary directory unless ``--out``
is given. A benchmark whose tool or module is missing (wrk, the ledger
benchmark) is recorded as skipped with the reason; one that fails makes the
run exit non-zero after the others ran.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.core import machine

ROOT = Path(__file__).resolve().parent.parent
PIN = ["taskset", "-c", "0"]

#: name -> (pinned by the runner, how it pins otherwise)
BENCHMARKS: dict[str, tuple[bool, str]] = {
    "core": (True, "taskset -c 0"),
    "load": (True, "taskset -c 0"),
    "supervision": (True, "taskset -c 0"),
    "codec": (True, "taskset -c 0"),
    "peer": (True, "taskset -c 0"),
    "ledger": (True, "taskset -c 0"),
    "store": (True, "taskset -c 0, the PostgreSQL server it starts on core 1"),
    "scale": (False, "each child process taskset -c 0"),
    "entities": (False, "each child process taskset -c 0"),
    "boot": (False, "both processes taskset -c 0"),
    "gateway": (False, "servers taskset -c 0, wrk taskset -c 1"),
    "tracing": (False, "each child process taskset -c 0"),
}
PACKAGES = (
    "vibe-actors",
    "pykka",
    "msgspec",
    "uvicorn",
    "xoscar",
    "matplotlib",
    "prometheus-client",
)


def skip_reason(name: str) -> str | None:
    if name == "gateway" and shutil.which("wrk") is None:
        return "wrk is not installed (apt-get install wrk): gateway benchmark skipped"
    if name == "ledger" and not (ROOT / "benchmarks" / "ledger.py").exists():
        return "benchmarks/ledger.py does not exist yet"
    return None


def run_one(name: str, quick: bool, workdir: Path) -> dict[str, Any]:
    reason = skip_reason(name)
    if reason is not None:
        print(f"== {name}: skipped: {reason}", flush=True)
        return {"status": "skipped", "reason": reason}
    pinned, pinning = BENCHMARKS[name]
    out = workdir / f"{name}.json"
    command = [sys.executable, "-m", f"benchmarks.{name}", "--json", str(out)]
    if quick:
        command.append("--quick")
    if pinned:
        command = [*PIN, *command]
    print(f"== {name}: {' '.join(command)}", flush=True)
    began = time.perf_counter()
    process = subprocess.run(command, cwd=ROOT, timeout=900 if not quick else 300)
    seconds = time.perf_counter() - began
    if process.returncode != 0 or not out.exists():
        error = f"exit status {process.returncode}"
        print(f"== {name}: FAILED ({error})", flush=True)
        return {"status": "failed", "error": error, "seconds": seconds, "pinning": pinning}
    data = json.loads(out.read_text(encoding="utf-8"))
    results = data.get("results", data)
    print(f"== {name}: ok in {seconds:.1f} s", flush=True)
    return {"status": "ok", "seconds": seconds, "pinning": pinning, "results": results}


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke check: tiny sizes (CI)")
    parser.add_argument("--out", help="directory for the results JSON and the report")
    parser.add_argument("--no-report", action="store_true", help="do not generate the report")
    parser.add_argument("--only", nargs="*", choices=list(BENCHMARKS), help="run only these")
    args = parser.parse_args()
    today = datetime.date.today().isoformat()
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        out_dir = Path(args.out or (scratch if args.quick else ROOT / "benchmarks" / "results"))
        out_dir.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        suite = {name: run_one(name, args.quick, Path(scratch)) for name in args.only or BENCHMARKS}
        document = {
            "date": today,
            "quick": args.quick,
            "seconds": time.perf_counter() - began,
            "machine": machine() | {"pinned_to": "see each benchmark's pinning"},
            "packages": versions(),
            "benchmarks": suite,
        }
        results_path = out_dir / (f"quick-{today}.json" if args.quick else f"{today}.json")
        results_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        print(f"results: {results_path} ({document['seconds']:.0f} s)")
        if not args.no_report:
            from benchmarks.report import generate  # needs matplotlib: the bench extra

            docs = Path(args.out) if args.out else (Path(scratch) if args.quick else ROOT / "docs")
            print(f"report: {generate(results_path, docs)}")
    failed = [name for name, r in suite.items() if r["status"] == "failed"]
    if failed:
        sys.exit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
