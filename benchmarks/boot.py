"""Process start to every agent of a wiring ready, against a bare interpreter start.

Both measured in the same run, pinned alike, as wall time from spawning the
process to its first line of output::

    .venv/bin/python -m benchmarks.boot [--quick] [--wiring wiring.yaml]

Also prints the slowest imports (``python -X importtime``) of the packages.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time


def spawn_until_first_line(args: list[str]) -> float:
    start = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    process.stdout.readline()
    elapsed = time.perf_counter() - start
    process.wait(30)
    return elapsed


def import_times(top: int) -> list[tuple[int, str]]:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import gateway, phoenix, vibe_actors.agents"],
        capture_output=True, text=True, check=True,
    ).stderr  # fmt: skip
    rows = []
    for line in out.splitlines()[1:]:
        _, cumulative, name = (part.strip() for part in line.split("|"))
        rows.append((int(cumulative), name))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wiring", default="wiring.yaml")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", help="write the raw figures here")
    args = parser.parse_args()
    runs = 2 if args.quick else 10
    pin = ["taskset", "-c", "0"]
    with tempfile.TemporaryDirectory() as data_dir:
        bare = [
            spawn_until_first_line([*pin, sys.executable, "-c", "print('ready')"])
            for _ in range(runs)
        ]
        boot = [
            spawn_until_first_line(
                [*pin, sys.executable, "-m", "benchmarks._boot_child", args.wiring, data_dir]
            )
            for _ in range(runs)
        ]
    b, w = statistics.median(bare), statistics.median(boot)
    print(f"bare interpreter start: median {b * 1000:.0f} ms")
    print(f"start to all agents ready ({args.wiring}): median {w * 1000:.0f} ms "
          f"(min {min(boot) * 1000:.0f}, max {max(boot) * 1000:.0f}); {w / b:.1f}x the bare start")  # fmt: skip
    print("slowest imports (cumulative us):")
    slowest = import_times(8)
    for micros, name in slowest:
        print(f"  {micros:>8} {name}")
    if args.json:
        result = {
            "wiring": args.wiring,
            "bare_start_ms": [s * 1e3 for s in bare],
            "boot_ms": [s * 1e3 for s in boot],
            "bare_median_ms": b * 1e3,
            "boot_median_ms": w * 1e3,
            "boot_vs_bare": w / b,
            "slowest_imports_us": [[name, micros] for micros, name in slowest],
        }
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"quick": args.quick, "results": result}, out, indent=2)


if __name__ == "__main__":
    main()
